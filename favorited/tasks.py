"""Stopping background tasks from another task."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any]) -> None:
    """Cancel `tasks` and wait until all have finished.

    Unlike `with suppress(CancelledError): await task`, a cancellation of the *caller* while it
    waits is not swallowed: only the tasks' own cancellation is expected here. An exception a
    task ended with instead is raised (the first, in the order given), as awaiting it would.
    """
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled() and (exc := task.exception()) is not None:
            raise exc
