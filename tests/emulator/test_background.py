"""``TaskSupervisor``: kept tasks, prompt cancellation, crashes surfaced."""

from __future__ import annotations

import asyncio

import pytest

from favorited.livekit_emulator.background import TaskSupervisor


async def _forever() -> None:
    await asyncio.Event().wait()


async def test_stop_cancels_children_and_refuses_new_ones() -> None:
    supervisor = TaskSupervisor("test")
    await supervisor.start()
    child = supervisor.spawn(_forever(), name="forever")

    await supervisor.stop()

    assert child.cancelled()
    assert not supervisor.running
    with pytest.raises(RuntimeError):
        supervisor.spawn(_forever(), name="late")


async def test_stop_can_let_children_finish() -> None:
    supervisor = TaskSupervisor("test")
    await supervisor.start()
    go = asyncio.Event()
    finished: list[str] = []

    async def work() -> None:
        await go.wait()
        finished.append("work")

    supervisor.spawn(work(), name="work")
    stopping = asyncio.create_task(supervisor.stop(drain_timeout_s=5))
    go.set()
    await stopping

    assert finished == ["work"]


async def test_a_crashed_child_surfaces_from_stop() -> None:
    supervisor = TaskSupervisor("test")
    await supervisor.start()
    sibling = supervisor.spawn(_forever(), name="sibling")

    async def crash() -> None:
        raise ValueError("bug")

    crashed = supervisor.spawn(crash(), name="crash")
    await asyncio.wait([crashed])

    with pytest.raises(ExceptionGroup) as group:
        await supervisor.stop()

    assert group.group_contains(ValueError, match="bug")
    assert sibling.cancelled()
    assert not supervisor.running
