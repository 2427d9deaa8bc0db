"""A TaskGroup that synchronous code can add tasks to, and that ``stop()`` can end."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Coroutine


class TaskSupervisor:
    """Runs its children under one ``asyncio.TaskGroup`` inside a dedicated task.

    The group lives in its own task rather than in the caller's ``start()``/``stop()``:
    a child's crash would otherwise cancel whichever unrelated task happened to call
    ``start()``. A crash still cancels the siblings and surfaces from ``stop()``.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._group: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._children: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``, while tasks may be added."""
        return self._group is not None and not self._closing.is_set()

    async def start(self) -> None:
        """Open the group; returns once ``spawn`` may be called."""
        if self._runner is not None:
            raise RuntimeError(f"{self._name} can only be started once")
        ready = asyncio.Event()
        self._runner = asyncio.create_task(self._run(ready), name=self._name)
        # Entering a TaskGroup never suspends, so the runner reaches `ready.set()` on its
        # first step and this cannot wait forever.
        await ready.wait()

    def spawn(self, coro: Coroutine[object, object, None], name: str) -> asyncio.Task[None]:
        """Run ``coro`` as a child; the reference is kept until it finishes."""
        if self._group is None or self._closing.is_set():
            coro.close()
            raise RuntimeError(f"{self._name} is not running")
        task = self._group.create_task(coro, name=name)
        self._children.add(task)
        task.add_done_callback(self._children.discard)
        return task

    async def stop(self, *, drain_timeout_s: float = 0.0) -> None:
        """Let children finish for up to ``drain_timeout_s``, cancel the rest, and wait.

        Raises:
            ExceptionGroup: a child failed (the TaskGroup's own report).
        """
        runner = self._runner
        if runner is None or self._closing.is_set():
            return
        self._closing.set()
        try:
            if drain_timeout_s > 0:
                await asyncio.wait([runner], timeout=drain_timeout_s)
        finally:
            # Also when stop() itself is cancelled: nothing may outlive the owner.
            for child in list(self._children):
                child.cancel()
        await runner

    async def _run(self, ready: asyncio.Event) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                ready.set()
                await self._closing.wait()
        finally:
            # Also after a child's crash ended the group early: spawn() must refuse then.
            self._group = None
