"""Waiting on conditions that live in another process.

PostgreSQL rows, a broker's port or a subprocess's progress offer nothing to await, so these
helpers poll the condition itself. They never wait for a fixed time: they return the moment the
condition holds, and pytest-timeout bounds them when it never does.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

POLL_INTERVAL_S = 0.02


async def until(condition: Callable[[], Awaitable[bool] | bool]) -> None:
    """Return as soon as `condition()` is true."""
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await asyncio.sleep(POLL_INTERVAL_S)
