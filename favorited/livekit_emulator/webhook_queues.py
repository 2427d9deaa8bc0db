"""Per-URL delivery queues, like livekit/protocol's ``ResourceURLNotifier``.

Each event goes to the FIFO of its key (the room name for room and participant events);
each FIFO has one worker that sends one event at a time, so a room's events stay in order
per URL while different rooms proceed independently. An event is dropped when its queue
already holds ``max_queue_depth`` events, or when it waited longer than ``max_queue_age_s``.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .webhook_delivery import DeliveryAttempt, Outcome, WebhookOptions

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable

    from .background import TaskSupervisor
    from .events import RoomEvent
    from .webhook_faults import Verdict

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """An event waiting for its turn, with the fault verdict rolled when it was queued."""

    event: RoomEvent
    verdict: Verdict
    enqueued_at: float


def event_key(event: RoomEvent) -> str:
    """``EventKey()`` for the events the emulator emits: the room name, else the identity."""
    if event.room.name:
        return event.room.name
    return event.participant.identity if event.participant is not None else ""


class UrlQueues:
    """The queues of one webhook URL. Workers run under the sender's supervisor."""

    def __init__(
        self,
        url: str,
        *,
        send: Callable[[str, QueuedEvent], Awaitable[None]],
        supervisor: TaskSupervisor,
        options: WebhookOptions,
        record: Callable[[DeliveryAttempt], None],
        on_idle: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        self.url = url
        self._clock = clock
        self._send = send
        self._supervisor = supervisor
        self._options = options
        self._record = record
        self._on_idle = on_idle
        # A key's queue exists from its first event until its worker has sent the last one,
        # so "no queues" means nothing is waiting and nothing is in flight.
        self._queues: dict[str, deque[QueuedEvent]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    @property
    def idle(self) -> bool:
        """True when nothing is queued or in flight for this URL."""
        return not self._queues

    def enqueue(self, event: RoomEvent, verdict: Verdict) -> None:
        """Queue ``event`` behind the earlier events of its key (or drop it)."""
        if verdict.drop:
            self._drop(event, "injected drop")
            return
        key = event_key(event)
        queue = self._queues.setdefault(key, deque())
        if len(queue) >= self._options.max_queue_depth:
            self._drop(event, f"queue full ({self._options.max_queue_depth} events)")
            return
        queue.append(QueuedEvent(event, verdict, self._clock()))
        self._start_worker(key)

    def start_workers(self) -> None:
        """Start workers for events queued before the sender was started."""
        for key in list(self._queues):
            self._start_worker(key)

    def _start_worker(self, key: str) -> None:
        if key in self._workers or not self._supervisor.running:
            return
        name = f"webhook worker {self.url} {key}"
        self._workers[key] = self._supervisor.spawn(self._work(key), name=name)

    async def _work(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                item = queue.popleft()
                waited_s = self._clock() - item.enqueued_at
                if waited_s > self._options.max_queue_age_s:
                    self._drop(item.event, f"queued for {waited_s:.3f} s")
                    continue
                await self._send(self.url, item)
        finally:
            # Runs on cancellation too (stop without draining): the rest is abandoned.
            del self._queues[key]
            del self._workers[key]
            self._on_idle()

    def _drop(self, event: RoomEvent, reason: str) -> None:
        logger.warning("webhook %s %s to %s dropped: %s", event.kind, event.id, self.url, reason)
        self._record(
            DeliveryAttempt(
                event_id=event.id,
                event=event.kind.value,
                url=self.url,
                attempt=0,
                outcome=Outcome.DROPPED,
                error=reason,
            )
        )
