"""Consume the webhook queue: apply each event in one transaction, ack only after COMMIT.

- Transient failures (database unreachable, deadlock, serialization) are retried in place with
  backoff while the message stays unacked, so an outage pauses the consumer instead of burning the
  message's deliveries and dead-lettering healthy events.
- Any other failure is nacked back to the queue; the quorum queue counts deliveries and dead-letters
  the message after WEBHOOK_MAX_DELIVERIES, while other messages keep flowing.
- An undecodable body is rejected straight to the dead-letter queue.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from aio_pika.abc import AbstractIncomingMessage

from favorited.consumer.acks import Settlements
from favorited.consumer.batching import TRANSIENT, BatchApplier
from favorited.consumer.messages import UndecodableMessageError, decode
from favorited.metrics import Metrics

log = logging.getLogger(__name__)


class Backoff:
    """Exponential backoff with a cap; `wait` returns early when `stop` is set."""

    def __init__(self, *, first_s: float = 0.05, max_s: float = 5.0) -> None:
        self._first_s = first_s
        self._max_s = max_s

    async def wait(self, attempt: int, stop: asyncio.Event) -> None:
        delay = min(self._first_s * 2**attempt, self._max_s)
        try:
            async with asyncio.timeout(delay):
                await stop.wait()
        except TimeoutError:
            return


class MessageHandler:
    def __init__(
        self,
        *,
        applier: BatchApplier,
        settlements: Settlements,
        metrics: Metrics,
        stopping: asyncio.Event,
        backoff: Backoff | None = None,
    ) -> None:
        self._applier = applier
        self._metrics = metrics
        self._stopping = stopping
        self._backoff = backoff or Backoff()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._settlements = settlements

    @property
    def idle(self) -> asyncio.Event:
        """Set while no message is being handled (shutdown waits on it)."""
        return self._idle

    async def __call__(self, message: AbstractIncomingMessage) -> None:
        self._settlements.delivered(message)  # before any await: deliveries in tag order
        self._in_flight += 1
        self._idle.clear()
        try:
            await self._handle(message)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            event = decode(message.body)
        except UndecodableMessageError as exc:
            log.error(
                "undecodable message dead-lettered",
                extra={"message_id": message.message_id, "why": str(exc)},
            )
            self._metrics.events.labels("undecodable", "rejected").inc()
            await message.reject(requeue=False)
            self._settlements.settled_alone(message)
            return
        attempt = 0
        while True:
            try:
                outcome = await self._applier.apply(event)
            except TRANSIENT as exc:
                if self._stopping.is_set():
                    await message.nack(requeue=True)
                    self._settlements.settled_alone(message)
                    return
                self._metrics.consumer_retries.inc()
                log.warning(
                    "transient failure; retrying in place",
                    extra={"event_id": event.event_id, "attempt": attempt, "why": exc.reason},
                )
                await self._backoff.wait(attempt, self._stopping)
                attempt += 1
                continue
            except Exception:
                # A bug or bad data: give the message back; the broker's delivery limit
                # dead-letters it if it keeps failing.
                log.exception("event failed", extra={"event_id": event.event_id})
                self._metrics.events.labels(event.event or "unknown", "failed").inc()
                await message.nack(requeue=True)
                self._settlements.settled_alone(message)
                return
            # Acked with the run of applied messages it completes (favorited/consumer/acks.py).
            self._settlements.applied(message)
            self._metrics.events.labels(event.event or "unknown", outcome.value).inc()
            if event.created_at is not None:
                lag = (datetime.now(UTC) - event.created_at).total_seconds()
                self._metrics.event_lag_seconds.observe(max(lag, 0.0))
            return
