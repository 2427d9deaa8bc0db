"""Switchable failures for RoomService calls, driven by tests."""

from __future__ import annotations

import asyncio
from collections import deque

from .errors import RoomServiceError, TwirpCode


def _twirp_code(code: str) -> TwirpCode:
    try:
        return TwirpCode(code)
    except ValueError:
        raise ValueError(f"not a Twirp error code: {code!r}") from None


class FaultInjector:
    """Decides, before a RoomService call runs, whether it fails, hangs or proceeds."""

    def __init__(self) -> None:
        self._queued: deque[TwirpCode] = deque()
        self._always: TwirpCode | None = None
        self._hanging = False
        self._release = asyncio.Event()
        self._closed = False
        self._hung = 0
        self._hung_changed = asyncio.Condition()

    def fail_next(self, n: int, code: str = TwirpCode.UNAVAILABLE) -> None:
        """Answer the next ``n`` calls with this Twirp error."""
        if n < 0:
            raise ValueError("n must be >= 0")
        self._queued.extend([_twirp_code(code)] * n)

    def fail_all(self, code: str = TwirpCode.UNAVAILABLE) -> None:
        """Answer every call with this Twirp error until ``heal()``."""
        self._always = _twirp_code(code)

    def hang_all(self) -> None:
        """Hold every call open until ``heal()`` or ``close()``."""
        if not self._hanging:
            self._hanging = True
            self._release = asyncio.Event()

    def heal(self) -> None:
        """Clear every fault; hung calls resume and are served normally."""
        self._queued.clear()
        self._always = None
        self._hanging = False
        self._release.set()

    def close(self) -> None:
        """Shutting down: hung calls and any later ones fail with ``unavailable``."""
        self._closed = True
        self._release.set()

    @property
    def hung(self) -> int:
        """How many calls are being held right now."""
        return self._hung

    async def wait_for_hung(self, count: int = 1) -> None:
        """Return once at least ``count`` calls are being held."""
        async with self._hung_changed:
            await self._hung_changed.wait_for(lambda: self._hung >= count)

    async def check(self) -> None:
        """Run before each call; raises the injected error, if any."""
        if self._hanging and not self._closed:
            await self._hold(self._release)
        if self._closed:
            raise RoomServiceError(TwirpCode.UNAVAILABLE, "server is shutting down")
        if self._always is not None:
            raise RoomServiceError(self._always, f"injected fault: {self._always}")
        if self._queued:
            code = self._queued.popleft()
            raise RoomServiceError(code, f"injected fault: {code}")

    async def _hold(self, release: asyncio.Event) -> None:
        async with self._hung_changed:
            self._hung += 1
            self._hung_changed.notify_all()
        try:
            await release.wait()
        finally:
            # Decremented without the condition's lock: a cancelled handler must not block.
            self._hung -= 1
