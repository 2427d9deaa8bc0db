"""Stopping a background task from another one."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has finished.

    Unlike `with suppress(CancelledError): await task`, a cancellation of the *caller* while it
    waits is not swallowed: only the task's own cancellation is expected here. An exception the
    task ended with instead is raised, as awaiting it would.
    """
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and (exc := task.exception()) is not None:
        raise exc
