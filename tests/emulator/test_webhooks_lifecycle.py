"""Room lifecycle as webhooks: DeleteRoom, empty/departure timeouts, aborted connections."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING

import pytest
from livekit import api

from favorited.livekit_emulator import EmulatorJoinError, JoinFailure, RoomEvent

from ._receiver import RecordingReceiver
from ._support import API_KEY, API_SECRET, FakeClock, join_token
from .test_cli import _read_url

if TYPE_CHECKING:
    from favorited.livekit_emulator import LiveKitEmulator

    from .conftest import EmulatorFactory


def _summary(receiver: RecordingReceiver) -> list[tuple[str, str, int]]:
    """(event, identity, disconnect reason) per verified request."""
    return [
        (e.event, e.participant.identity, e.participant.disconnect_reason) for e in receiver.events
    ]


async def test_delete_room_through_the_sdk(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, receiver: RecordingReceiver
) -> None:
    room = await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))
    hooked.connect(join_token("stage", "alice"))
    hooked.connect(join_token("stage", "bob"))

    await hooked_api.room.delete_room(api.DeleteRoomRequest(room="stage"))
    await hooked.webhooks.wait_idle()

    deleted = api.DisconnectReason.ROOM_DELETED
    assert _summary(receiver)[3:] == [
        ("participant_left", "alice", deleted),
        ("participant_left", "bob", deleted),
        ("room_finished", "", 0),
    ]
    assert {e.room.sid for e in receiver.events} == {room.sid}


async def test_empty_timeout_closes_a_room_nobody_joined(
    hooked: LiveKitEmulator,
    hooked_api: api.LiveKitAPI,
    receiver: RecordingReceiver,
    clock: FakeClock,
) -> None:
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage", empty_timeout=10))

    clock.advance(9)
    assert hooked.close_expired_rooms() == []
    clock.advance(1)
    assert hooked.close_expired_rooms() == ["stage"]
    await hooked.webhooks.wait_idle()

    assert receiver.names == ["room_started", "room_finished"]
    assert "stage" not in hooked.rooms


async def test_zero_timeouts_mean_the_server_defaults(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, clock: FakeClock
) -> None:
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))

    clock.advance(299)
    assert hooked.close_expired_rooms() == []
    clock.advance(1)
    assert hooked.close_expired_rooms() == ["stage"]


async def test_departure_timeout_closes_once_everyone_left(
    hooked: LiveKitEmulator,
    hooked_api: api.LiveKitAPI,
    receiver: RecordingReceiver,
    clock: FakeClock,
) -> None:
    await hooked_api.room.create_room(
        api.CreateRoomRequest(name="stage", empty_timeout=5, departure_timeout=8)
    )
    hooked.connect(join_token("stage", "alice"))
    hooked.connect(join_token("stage", "helper", kind="agent"))
    clock.advance(60)
    # Someone is inside: no timeout applies, however long.
    assert hooked.close_expired_rooms() == []
    hooked.disconnect("stage", "alice")

    clock.advance(7)
    assert hooked.close_expired_rooms() == []
    clock.advance(1)
    assert hooked.close_expired_rooms() == ["stage"]
    await hooked.webhooks.wait_idle()

    # The agent doesn't keep the room open; it is disconnected when the room closes.
    assert _summary(receiver)[3:] == [
        ("participant_left", "alice", api.DisconnectReason.CLIENT_INITIATED),
        ("participant_left", "helper", api.DisconnectReason.ROOM_CLOSED),
        ("room_finished", "", 0),
    ]


async def test_a_rejoin_restarts_the_departure_timeout(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, clock: FakeClock
) -> None:
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage", departure_timeout=8))
    hooked.connect(join_token("stage", "alice"))
    hooked.disconnect("stage", "alice")
    clock.advance(5)
    hooked.connect(join_token("stage", "alice"))
    hooked.disconnect("stage", "alice")

    clock.advance(5)
    assert hooked.close_expired_rooms() == []
    clock.advance(3)
    assert hooked.close_expired_rooms() == ["stage"]


async def test_an_agent_alone_does_not_stop_the_empty_timeout(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, clock: FakeClock
) -> None:
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage", empty_timeout=10))
    hooked.connect(join_token("stage", "helper", kind="agent"))

    clock.advance(10)

    assert hooked.close_expired_rooms() == ["stage"]


async def test_abort_sends_connection_aborted_and_no_joined(
    hooked: LiveKitEmulator,
    hooked_api: api.LiveKitAPI,
    receiver: RecordingReceiver,
    clock: FakeClock,
) -> None:
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage", departure_timeout=8))

    aborted = hooked.abort(join_token("stage", "alice"))
    await hooked.webhooks.wait_idle()

    assert receiver.names == ["room_started", "participant_connection_aborted"]
    assert receiver.events[1].participant.sid == aborted.sid
    assert aborted.state == api.ParticipantInfo.DISCONNECTED
    assert aborted.disconnect_reason == api.DisconnectReason.JOIN_FAILURE
    assert hooked.participants("stage") == []
    # The attempt counts as a visit: the departure timeout applies, not the empty one.
    clock.advance(8)
    assert hooked.close_expired_rooms() == ["stage"]


async def test_abort_of_a_reconnect_still_evicts_the_old_session(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, receiver: RecordingReceiver
) -> None:
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))
    old = hooked.connect(join_token("stage", "alice"))

    hooked.abort(join_token("stage", "alice"))
    await hooked.webhooks.wait_idle()

    assert receiver.names[2:] == ["participant_left", "participant_connection_aborted"]
    assert receiver.events[2].participant.sid == old.sid


async def test_abort_is_refused_like_connect(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, events: list[RoomEvent]
) -> None:
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage", max_participants=1))
    hooked.connect(join_token("stage", "alice"))

    with pytest.raises(EmulatorJoinError) as full:
        hooked.abort(join_token("stage", "bob"))
    with pytest.raises(EmulatorJoinError) as missing:
        hooked.abort(join_token("backstage", "bob"))

    assert (full.value.reason, missing.value.reason) == (
        JoinFailure.ROOM_FULL,
        JoinFailure.ROOM_NOT_FOUND,
    )
    assert len(events) == 2


async def test_background_checks_close_rooms_by_themselves(
    make_emulator: EmulatorFactory, receiver: RecordingReceiver, clock: FakeClock
) -> None:
    emulator = await make_emulator(room_check_interval_s=0.01)
    async with api.LiveKitAPI(emulator.url, API_KEY, API_SECRET) as lkapi:
        await lkapi.room.create_room(api.CreateRoomRequest(name="stage", empty_timeout=1))
    clock.advance(1)

    await emulator.webhooks.wait_for(lambda log: any(a.event == "room_finished" for a in log))

    assert "stage" not in emulator.rooms
    await emulator.stop()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "room checks"]


async def test_cli_sends_webhooks_to_the_flag_and_env_urls(receiver: RecordingReceiver) -> None:
    second = RecordingReceiver(API_KEY, API_SECRET)
    await second.start()
    env = {
        **os.environ,
        "LIVEKIT_API_KEY": API_KEY,
        "LIVEKIT_API_SECRET": API_SECRET,
        "LIVEKIT_EMULATOR_WEBHOOK_URLS": f" {second.url} ,",
    }
    flagged = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "favorited.livekit_emulator", "--port", "0"),
        *("--webhook-url", receiver.url),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    from_env = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "favorited.livekit_emulator", "--port", "0"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        async with asyncio.timeout(30):
            for process, name in ((flagged, "flag"), (from_env, "env")):
                async with api.LiveKitAPI(await _read_url(process), API_KEY, API_SECRET) as lk:
                    await lk.room.create_room(api.CreateRoomRequest(name=name))
            await receiver.wait_for_requests(1)
            await second.wait_for_requests(1)
    finally:
        for process in (flagged, from_env):
            if process.returncode is None:
                process.terminate()
                await process.wait()
        await second.stop()

    assert [e.room.name for e in receiver.events] == ["flag"]
    assert [e.room.name for e in second.events] == ["env"]
