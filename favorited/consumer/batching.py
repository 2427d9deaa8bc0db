"""Group commit: events from many messages applied in one transaction.

Each message's task submits its decoded event and awaits the outcome. Events are partitioned
over a few lanes by room: one room's events always go to the same lane, so they keep their
delivery order and concurrent transactions never wait on each other's livestream row locks (every
effect locks its livestream first). A lane takes whatever is waiting in it (up to `batch_size`)
and applies it with one COMMIT. Commits, not statements, dominate the cost of applying a webhook,
so under load this multiplies throughput, while a lone event still goes through at once when
nothing else is being applied (a batch is never waited for).

Lanes and transactions are separate numbers. At most `transactions` lanes apply at once, and a lane
collects its batch only once its turn has come (a slot, and the overlap rule below), so what
arrived while it waited joins the same commit: the fewer transactions run at once, the bigger each
one is (PostgreSQL's cost per event falls steeply with the batch size). More lanes than slots
keeps a room's long transaction (an end of 100,000 participants takes about a second) from
holding up more than its own lane's rooms: the others go on through the remaining slots, and
acks.py acks their messages one by one once many wait behind the long one, so the prefetch window
keeps moving.

A second transaction starts only once the one running has run for `overlap_after_s`. Under a
steady stream that makes one transaction at a time the rule, so each carries what arrived while
the other ran: webhook_e2e's batches averaged 6-10 events with two at once, and PostgreSQL's CPU
per event is ~1 ms at a batch of 1, ~0.3 ms at 8 and ~0.2 ms at 32 (docs/performance.md, session
12). A long transaction (a room's end) still holds up only its own lane: past `overlap_after_s`
the others go on through the remaining slots. A lane whose batch is already full does not wait
(a backlog drains through every slot, as before). Lanes take their turns in the order they came.

A batch that fails for a reason other than a transient one is re-applied event by event, so only
the event at fault fails and the others are not held back by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib

from favorited import errors
from favorited.domain.livekit_events import LiveKitEvent, LiveKitEventService, Outcome
from favorited.tasks import cancel_and_wait

log = logging.getLogger(__name__)

TRANSIENT = (errors.DependencyUnavailableError, errors.AbortedError)

_Pending = tuple[LiveKitEvent, "asyncio.Future[Outcome]"]


class BatchApplier:
    def __init__(
        self,
        service: LiveKitEventService,
        *,
        lanes: int,
        transactions: int,
        batch_size: int,
        overlap_after_s: float,
    ) -> None:
        self._service = service
        self._batch_size = batch_size
        self._overlap_after_s = overlap_after_s
        self._queues: list[asyncio.Queue[_Pending]] = [asyncio.Queue() for _ in range(lanes)]
        self._slots = asyncio.Semaphore(transactions)
        self._lanes_waiting = 0  # lanes holding their batch's first event, waiting their turn
        self._running: dict[object, float] = {}  # each running transaction's start (loop time)
        # Set when a transaction ends, or a lane's batch fills: the lane waiting its turn looks.
        self._wake = asyncio.Event()
        # Lanes take their turns in arrival order (asyncio.Lock is first come, first served): a
        # lane whose transaction just ended must not step in front of one already waiting, or a
        # busy lane would keep every other lane waiting for as long as its stream lasts.
        self._turns = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(queue), name=f"apply-lane-{i}")
            for i, queue in enumerate(self._queues)
        ]

    def running(self) -> int:
        """Transactions applying now."""
        return len(self._running)

    def waiting(self) -> int:
        """Events submitted and not yet in a transaction, waiting for their lane or for their
        turn (read by a gauge at scrape)."""
        return self._lanes_waiting + sum(queue.qsize() for queue in self._queues)

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks)
        # Whatever was never applied is released; its message goes back to the queue unacked.
        for queue in self._queues:
            while not queue.empty():
                _, future = queue.get_nowait()
                future.cancel()

    async def apply(self, event: LiveKitEvent) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        # zlib.crc32, not hash(): the same room must map to the same lane in every process run.
        queue = self._queues[zlib.crc32(event.room_sid.encode()) % len(self._queues)]
        await queue.put((event, future))
        if self._batch_full(queue):
            self._wake.set()
        return await future

    async def _work(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            batch = [await queue.get()]
            try:
                self._lanes_waiting += 1
                try:
                    await self._slots.acquire()
                    try:
                        turn = await self._take_turn(queue)
                    except BaseException:
                        self._slots.release()
                        raise
                finally:
                    self._lanes_waiting -= 1
                try:
                    # Collected only now that it is this lane's turn: whatever arrived while it
                    # waited goes in this commit, not in the next.
                    while len(batch) < self._batch_size and not queue.empty():
                        batch.append(queue.get_nowait())
                    await self._apply(batch)
                except Exception as exc:
                    # Not expected (_apply settles what the service raises), but a lane that
                    # died would leave its rooms unapplied and their callers waiting for ever.
                    log.exception("apply lane failed on a batch")
                    for _, future in batch:
                        _settle(future, exc=exc)
                finally:
                    del self._running[turn]
                    self._wake.set()
                    self._slots.release()
            except asyncio.CancelledError:
                # Stopping: the events taken out of the queue are released like those left in
                # it (stop()); their messages go back to the broker unacked.
                for _, future in batch:
                    future.cancel()
                raise

    async def _take_turn(self, queue: asyncio.Queue[_Pending]) -> object:
        """With a slot held, wait until no transaction runs, the youngest running one has run
        `overlap_after_s`, or this lane's batch is full (waiting could not make it bigger: a
        backlog drains through every slot); then this lane's transaction is running (returns
        its token)."""
        loop = asyncio.get_running_loop()
        async with self._turns:
            while self._running and not self._batch_full(queue):
                left = max(self._running.values()) + self._overlap_after_s - loop.time()
                if left <= 0:
                    break
                # No await between the check and the wait: a wake-up cannot be missed.
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await self._wake.wait()
            turn = object()
            self._running[turn] = loop.time()  # before the next lane in line looks
            return turn

    def _batch_full(self, queue: asyncio.Queue[_Pending]) -> bool:
        # + 1: the event its lane holds while it waits for its turn.
        return queue.qsize() + 1 >= self._batch_size

    async def _apply(self, batch: list[_Pending]) -> None:
        try:
            outcomes = await self._service.apply_many([event for event, _ in batch])
        except TRANSIENT as exc:
            for _, future in batch:
                _settle(future, exc=exc)
            return
        except Exception as exc:  # noqa: BLE001 - handed to the message's task, which logs it
            if len(batch) == 1:
                _settle(batch[0][1], exc=exc)
                return
        else:
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                _settle(future, outcome=outcome)
            return
        # Isolate the event at fault: apply the batch again one event at a time.
        for pending in batch:
            await self._apply([pending])


def _settle(
    future: asyncio.Future[Outcome], *, outcome: Outcome | None = None, exc: Exception | None = None
) -> None:
    if future.done():  # the message's task was cancelled (shutdown)
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        assert outcome is not None
        future.set_result(outcome)
