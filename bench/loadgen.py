"""Drive operations at a fixed concurrency (closed loop) or a fixed rate (open loop).

Both are bounded twice: by a count and by a deadline, whichever comes first. Operations are
given their index, so callers pre-build every request up front and the loop itself allocates
nothing per call beyond a latency sample.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Op = Callable[[int], Awaitable[None]]


@dataclass
class LoopResult:
    completed: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s > 0 else 0.0


async def closed_loop(op: Op, *, total: int, concurrency: int, deadline_s: float) -> LoopResult:
    """`concurrency` workers run op(0..total-1) back to back until done or the deadline."""
    result = LoopResult()
    next_index = 0
    started = time.perf_counter()
    stop_at = started + deadline_s

    async def worker() -> None:
        nonlocal next_index
        while next_index < total and time.perf_counter() < stop_at:
            index = next_index
            next_index += 1
            t0 = time.perf_counter()
            try:
                await op(index)
            except Exception as exc:  # noqa: BLE001 - a failed call is counted, not fatal
                result.failed += 1
                result.first_error = result.first_error or repr(exc)
                continue
            result.latencies_s.append(time.perf_counter() - t0)
            result.completed += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed_s = time.perf_counter() - started
    return result


@dataclass
class OpenLoopResult(LoopResult):
    offered: int = 0
    behind_max_s: float = 0.0  # how far dispatch fell behind the schedule at worst


async def open_loop(
    op: Op, *, rate: float, duration_s: float, max_in_flight: int, tick_s: float = 0.005
) -> OpenLoopResult:
    """Start op(i) at t0 + i/rate for `duration_s`, with at most `max_in_flight` outstanding.

    When the system under test cannot keep up, dispatch waits for a free slot and falls
    behind the schedule (recorded in behind_max_s) rather than piling up unbounded work.
    """
    result = OpenLoopResult()
    total = int(rate * duration_s)
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    started = time.perf_counter()

    async def one(index: int) -> None:
        t0 = time.perf_counter()
        try:
            await op(index)
        except Exception as exc:  # noqa: BLE001 - a failed call is counted, not fatal
            result.failed += 1
            result.first_error = result.first_error or repr(exc)
        else:
            result.latencies_s.append(time.perf_counter() - t0)
            result.completed += 1
        finally:
            slots.release()

    index = 0
    hard_stop = started + duration_s * 2  # a bound even when every slot is stuck
    while index < total and time.perf_counter() < hard_stop:
        due = min(total, int((time.perf_counter() - started) * rate) + 1)
        while index < due:
            await slots.acquire()
            task = asyncio.create_task(one(index))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
        result.behind_max_s = max(result.behind_max_s, time.perf_counter() - started - index / rate)
        await asyncio.sleep(tick_s)
    result.offered = index
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=30)
        for task in pending:
            task.cancel()
    result.elapsed_s = time.perf_counter() - started
    return result
