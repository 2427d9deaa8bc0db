"""WriteSlots bounds the stream writes in flight, and a stalled writer gives its slot back."""

from __future__ import annotations

import asyncio

import pytest

from favorited.api.write_slots import WriteSlots


async def test_at_most_the_slots_are_held_and_a_release_lets_the_next_writer_in() -> None:
    slots = WriteSlots(2, hold_s=60)
    first = await slots.acquire()
    await slots.acquire()
    third = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)  # one turn: the third writer is parked on the semaphore
    assert not third.done()
    first()
    first()  # releasing twice frees one slot, not two
    release = await asyncio.wait_for(third, timeout=5)
    fourth = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    assert not fourth.done(), "the double release must not have made room for a fourth"
    release()
    (await asyncio.wait_for(fourth, timeout=5))()


async def test_a_slot_held_too_long_goes_to_the_next_writer_once() -> None:
    slots = WriteSlots(1, hold_s=0.05)
    stalled = await slots.acquire()  # a client that stopped reading: never released by us
    successor = await asyncio.wait_for(slots.acquire(), timeout=5)
    stalled()  # the stalled write finally completes: its slot was already given back
    waiting = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    assert not waiting.done(), "the late release must not free a second slot"
    successor()
    (await asyncio.wait_for(waiting, timeout=5))()


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        WriteSlots(0)
    with pytest.raises(ValueError, match="hold_s positive"):
        WriteSlots(1, hold_s=0)


async def test_a_slot_taken_after_the_timer_was_set_is_still_given_back() -> None:
    loop = asyncio.get_running_loop()
    slots = WriteSlots(1, hold_s=1.0)
    first_due = loop.time() + 1.0  # no earlier than the one timer's deadline
    (await slots.acquire())()  # sets that timer, and comes back at once
    # Not synchronisation: the next slot must be taken well after the first, so that its
    # deadline is not yet due when that timer fires and only a timer set again can free it.
    await asyncio.sleep(0.5)
    await slots.acquire()  # stalls
    assert loop.time() < first_due, "the first timer must not have fired yet"
    waiting = asyncio.create_task(slots.acquire())
    (await asyncio.wait_for(waiting, timeout=5))()


async def test_in_use_and_waiting_say_how_the_slots_are_taken() -> None:
    slots = WriteSlots(1, hold_s=60)
    assert (slots.in_use(), slots.waiting()) == (0, 0)
    first = await slots.acquire()
    second = asyncio.create_task(slots.acquire())
    third = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)  # one turn: both are parked on the semaphore
    assert (slots.in_use(), slots.waiting()) == (1, 2)
    third.cancel()  # a writer that gives up waiting is no longer counted
    await asyncio.gather(third, return_exceptions=True)
    assert slots.waiting() == 1
    first()
    release = await asyncio.wait_for(second, timeout=5)
    assert (slots.in_use(), slots.waiting()) == (1, 0)
    release()
    assert slots.in_use() == 0
