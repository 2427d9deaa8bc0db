"""CreateLivestream through the generated stub, against real PostgreSQL and the LiveKit emulator."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import grpc
from google.protobuf import duration_pb2, struct_pb2

from favorited.livekit_emulator import LiveKitEmulator
from favorited_api.v1 import livestream_pb2
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from tests.api.helpers import create, fails
from tests.conftest import Metadata

Auth = Callable[..., Metadata]


async def test_create_goes_live_with_defaults_and_creates_the_room(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    auth: Auth,
    emulator: LiveKitEmulator,
    room_name: str,
) -> None:
    metadata = struct_pb2.Struct()
    metadata.update({"topic": "cooking", "tags": ["a", "b"]})
    ls = await create(livestreams, auth("alice"), f"  {room_name.upper()}!! ", metadata=metadata)

    assert ls.status == livestream_pb2.LIVESTREAM_STATUS_LIVE
    assert ls.room_name == room_name
    assert ls.created_by == "alice"
    assert ls.max_participants == 100
    assert ls.empty_timeout.seconds == 86_400
    assert ls.HasField("start_time") and not ls.HasField("end_time")
    assert ls.livekit_room_sid.startswith("RM_")
    uuid.UUID(ls.id)
    room = emulator.rooms[room_name]
    assert room.sid == ls.livekit_room_sid
    assert room.empty_timeout == 86_400
    assert room.max_participants == 101  # 100 viewer seats + the host's
    assert json.loads(room.metadata) == {"topic": "cooking", "tags": ["a", "b"]}


async def test_create_takes_explicit_bounds(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    auth: Auth,
    emulator: LiveKitEmulator,
    room_name: str,
) -> None:
    ls = await create(
        livestreams,
        auth("alice"),
        room_name,
        max_participants=5,
        empty_timeout=duration_pb2.Duration(seconds=60),
    )
    assert (ls.max_participants, ls.empty_timeout.seconds) == (5, 60)
    assert emulator.rooms[room_name].max_participants == 6


async def test_create_reports_every_invalid_field_at_once(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth, db: asyncpg.Pool
) -> None:
    failure = await fails(
        create(
            livestreams,
            auth("alice"),
            "!!!",
            title="",
            max_participants=10_001,
            empty_timeout=duration_pb2.Duration(seconds=1, nanos=500),
        )
    )
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "INVALID_ARGUMENT"
    assert set(failure.violations) == {
        "livestream.room_name",
        "livestream.title",
        "livestream.max_participants",
        "livestream.empty_timeout",
    }
    assert await db.fetchval("SELECT count(*) FROM livestreams") == 0


async def test_create_rejects_out_of_range_timeout_and_negative_capacity(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth, room_name: str
) -> None:
    failure = await fails(
        create(
            livestreams,
            auth("alice"),
            room_name,
            max_participants=-1,
            empty_timeout=duration_pb2.Duration(seconds=8 * 86_400),
        )
    )
    assert set(failure.violations) == {"livestream.max_participants", "livestream.empty_timeout"}


async def test_room_name_is_unique_while_active_and_reusable_after_end(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth, room_name: str
) -> None:
    from favorited_api.v1 import livestream_service_pb2 as pb

    first = await create(livestreams, auth("alice"), room_name)
    failure = await fails(create(livestreams, auth("bob"), room_name.upper()))
    assert failure.code is grpc.StatusCode.ALREADY_EXISTS
    assert failure.reason == "LIVESTREAM_ROOM_NAME_TAKEN"
    assert failure.metadata == {"room_name": room_name}

    await livestreams.DeleteLivestream(
        pb.DeleteLivestreamRequest(livestream_id=first.id), metadata=auth("alice")
    )
    second = await create(livestreams, auth("bob"), room_name)
    assert second.id != first.id
    assert second.status == livestream_pb2.LIVESTREAM_STATUS_LIVE
    assert second.livekit_room_sid != first.livekit_room_sid


async def test_request_id_retry_returns_the_same_livestream(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth, db: asyncpg.Pool, room_name: str
) -> None:
    request_id = str(uuid.uuid4())
    results = await asyncio.gather(
        *(create(livestreams, auth("alice"), room_name, request_id=request_id) for _ in range(6))
    )
    assert len({ls.id for ls in results}) == 1
    assert await db.fetchval("SELECT count(*) FROM livestreams") == 1
    # The key belongs to its caller: another user's identical request_id is a new request.
    failure = await fails(create(livestreams, auth("bob"), room_name, request_id=request_id))
    assert failure.reason == "LIVESTREAM_ROOM_NAME_TAKEN"


async def test_livekit_failure_leaves_error_and_no_room(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    auth: Auth,
    emulator: LiveKitEmulator,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    emulator.fail_all("unavailable")
    failure = await fails(create(livestreams, auth("alice"), room_name))
    assert failure.code is grpc.StatusCode.UNAVAILABLE
    assert failure.reason == "LIVEKIT_UNAVAILABLE"
    rows = await db.fetch("SELECT status::text, end_time FROM livestreams")
    assert [(r["status"], r["end_time"]) for r in rows] == [("ERROR", None)]
    emulator.heal()
    assert room_name not in emulator.rooms
    # ERROR is terminal and frees the name.
    again = await create(livestreams, auth("alice"), room_name)
    assert again.status == livestream_pb2.LIVESTREAM_STATUS_LIVE


async def test_livekit_that_hangs_times_out_as_unavailable(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    auth: Auth,
    emulator: LiveKitEmulator,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    emulator.hang_all()
    failure = await fails(create(livestreams, auth("alice"), room_name))
    assert failure.code is grpc.StatusCode.UNAVAILABLE
    assert await db.fetchval("SELECT status::text FROM livestreams") == "ERROR"


async def test_hostile_strings_are_stored_verbatim(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth, room_name: str
) -> None:
    from favorited_api.v1 import livestream_service_pb2 as pb

    title = "'); DROP TABLE livestreams; -- 🎥 ünïcødé \u202e\t"
    description = "x" * 5000
    metadata = struct_pb2.Struct()
    metadata.update({"sql": "' OR 1=1 --", "emoji": "🔥", "nested": {"k": [1, "two", None]}})
    ls = await create(
        livestreams,
        auth("alice"),
        room_name,
        title=title,
        description=description,
        metadata=metadata,
    )
    got = await livestreams.GetLivestream(
        pb.GetLivestreamRequest(livestream_id=ls.id), metadata=auth("bob")
    )
    assert got.livestream.title == title
    assert got.livestream.description == description
    assert got.livestream.metadata == metadata


async def test_hostile_strings_that_cannot_be_stored_are_rejected(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth, db: asyncpg.Pool, room_name: str
) -> None:
    nul_metadata = struct_pb2.Struct()
    nul_metadata.update({"k\x00": "v"})
    huge_metadata = struct_pb2.Struct()
    huge_metadata.update({"blob": "x" * 20_000})
    cases: list[tuple[dict[str, Any], str]] = [
        ({"title": "a\x00b"}, "livestream.title"),
        ({"title": "t" * 201}, "livestream.title"),
        ({"description": "d" * 5001}, "livestream.description"),
        ({"description": "\x00"}, "livestream.description"),
        ({"metadata": nul_metadata}, "livestream.metadata"),
        ({"metadata": huge_metadata}, "livestream.metadata"),
        ({"room_name": "r" * 129}, "livestream.room_name"),
        ({"room_name": "r" * 100_000}, "livestream.room_name"),
        ({"request_id": "\x00"}, "request_id"),
    ]
    for fields, field in cases:
        name = fields.pop("room_name", room_name)
        request_id = fields.pop("request_id", "")
        failure = await fails(
            create(livestreams, auth("alice"), name, request_id=request_id, **fields)
        )
        assert failure.code is grpc.StatusCode.INVALID_ARGUMENT, field
        assert list(failure.violations) == [field]
    assert await db.fetchval("SELECT count(*) FROM livestreams") == 0
