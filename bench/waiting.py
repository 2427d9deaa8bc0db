"""Waiting on conditions that live in another process (rows, queue depths, a child's progress).

They offer nothing to await, so the condition itself is polled; every wait is bounded and says
whether the condition held.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def until(
    condition: Callable[[], Awaitable[bool] | bool], *, timeout_s: float, interval_s: float = 0.05
) -> bool:
    """True as soon as `condition()` holds; False when `timeout_s` passed first."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval_s)
