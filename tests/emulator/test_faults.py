"""Fault injection: injected Twirp errors and hung calls, seen through the SDK."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
import pytest
from livekit import api

from ._support import API_KEY, API_SECRET

if TYPE_CHECKING:
    from favorited.livekit_emulator import LiveKitEmulator

LIST = api.ListRoomsRequest()


async def test_fail_next_answers_n_calls_with_the_error(
    lkapi: api.LiveKitAPI, emulator: LiveKitEmulator
) -> None:
    emulator.fail_next(2)

    for _ in range(2):
        with pytest.raises(api.ServerError) as exc:
            await lkapi.room.list_rooms(LIST)
        assert (exc.value.code, exc.value.status) == ("unavailable", 503)
    await lkapi.room.list_rooms(LIST)

    assert [r.status for r in emulator.requests] == [503, 503, 200]


async def test_fail_next_does_not_touch_state(
    lkapi: api.LiveKitAPI, emulator: LiveKitEmulator
) -> None:
    emulator.fail_next(1, "internal")

    with pytest.raises(api.ServerError) as exc:
        await lkapi.room.create_room(api.CreateRoomRequest(name="stage"))

    assert (exc.value.code, exc.value.status) == ("internal", 500)
    assert emulator.rooms == {}


async def test_fail_all_until_heal(lkapi: api.LiveKitAPI, emulator: LiveKitEmulator) -> None:
    emulator.fail_all("resource_exhausted")
    for _ in range(3):
        with pytest.raises(api.ServerError) as exc:
            await lkapi.room.list_rooms(LIST)
        assert (exc.value.code, exc.value.status) == ("resource_exhausted", 429)

    emulator.heal()

    await lkapi.room.list_rooms(LIST)


def test_unknown_fault_code_is_rejected(emulator: LiveKitEmulator) -> None:
    with pytest.raises(ValueError, match="not a Twirp error code"):
        emulator.fail_all("teapot")


async def test_hung_sdk_call_times_out_and_stop_is_prompt(
    lkapi: api.LiveKitAPI, emulator: LiveKitEmulator
) -> None:
    emulator.hang_all()

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await lkapi.room.create_room(api.CreateRoomRequest(name="stage"))

    assert emulator.rooms == {}
    # The abandoned call is still held server-side; stop() must release it, not wait it out.
    async with asyncio.timeout(2):
        await emulator.stop()


async def test_sdk_ignores_client_timeout(emulator: LiveKitEmulator) -> None:
    """Canary for livekit-api 1.2.2: RoomService calls pass ``timeout=None`` to aiohttp, which
    disables the session's ClientTimeout, so callers must bound calls with asyncio.timeout.
    If this starts failing, the SDK honours ClientTimeout again."""
    emulator.hang_all()
    short = aiohttp.ClientTimeout(total=0.05)
    async with api.LiveKitAPI(emulator.url, API_KEY, API_SECRET, timeout=short) as client:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1) as outer:
                await client.room.list_rooms(LIST)

    assert outer.expired()


async def test_heal_releases_hung_calls(lkapi: api.LiveKitAPI, emulator: LiveKitEmulator) -> None:
    emulator.hang_all()
    async with asyncio.TaskGroup() as tasks:
        call = tasks.create_task(lkapi.room.create_room(api.CreateRoomRequest(name="stage")))
        await emulator.wait_for_hung_requests(1)
        assert not call.done()
        assert emulator.rooms == {}

        emulator.heal()

    assert call.result().name == "stage"
    assert "stage" in emulator.rooms


async def test_stop_answers_hung_calls_unavailable(
    lkapi: api.LiveKitAPI, emulator: LiveKitEmulator
) -> None:
    emulator.hang_all()
    call = asyncio.create_task(lkapi.room.list_rooms(LIST))
    await emulator.wait_for_hung_requests(1)

    # Without the release, aiohttp would wait out its shutdown timeout (5 s).
    async with asyncio.timeout(2):
        await emulator.stop()

    with pytest.raises(api.ServerError) as exc:
        await call
    assert (exc.value.code, exc.value.status) == ("unavailable", 503)
