"""StatementBatcher: writes that arrive together run as one statement and one commit."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

import asyncpg

from favorited import errors

T = TypeVar("T")
R = TypeVar("R")

_LEAD = object()  # a waiting item's future resolves to this when it is handed the next batch


@dataclass(slots=True)
class _Waiting(Generic[T]):
    item: T
    done: asyncio.Future[object]


@dataclass(slots=True)
class _Lane(Generic[T]):
    """The items of one lane: at most one batch running, the rest waiting for the next."""

    busy: bool = False
    waiting: collections.deque[_Waiting[T]] = field(default_factory=collections.deque)


class StatementBatcher(Generic[T, R]):
    """Runs the items of one lane that arrive together as one statement and one commit.

    Every commit that notifies watchers (joins, livestreams going LIVE) takes its turn at a
    database-wide lock held through its WAL flush, so one write per commit capped such writes
    near 1 / flush time, with the API mostly idle. Here each lane has at most one batch running;
    its items that arrive meanwhile wait and go together in the next one. A lone item still goes
    at once, alone. `lane` picks an item's lane: a lane over several livestreams needs
    statements that never wait on a livestream row, or one held livestream would hold up the
    whole lane (PgDatabase's batches skip held rows, or run per livestream).

    No task is spawned per item: the caller whose item starts a batch runs it, and hands the
    next batch to the first item still waiting (each caller runs at most the batch that holds
    its own item). The batch's statement is shielded from that caller's cancellation, so one
    cancelled RPC never fails the others' writes.
    """

    def __init__(
        self,
        run: Callable[[Sequence[T]], Awaitable[list[R]]],
        run_one: Callable[[T], Awaitable[R]],
        *,
        lane: Callable[[T], str],
        max_batch: int = 64,
    ) -> None:
        self._run = run
        self._run_one = run_one
        self._lane_of = lane
        self._max_batch = max_batch
        # Only lanes with a batch running are here: bounded by the items in flight.
        self._lanes: dict[str, _Lane[T]] = {}
        self._batches: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        """Items queued for a next batch (cancelled ones included until a batch skips them)."""
        return sum(len(lane.waiting) for lane in self._lanes.values())

    async def submit(self, item: T) -> R:
        key = self._lane_of(item)
        lane: _Lane[T] = self._lanes.setdefault(key, _Lane())
        me = _Waiting(item, asyncio.get_running_loop().create_future())
        if not lane.busy:
            lane.busy = True
        else:
            lane.waiting.append(me)
            try:
                handed = await me.done
            except asyncio.CancelledError:
                # Cancelled just after being handed the next batch: pass it on, or it is lost.
                if me.done.done() and not me.done.cancelled() and me.done.result() is _LEAD:
                    self._next(key, lane)
                raise
            if handed is not _LEAD:
                return cast(R, handed)
            me = _Waiting(item, asyncio.get_running_loop().create_future())  # for our answer
        batch = [me]
        while lane.waiting and len(batch) < self._max_batch:
            other = lane.waiting.popleft()
            if not other.done.done():  # skip items whose RPC was cancelled while waiting
                batch.append(other)
        task = asyncio.create_task(self._execute(batch))
        # Kept until done; the lane passes on when the statement ends, even if we are cancelled.
        self._batches.add(task)
        task.add_done_callback(lambda done: self._finished(done, key, lane))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            me.done.cancel()  # the batch goes on for the others; nobody reads our answer
            raise
        return cast(R, me.done.result())

    def _finished(self, task: asyncio.Task[None], key: str, lane: _Lane[T]) -> None:
        self._batches.discard(task)
        self._next(key, lane)

    def _next(self, key: str, lane: _Lane[T]) -> None:
        while lane.waiting:
            other = lane.waiting.popleft()
            if not other.done.done():
                other.done.set_result(_LEAD)
                return
        lane.busy = False
        del self._lanes[key]

    async def _execute(self, batch: list[_Waiting[T]]) -> None:
        results: list[R | BaseException] | None = None
        try:
            results = await self._results(batch)
        except Exception as exc:  # noqa: BLE001 - every item of the batch gets the failure
            results = [exc] * len(batch)
        finally:
            if results is None:  # this task itself was cancelled (the loop is closing)
                for waiting in batch:
                    if not waiting.done.done():
                        waiting.done.cancel()
        for waiting, result in zip(batch, results, strict=True):
            if waiting.done.done():
                continue
            if isinstance(result, BaseException):
                waiting.done.set_exception(result)
            else:
                waiting.done.set_result(result)

    async def _results(self, batch: list[_Waiting[T]]) -> list[R | BaseException]:
        if len(batch) == 1:
            return [await self._run_one(batch[0].item)]
        try:
            return list(await self._run([w.item for w in batch]))
        except (asyncpg.PostgresError, errors.AbortedError):
            # One item broke the statement (a unique index refusing a duplicate made by another
            # process, a deadlock with a webhook batch): nothing was kept. Each item gets its
            # own answer, concurrently, so the items of a busy livestream wait for it alone.
            return list(await asyncio.gather(*(self._answer(w.item) for w in batch)))

    async def _answer(self, item: T) -> R | BaseException:
        try:
            return await self._run_one(item)
        except Exception as exc:  # noqa: BLE001 - handed to that item's caller
            return exc
