"""Publish verified webhooks with publisher confirms and mandatory routing.

`publish` returns only after RabbitMQ confirmed the message (persisted on a quorum of nodes);
anything else — broker down, blocked, nack, unroutable, or no confirm within the timeout — raises
`PublishFailedError`, and the shim answers 503 so LiveKit retries.

aio-pika owns the connection (robust reconnection, re-declaration, the health probe's channel);
each message goes straight to the aiormq channel underneath, with its AMQP properties built
directly: aio-pika's `Message` and exchange layers were most of the shim's publishing CPU and add
nothing for one fixed route.
"""

from __future__ import annotations

import logging
from typing import cast

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from pamqp.commands import Basic

from favorited.broker.topology import Topology, webhook_properties

log = logging.getLogger(__name__)


class PublishFailedError(Exception):
    """The broker did not confirm the message; the sender must retry."""


class WebhookPublisher:
    def __init__(self, url: str, topology: Topology, *, timeout_s: float) -> None:
        self._url = url
        self._topology = topology
        self._timeout_s = timeout_s
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None

    async def start(self) -> None:
        # connect_robust reconnects (and re-declares) by itself after a broker restart.
        self._connection = await aio_pika.connect_robust(self._url, timeout=self._timeout_s)
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        await self._topology.declare(channel)
        self._channel = channel

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    @property
    def connection(self) -> AbstractRobustConnection | None:
        return self._connection

    @property
    def topology(self) -> Topology:
        return self._topology

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def publish(self, body: bytes, *, event_id: str, event: str) -> None:
        channel = self._channel
        if channel is None or channel.is_closed or not self.connected:
            raise PublishFailedError("not connected to RabbitMQ")
        try:
            # Asked per message: after a reconnection the robust channel has a new one.
            # (aiormq's abstract channel lacks basic_publish's `wait`; the concrete one has it.)
            underlay = cast(aiormq.Channel, await channel.get_underlay_channel())
            confirmation = await underlay.basic_publish(
                body,
                exchange="",
                routing_key=self._topology.queue,
                properties=webhook_properties(event_id=event_id, event=event),
                mandatory=True,
                timeout=self._timeout_s,
                # The confirm is what the shim waits for. wait=True would also hold the channel's
                # publish lock until the frame is flushed to the socket, serialising concurrent
                # requests behind each write; the confirm timeout still bounds a stalled socket.
                wait=False,
            )
        except (
            aio_pika.exceptions.AMQPError,
            aiormq.exceptions.AMQPError,
            TimeoutError,
            ConnectionError,
            aiormq.exceptions.ChannelInvalidStateError,  # channel closed mid-publish
        ) as exc:
            raise PublishFailedError(f"publish failed: {exc!r}") from exc
        if not isinstance(confirmation, Basic.Ack):
            raise PublishFailedError(f"broker did not ack: {confirmation!r}")


class QueueStats:
    """Depths read with passive declares on a channel of their own (never the publish channel)."""

    def __init__(self, publisher: WebhookPublisher) -> None:
        self._publisher = publisher

    async def read(self) -> dict[str, int]:
        connection = self._publisher.connection
        if connection is None or connection.is_closed:
            raise PublishFailedError("not connected to RabbitMQ")
        topology = self._publisher.topology
        async with connection.channel() as channel:
            queue = await channel.declare_queue(topology.queue, passive=True)
            dlq = await channel.declare_queue(topology.dead_letter_queue, passive=True)
        # Quorum queues report ready messages only; unacked counts need the management API.
        return {
            "ready": queue.declaration_result.message_count or 0,
            "consumers": queue.declaration_result.consumer_count or 0,
            "dead_letter_ready": dlq.declaration_result.message_count or 0,
        }
