"""The webhook shim: verify LiveKit's signed webhooks and hand them to RabbitMQ, confirmed."""
