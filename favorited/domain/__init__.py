"""Pure domain: models, rules and use cases. No gRPC, asyncpg, aio-pika or LiveKit imports."""
