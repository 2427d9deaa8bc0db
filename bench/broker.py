"""The suite's own RabbitMQ connection: declare the webhook topology, fill, watch and purge."""

from __future__ import annotations

import asyncio
from types import TracebackType

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection

from bench.context import AMQP_URL
from bench.livekit_webhooks import Event
from favorited.broker.topology import Topology, webhook_message

MAX_DELIVERIES = 5  # the service's default; must match what the service processes declare


class Broker:
    def __init__(self) -> None:
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None

    async def __aenter__(self) -> Broker:
        self._connection = await aio_pika.connect(AMQP_URL, timeout=10)
        self._channel = await self._connection.channel(publisher_confirms=True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._connection is not None:
            await self._connection.close()

    @property
    def channel(self) -> AbstractChannel:
        assert self._channel is not None
        return self._channel

    async def declare(self, queue: str) -> None:
        """The webhook queue and its DLQ, declared exactly as the shim and consumer do."""
        await Topology(queue, MAX_DELIVERIES).declare(self.channel)

    async def ready(self, queue: str) -> int:
        """Messages waiting (not yet delivered); quorum queues do not count unacked ones."""
        declared = await self.channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0

    async def purge(self, queue: str) -> None:
        declared = await self.channel.declare_queue(queue, passive=True)
        await declared.purge()

    async def fill(self, queue: str, events: list[Event], *, in_flight: int = 64) -> None:
        """Publish `events` as the shim would (persistent, confirmed), `in_flight` at a time."""
        exchange = self.channel.default_exchange
        pending = iter(events)

        async def worker() -> None:
            for event in pending:
                await exchange.publish(
                    webhook_message(event.body, event_id=event.event_id, event=event.event),
                    routing_key=queue,
                    mandatory=True,
                    timeout=30,
                )

        await asyncio.gather(*(worker() for _ in range(in_flight)))
