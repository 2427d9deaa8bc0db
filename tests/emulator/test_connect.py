"""Simulated clients joining with access tokens: ``connect`` / ``disconnect``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from livekit import api

from favorited.livekit_emulator import (
    EmulatorJoinError,
    JoinFailure,
    LiveKitEmulator,
    RoomEvent,
    RoomEventKind,
    RoomServiceError,
)

from ._support import START_TIME_S, FakeClock, hand_signed, join_token, mint


@pytest.fixture
async def stage(lkapi: api.LiveKitAPI) -> api.Room:
    return await lkapi.room.create_room(api.CreateRoomRequest(name="stage", max_participants=2))


async def test_connect_adds_an_active_participant_from_the_token(
    emulator: LiveKitEmulator, stage: api.Room, clock: FakeClock, events: list[RoomEvent]
) -> None:
    clock.advance(5)
    token = mint(
        api.VideoGrants(
            room_join=True,
            room="stage",
            can_publish=False,
            can_publish_sources=["microphone", "bogus"],
            hidden=True,
        ),
        identity="alice",
        name="Alice",
        metadata='{"role":"viewer"}',
        attributes={"k": "v"},
    )

    alice = emulator.connect(token)

    assert alice.sid.startswith("PA_")
    assert (alice.identity, alice.name, alice.metadata) == ("alice", "Alice", '{"role":"viewer"}')
    assert dict(alice.attributes) == {"k": "v"}
    assert alice.state == api.ParticipantInfo.ACTIVE
    assert alice.kind == api.ParticipantInfo.STANDARD
    assert alice.joined_at == int(START_TIME_S) + 5
    assert alice.permission.can_publish is False
    assert alice.permission.can_subscribe is True
    assert alice.permission.hidden is True
    assert list(alice.permission.can_publish_sources) == [api.TrackSource.MICROPHONE]
    assert emulator.participants("stage") == [alice]
    assert emulator.rooms["stage"].num_participants == 1
    joined = events[-1]
    assert joined.kind is RoomEventKind.PARTICIPANT_JOINED
    assert joined.participant == alice
    assert joined.room.sid == stage.sid


async def test_connected_participant_is_visible_to_the_sdk(
    emulator: LiveKitEmulator, lkapi: api.LiveKitAPI, stage: api.Room
) -> None:
    alice = emulator.connect(join_token("stage", "alice"))

    listed = await lkapi.room.list_participants(api.ListParticipantsRequest(room="stage"))

    assert [p.sid for p in listed.participants] == [alice.sid]


def _token_for(case: str) -> str:
    grants = api.VideoGrants(room_join=True, room="stage")
    match case:
        case "wrong-secret":
            return mint(grants, identity="a", api_secret="x" * 40)
        case "unknown-key":
            return mint(grants, identity="a", api_key="APIother")
        case "expired":
            return mint(grants, identity="a", ttl=timedelta(minutes=-2))
        case "garbled":
            return "not.a.jwt"
        case "no-room-join":
            return mint(api.VideoGrants(room_admin=True, room="stage"), identity="a")
        case "no-grants":
            return mint(identity="a")
        case "no-identity":
            return hand_signed({"sub": "", "video": {"roomJoin": True, "room": "stage"}})
        case "long-identity":
            return join_token("stage", "x" * 257)
        case "no-room":
            return hand_signed({"sub": "a", "video": {"roomJoin": True}})
        case "wrong-room":
            return join_token("backstage", "a")
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong-secret", JoinFailure.INVALID_TOKEN),
        ("unknown-key", JoinFailure.INVALID_TOKEN),
        ("expired", JoinFailure.INVALID_TOKEN),
        ("garbled", JoinFailure.INVALID_TOKEN),
        ("no-room-join", JoinFailure.PERMISSION_DENIED),
        ("no-grants", JoinFailure.PERMISSION_DENIED),
        ("no-identity", JoinFailure.IDENTITY_EMPTY),
        ("long-identity", JoinFailure.IDENTITY_TOO_LONG),
        ("no-room", JoinFailure.NO_ROOM_NAME),
        ("wrong-room", JoinFailure.ROOM_NOT_FOUND),
    ],
)
async def test_connect_rejects_bad_tokens(
    emulator: LiveKitEmulator,
    stage: api.Room,
    events: list[RoomEvent],
    case: str,
    reason: JoinFailure,
) -> None:
    with pytest.raises(EmulatorJoinError) as exc:
        emulator.connect(_token_for(case))

    assert exc.value.reason is reason
    assert emulator.participants("stage") == []
    assert [e.kind for e in events] == [RoomEventKind.ROOM_STARTED]


async def test_connect_does_not_auto_create_rooms(emulator: LiveKitEmulator) -> None:
    with pytest.raises(EmulatorJoinError) as exc:
        emulator.connect(join_token("stage", "alice"))

    assert exc.value.reason is JoinFailure.ROOM_NOT_FOUND
    assert emulator.rooms == {}


async def test_capacity_is_enforced(emulator: LiveKitEmulator, stage: api.Room) -> None:
    emulator.connect(join_token("stage", "alice"))
    emulator.connect(join_token("stage", "bob"))

    with pytest.raises(EmulatorJoinError) as exc:
        emulator.connect(join_token("stage", "carol"))

    assert exc.value.reason is JoinFailure.ROOM_FULL
    assert [p.identity for p in emulator.participants("stage")] == ["alice", "bob"]


async def test_agents_do_not_count_toward_capacity(
    emulator: LiveKitEmulator, stage: api.Room
) -> None:
    emulator.connect(join_token("stage", "alice"))
    emulator.connect(join_token("stage", "bob"))

    agent = emulator.connect(join_token("stage", "agent-1", kind="agent"))

    assert agent.kind == api.ParticipantInfo.AGENT
    assert len(emulator.participants("stage")) == 3
    assert emulator.rooms["stage"].num_participants == 2


async def test_unlimited_room_accepts_many(
    emulator: LiveKitEmulator, lkapi: api.LiveKitAPI
) -> None:
    await lkapi.room.create_room(api.CreateRoomRequest(name="big"))

    for i in range(20):
        emulator.connect(join_token("big", f"user-{i}"))

    assert emulator.rooms["big"].num_participants == 20


async def test_duplicate_identity_replaces_the_old_session(
    emulator: LiveKitEmulator, stage: api.Room, events: list[RoomEvent]
) -> None:
    emulator.connect(join_token("stage", "bob"))
    first = emulator.connect(join_token("stage", "alice"))

    second = emulator.connect(join_token("stage", "alice"))

    assert second.sid != first.sid
    assert [p.sid for p in emulator.participants("stage") if p.identity == "alice"] == [second.sid]
    left, joined = events[-2:]
    assert left.kind is RoomEventKind.PARTICIPANT_LEFT
    assert left.participant is not None
    assert left.participant.sid == first.sid
    assert left.participant.disconnect_reason == api.DisconnectReason.DUPLICATE_IDENTITY
    assert joined.kind is RoomEventKind.PARTICIPANT_JOINED
    assert joined.participant is not None
    assert joined.participant.sid == second.sid


async def test_disconnect_removes_the_participant(
    emulator: LiveKitEmulator, stage: api.Room, events: list[RoomEvent]
) -> None:
    alice = emulator.connect(join_token("stage", "alice"))

    gone = emulator.disconnect("stage", "alice")

    assert gone.sid == alice.sid
    assert gone.state == api.ParticipantInfo.DISCONNECTED
    assert gone.disconnect_reason == api.DisconnectReason.CLIENT_INITIATED
    assert emulator.participants("stage") == []
    assert events[-1].kind is RoomEventKind.PARTICIPANT_LEFT


async def test_disconnect_of_unknown_participant_raises(
    emulator: LiveKitEmulator, stage: api.Room
) -> None:
    with pytest.raises(RoomServiceError) as exc:
        emulator.disconnect("stage", "nobody")

    assert exc.value.code == "not_found"


async def test_returned_infos_are_copies(emulator: LiveKitEmulator, stage: api.Room) -> None:
    alice = emulator.connect(join_token("stage", "alice"))

    alice.metadata = "tampered"
    emulator.rooms["stage"].metadata = "tampered"

    assert emulator.participants("stage")[0].metadata == ""
    assert emulator.rooms["stage"].metadata == ""
