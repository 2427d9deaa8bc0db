"""WriteSlots: how many Watch stream messages one API process has in flight at once.

Without a bound, a change watched by 10,000 streams put 10,000 writes into grpc at once, and
their completions queued ahead of everything else the process had to do: during the bench's
10,000-watcher fan-out a health check took 1.5-2.6 s. Waking the watchers a wave at a time in
the event loop alone changed nothing (the queue is grpc's completion queue, not only asyncio's).

The bound is a trade, set by WATCH_WRITE_SLOTS (docs/performance.md, "Write slots"). grpc.aio's
server accepts new RPCs one at a time, each taking a turn or two of the event loop, and every
write completion is work in a turn: the more slots, the longer the turns and the fewer new RPCs
the process admits while it fans out; the fewer slots, the more of the fan-out's time is spent
handing slots on. Measured under that fan-out with 50 joins/s offered: 256 slots admitted 13
joins/s (their median latency 13 s); 64 admit 41-49/s (0.1-1 s), with deliveries at p99
2.1-2.9 s; 32 admit all 50 (0.13 s), with deliveries at p99 3.4 s.

Every live message takes a slot, one message per slot; snapshot and replay pages (a stream's
start) do not. A slot is held from handing the message to grpc until grpc asks the stream for
the next one — or for at most `hold_s`: a client that stops reading (its HTTP/2 window full)
keeps its write pending, and without the limit a few such clients would stop every stream of the
process. After `hold_s` its slot goes to the next writer (so the bound is on writers that still
move, not a hard one); a stalled WatchParticipants stream is then cut off by its feed once it
falls out of the ring (streams/participants.py), a stalled WatchLivestream only loses its slot.
The price: clients that read slowly but steadily share the slots with everyone, so as many of
them as there are slots, each taking a second or more per message, slow every stream of the
process down with them.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Callable
from types import TracebackType

DEFAULT_HOLD_S = 1.0


class WriteSlots:
    def __init__(self, slots: int, *, hold_s: float = DEFAULT_HOLD_S) -> None:
        if slots < 1 or hold_s <= 0:
            raise ValueError("slots must be at least 1 and hold_s positive")
        self._free = asyncio.BoundedSemaphore(slots)  # a second release of a slot would raise
        self._hold_s = hold_s
        # Held slots → when each must be given back, in the order they were taken (so also in
        # deadline order). One timer, for the oldest, stands for all of them: a timer per write
        # cost ~7 % of the API's CPU in the 10,000-watcher fan-out.
        self._held: dict[int, float] = {}
        self._tokens = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._waiting = 0

    def in_use(self) -> int:
        """Slots held now (a slot past its hold counts as given back)."""
        return len(self._held)

    def waiting(self) -> int:
        """Writers waiting for a slot now."""
        return self._waiting

    async def acquire(self) -> Callable[[], None]:
        """Wait for a slot; return its release, which may be called any number of times."""
        self._waiting += 1
        try:
            await self._free.acquire()
        finally:
            self._waiting -= 1
        token = next(self._tokens)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._hold_s
        self._held[token] = deadline
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)
        return functools.partial(self._release, token)

    def _release(self, token: int) -> None:
        if self._held.pop(token, None) is not None:
            self._free.release()

    def _expire(self) -> None:
        """Give back every slot held past its deadline; then wait for the oldest one left."""
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        # Taken in deadline order: the expired slots are the first entries.
        expired = list(itertools.takewhile(lambda held: held[1] <= now, self._held.items()))
        for token, _ in expired:
            self._release(token)
        if self._held:
            self._timer = loop.call_at(next(iter(self._held.values())), self._expire)

    def slot(self) -> Slot:
        """`async with slots.slot(): yield message` — one slot around one write."""
        return Slot(self)


class Slot:
    """One write's slot as an async context manager. A plain class, not a generator: nothing of
    it stays bound in a Watch generator's frame once the write is done (an idle stream keeps no
    closure or timer)."""

    __slots__ = ("_release", "_slots")

    def __init__(self, slots: WriteSlots) -> None:
        self._slots = slots
        self._release: Callable[[], None] | None = None

    async def __aenter__(self) -> None:
        self._release = await self._slots.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._release is not None:
            self._release()
