"""RabbitMQ (aio-pika): queue topology and the confirmed webhook publisher."""
