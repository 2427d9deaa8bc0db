"""RoomService behaviour, driven through the unmodified livekit-api client."""

from __future__ import annotations

import pytest
from livekit import api

from favorited.livekit_emulator import LiveKitEmulator, RoomEvent, RoomEventKind

from ._support import START_TIME_S, FakeClock, join_token


async def test_create_room_applies_livekit_defaults(lkapi: api.LiveKitAPI) -> None:
    room = await lkapi.room.create_room(api.CreateRoomRequest(name="stage", metadata="m"))

    assert room.sid.startswith("RM_")
    assert room.name == "stage"
    assert room.metadata == "m"
    assert (room.empty_timeout, room.departure_timeout, room.max_participants) == (300, 20, 0)
    assert room.creation_time == int(START_TIME_S)
    assert room.creation_time_ms == int(START_TIME_S * 1000)


async def test_create_room_keeps_explicit_settings(lkapi: api.LiveKitAPI) -> None:
    room = await lkapi.room.create_room(
        api.CreateRoomRequest(
            name="stage", empty_timeout=30, departure_timeout=5, max_participants=7
        )
    )

    assert (room.empty_timeout, room.departure_timeout, room.max_participants) == (30, 5, 7)


async def test_create_room_is_get_or_create(lkapi: api.LiveKitAPI, clock: FakeClock) -> None:
    first = await lkapi.room.create_room(api.CreateRoomRequest(name="stage", metadata="one"))
    clock.advance(10)

    second = await lkapi.room.create_room(
        api.CreateRoomRequest(name="stage", metadata="two", max_participants=3)
    )

    assert second == first
    assert len((await lkapi.room.list_rooms(api.ListRoomsRequest())).rooms) == 1


async def test_list_rooms_filters_by_name_and_skips_unknown(lkapi: api.LiveKitAPI) -> None:
    for name in ("a", "b", "c"):
        await lkapi.room.create_room(api.CreateRoomRequest(name=name))

    everything = await lkapi.room.list_rooms(api.ListRoomsRequest())
    some = await lkapi.room.list_rooms(api.ListRoomsRequest(names=["c", "nope", "a"]))

    assert [r.name for r in everything.rooms] == ["a", "b", "c"]
    assert [r.name for r in some.rooms] == ["c", "a"]


async def test_delete_room_removes_it(lkapi: api.LiveKitAPI, emulator: LiveKitEmulator) -> None:
    await lkapi.room.create_room(api.CreateRoomRequest(name="stage"))

    await lkapi.room.delete_room(api.DeleteRoomRequest(room="stage"))

    assert (await lkapi.room.list_rooms(api.ListRoomsRequest())).rooms == []
    assert "stage" not in emulator.rooms


async def test_delete_missing_room_is_not_found(lkapi: api.LiveKitAPI) -> None:
    with pytest.raises(api.ServerError) as exc:
        await lkapi.room.delete_room(api.DeleteRoomRequest(room="ghost"))

    assert (exc.value.code, exc.value.status) == (api.ServerErrorCode.NOT_FOUND, 404)
    assert exc.value.message == "requested room does not exist"


async def test_recreated_room_gets_a_new_sid(lkapi: api.LiveKitAPI) -> None:
    first = await lkapi.room.create_room(api.CreateRoomRequest(name="stage"))
    await lkapi.room.delete_room(api.DeleteRoomRequest(room="stage"))

    second = await lkapi.room.create_room(api.CreateRoomRequest(name="stage"))

    assert second.sid != first.sid


@pytest.mark.parametrize(
    "request_",
    [
        api.CreateRoomRequest(name="x" * 257),
        api.CreateRoomRequest(name="ok", metadata="m" * (512 * 1024 + 1)),
    ],
    ids=["name-too-long", "metadata-too-large"],
)
async def test_create_room_limits_are_invalid_argument(
    lkapi: api.LiveKitAPI, request_: api.CreateRoomRequest
) -> None:
    with pytest.raises(api.ServerError) as exc:
        await lkapi.room.create_room(request_)

    assert (exc.value.code, exc.value.status) == (api.ServerErrorCode.INVALID_ARGUMENT, 400)


async def test_update_room_metadata(lkapi: api.LiveKitAPI, emulator: LiveKitEmulator) -> None:
    await lkapi.room.create_room(api.CreateRoomRequest(name="stage", metadata="old"))

    room = await lkapi.room.update_room_metadata(
        api.UpdateRoomMetadataRequest(room="stage", metadata="new")
    )

    assert room.metadata == "new"
    assert emulator.rooms["stage"].metadata == "new"


async def test_update_metadata_of_missing_room_is_not_found(lkapi: api.LiveKitAPI) -> None:
    with pytest.raises(api.ServerError) as exc:
        await lkapi.room.update_room_metadata(
            api.UpdateRoomMetadataRequest(room="ghost", metadata="x")
        )

    assert (exc.value.code, exc.value.status) == ("not_found", 404)


async def test_list_participants_of_missing_room_is_empty(lkapi: api.LiveKitAPI) -> None:
    response = await lkapi.room.list_participants(api.ListParticipantsRequest(room="ghost"))

    assert list(response.participants) == []


async def test_list_and_get_participants(lkapi: api.LiveKitAPI, emulator: LiveKitEmulator) -> None:
    await lkapi.room.create_room(api.CreateRoomRequest(name="stage"))
    alice = emulator.connect(join_token("stage", "alice"))
    bob = emulator.connect(join_token("stage", "bob"))

    listed = await lkapi.room.list_participants(api.ListParticipantsRequest(room="stage"))
    got = await lkapi.room.get_participant(
        api.RoomParticipantIdentity(room="stage", identity="bob")
    )
    rooms = await lkapi.room.list_rooms(api.ListRoomsRequest(names=["stage"]))

    assert list(listed.participants) == [alice, bob]
    assert got == bob
    assert rooms.rooms[0].num_participants == 2


@pytest.mark.parametrize("room", ["stage", "ghost"])
async def test_get_missing_participant_is_not_found(lkapi: api.LiveKitAPI, room: str) -> None:
    await lkapi.room.create_room(api.CreateRoomRequest(name="stage"))

    with pytest.raises(api.ServerError) as exc:
        await lkapi.room.get_participant(api.RoomParticipantIdentity(room=room, identity="x"))

    assert (exc.value.code, exc.value.status) == ("not_found", 404)
    assert exc.value.message == "participant does not exist"


async def test_remove_participant_removes_it(
    lkapi: api.LiveKitAPI, emulator: LiveKitEmulator, events: list[RoomEvent]
) -> None:
    await lkapi.room.create_room(api.CreateRoomRequest(name="stage"))
    alice = emulator.connect(join_token("stage", "alice"))

    await lkapi.room.remove_participant(api.RoomParticipantIdentity(room="stage", identity="alice"))

    assert emulator.participants("stage") == []
    left = events[-1]
    assert left.kind is RoomEventKind.PARTICIPANT_LEFT
    assert left.participant is not None
    assert left.participant.sid == alice.sid
    assert left.participant.disconnect_reason == api.DisconnectReason.PARTICIPANT_REMOVED
    with pytest.raises(api.ServerError) as exc:
        await lkapi.room.remove_participant(
            api.RoomParticipantIdentity(room="stage", identity="alice")
        )
    assert exc.value.code == "not_found"


async def test_update_participant_merges_attributes(
    lkapi: api.LiveKitAPI, emulator: LiveKitEmulator
) -> None:
    await lkapi.room.create_room(api.CreateRoomRequest(name="stage"))
    emulator.connect(
        join_token("stage", "alice", name="Alice", metadata="m0", attributes={"a": "1", "b": "2"})
    )

    updated = await lkapi.room.update_participant(
        api.UpdateParticipantRequest(
            room="stage", identity="alice", metadata="m1", attributes={"a": "", "c": "3"}
        )
    )

    assert updated.name == "Alice"  # empty name in the request means "unchanged"
    assert updated.metadata == "m1"
    assert dict(updated.attributes) == {"b": "2", "c": "3"}
    assert emulator.participants("stage")[0] == updated


async def test_delete_room_disconnects_participants_first(
    lkapi: api.LiveKitAPI, emulator: LiveKitEmulator, events: list[RoomEvent]
) -> None:
    room = await lkapi.room.create_room(api.CreateRoomRequest(name="stage"))
    emulator.connect(join_token("stage", "alice"))

    await lkapi.room.delete_room(api.DeleteRoomRequest(room="stage"))

    assert [e.kind for e in events] == [
        RoomEventKind.ROOM_STARTED,
        RoomEventKind.PARTICIPANT_JOINED,
        RoomEventKind.PARTICIPANT_LEFT,
        RoomEventKind.ROOM_FINISHED,
    ]
    assert events[2].participant is not None
    assert events[2].participant.disconnect_reason == api.DisconnectReason.ROOM_DELETED
    assert {e.room.sid for e in events} == {room.sid}
    assert len({e.id for e in events}) == 4
    assert all(e.id.startswith("EV_") for e in events)


async def test_requests_record_the_sdk_grants(
    lkapi: api.LiveKitAPI, emulator: LiveKitEmulator
) -> None:
    await lkapi.room.create_room(api.CreateRoomRequest(name="stage"))
    await lkapi.room.list_participants(api.ListParticipantsRequest(room="stage"))

    create, list_participants = emulator.requests

    assert (create.method, create.status) == ("CreateRoom", 200)
    assert create.claims is not None
    assert create.claims["video"]["roomCreate"] is True
    assert "roomAdmin" not in create.claims["video"]
    assert list_participants.method == "ListParticipants"
    assert list_participants.claims is not None
    assert list_participants.claims["video"]["roomAdmin"] is True
    assert list_participants.claims["video"]["room"] == "stage"
