"""The webhook queues: a durable quorum queue with a delivery limit, dead-lettering to a DLQ.

    default exchange ──▶ <queue>        quorum, x-delivery-limit, DLX → <queue>.dlq
                         <queue>.dlq    quorum; drained into the dead_letters table by the consumer

Declared identically (idempotently) by every shim and consumer process, so any of them can start
first. Quorum queues replicate across a RabbitMQ cluster and count deliveries themselves, which is
what makes "a message that keeps failing is dead-lettered after N deliveries" hold even when the
consumer that received it crashed.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue
from pamqp.commands import Basic

WEBHOOK_CONTENT_TYPE = "application/webhook+json"


@dataclass(frozen=True, slots=True)
class Topology:
    queue: str
    max_deliveries: int

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dlq"

    async def declare(self, channel: AbstractChannel) -> tuple[AbstractQueue, AbstractQueue]:
        dlq = await channel.declare_queue(
            self.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        queue = await channel.declare_queue(
            self.queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                # A quorum queue counts redeliveries; after the limit the broker dead-letters.
                "x-delivery-limit": self.max_deliveries - 1,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.dead_letter_queue,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        return queue, dlq


def webhook_message(body: bytes, *, event_id: str, event: str) -> aio_pika.Message:
    """A persistent message whose id is LiveKit's event id (what the inbox de-duplicates on)."""
    return aio_pika.Message(
        body,
        message_id=event_id,
        content_type=WEBHOOK_CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers={"event": event},
    )


def webhook_properties(*, event_id: str, event: str) -> Basic.Properties:
    """The properties of `webhook_message`, for publishing through aiormq without aio-pika's
    per-message `Message` (the shim's hot path)."""
    return Basic.Properties(
        message_id=event_id,
        content_type=WEBHOOK_CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT.value,
        headers={"event": event},
    )
