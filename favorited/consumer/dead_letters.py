"""Drain the dead-letter queue into the dead_letters table, and replay recorded messages.

The table is the operator's view (countable in /health and metrics, listable, replayable); the
queue only carries messages there. Replay republishes a message with its original id, so the
consumer's inbox still guarantees it is applied at most once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from favorited import errors
from favorited.broker.publisher import WebhookPublisher
from favorited.consumer.worker import Backoff
from favorited.metrics import Metrics
from favorited.store.database import translate_errors
from favorited.store.dead_letters import PgDeadLetterStore

log = logging.getLogger(__name__)


def _death(headers: dict[str, Any], max_deliveries: int) -> tuple[str, int]:
    """Why the broker dead-lettered the message, and how often it had been delivered.

    RabbitMQ drops the delivery count when it dead-letters; `delivery_limit` means the queue's
    limit was reached, and `rejected` means the consumer refused it on its first delivery.
    """
    reason = str(headers.get("x-first-death-reason", "unknown"))
    return reason, max_deliveries if reason == "delivery_limit" else 1


class DeadLetterRecorder:
    def __init__(
        self,
        *,
        store: PgDeadLetterStore,
        metrics: Metrics,
        stopping: asyncio.Event,
        max_deliveries: int,
    ) -> None:
        self._store = store
        self._max_deliveries = max_deliveries
        self._metrics = metrics
        self._stopping = stopping
        self._backoff = Backoff()

    async def __call__(self, message: AbstractIncomingMessage) -> None:
        headers = dict(message.headers or {})
        reason, attempts = _death(headers, self._max_deliveries)
        event = headers.get("event", "")
        attempt = 0
        while True:
            try:
                with translate_errors():
                    await self._store.record(
                        event_id=message.message_id or "",
                        event=event.decode() if isinstance(event, bytes) else str(event),
                        reason=reason,
                        attempts=attempts,
                        body=message.body,
                    )
            except errors.DependencyUnavailableError:
                if self._stopping.is_set():
                    await message.nack(requeue=True)
                    return
                await self._backoff.wait(attempt, self._stopping)
                attempt += 1
                continue
            break
        await message.ack()
        self._metrics.dead_letters.inc()
        log.error(
            "message dead-lettered",
            extra={"event_id": message.message_id, "reason": reason, "attempts": attempts},
        )


async def replay(
    store: PgDeadLetterStore, publisher: WebhookPublisher, *, ids: list[int] | None
) -> int:
    """Republish recorded dead letters to the webhook queue; return how many were replayed."""
    replayed = 0
    for letter in await store.pending(ids=ids):
        await publisher.publish(letter.body, event_id=letter.event_id, event=letter.event)
        await store.mark_replayed(letter.id)
        replayed += 1
    return replayed
