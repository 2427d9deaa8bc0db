"""WriteSlots: how many Watch stream messages one API process has in flight at once.

Without a bound, a change watched by 10,000 streams put 10,000 writes into grpc at once; their
completions then queue ahead of everything else the process has to do, and a unary call waited
for a whole pass over the watchers at every step. Measured under the bench's 10,000-watcher
fan-out (docs/performance.md): a health check took 1.5-2.6 s, and JoinLivestream managed 3-6 of
the 50 calls/s offered. With 256 writes in flight the health check answers in 75-270 ms and the
joins run at the offered ~50/s. Waking the watchers a wave at a time in the event loop alone
changed nothing (the queue is grpc's completion queue, not only asyncio's).

Every live message takes a slot, one message per slot; snapshot and replay pages (a stream's
start) do not. A slot is held from handing the message to grpc until grpc asks the stream for
the next one — or for at most `hold_s`: a client that stops reading (its HTTP/2 window full)
keeps its write pending, and without the limit a few hundred such clients would stop every stream
of the process. After `hold_s` its slot goes to the next writer (so "256 in flight" is a bound
on writers that still move, not a hard one); a stalled WatchParticipants stream is then cut off
by its feed once it falls out of the ring (streams/participants.py), a stalled WatchLivestream
only loses its slot. The price: clients that read slowly but steadily share the slots with
everyone, so a few hundred of them, each taking a second or more per message, slow every stream
of the process down with them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType

DEFAULT_SLOTS = 256
DEFAULT_HOLD_S = 1.0


class WriteSlots:
    def __init__(self, slots: int = DEFAULT_SLOTS, *, hold_s: float = DEFAULT_HOLD_S) -> None:
        if slots < 1 or hold_s <= 0:
            raise ValueError("slots must be at least 1 and hold_s positive")
        self._free = asyncio.Semaphore(slots)
        self._hold_s = hold_s

    async def acquire(self) -> Callable[[], None]:
        """Wait for a slot; return its release, which may be called any number of times."""
        await self._free.acquire()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                timer.cancel()
                self._free.release()

        timer = asyncio.get_running_loop().call_later(self._hold_s, release)
        return release

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
