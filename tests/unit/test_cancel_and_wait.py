"""cancel_and_wait stops tasks without swallowing a cancellation of the one waiting for it."""

from __future__ import annotations

import asyncio

import pytest

from favorited.tasks import cancel_and_wait


async def test_the_task_is_cancelled_and_finished_when_it_returns() -> None:
    task = asyncio.create_task(asyncio.Event().wait())
    await asyncio.sleep(0)  # let it start waiting
    await cancel_and_wait(task)
    assert task.cancelled()


async def test_a_cancellation_of_the_waiter_is_not_swallowed() -> None:
    caught, finish = asyncio.Event(), asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            caught.set()
            await finish.wait()  # still cleaning up when the waiter is cancelled
            raise

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(cancel_and_wait(task))
    await caught.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    finish.set()
    await asyncio.wait([task])
    assert task.cancelled()


async def test_an_exception_the_task_ends_with_is_raised() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise ValueError("cleanup failed") from None

    task = asyncio.create_task(fails_on_cancel())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="cleanup failed"):
        await cancel_and_wait(task)


async def test_several_tasks_are_all_cancelled_and_finished() -> None:
    tasks = [asyncio.create_task(asyncio.Event().wait()) for _ in range(3)]
    await asyncio.sleep(0)
    await cancel_and_wait(*tasks)
    assert all(task.cancelled() for task in tasks)
