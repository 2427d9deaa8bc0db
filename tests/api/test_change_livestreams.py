"""UpdateLivestream (field masks) and DeleteLivestream (soft, idempotent, authorised)."""

from __future__ import annotations

import json
from collections.abc import Callable

import asyncpg
import grpc
from google.protobuf import duration_pb2, field_mask_pb2, struct_pb2

from favorited.livekit_emulator import LiveKitEmulator
from favorited_api.v1 import livestream_pb2
from favorited_api.v1 import livestream_service_pb2 as pb
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from favorited_api.v1 import participant_service_pb2_grpc as ps_grpc
from tests.api.helpers import create, fails, join
from tests.conftest import Metadata

Auth = Callable[..., Metadata]


def _update(
    livestream_id: str, paths: list[str] | None = None, **fields: object
) -> pb.UpdateLivestreamRequest:
    return pb.UpdateLivestreamRequest(
        livestream=livestream_pb2.Livestream(id=livestream_id, **fields),  # type: ignore[arg-type]
        update_mask=field_mask_pb2.FieldMask(paths=paths) if paths is not None else None,
    )


async def test_update_changes_only_masked_fields_and_pushes_metadata_to_livekit(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    auth: Auth,
    emulator: LiveKitEmulator,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name, description="before")
    metadata = struct_pb2.Struct()
    metadata.update({"scene": "intro"})
    updated = (
        await livestreams.UpdateLivestream(
            _update(
                ls.id, ["title", "metadata"], title="New", description="ignored", metadata=metadata
            ),
            metadata=auth("alice"),
        )
    ).livestream
    assert (updated.title, updated.description) == ("New", "before")
    assert updated.metadata == metadata
    assert updated.update_time.ToDatetime() > ls.update_time.ToDatetime()
    assert json.loads(emulator.rooms[room_name].metadata) == {"scene": "intro"}


async def test_update_without_mask_uses_set_fields_and_star_replaces_all(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth, room_name: str
) -> None:
    ls = await create(livestreams, auth("alice"), room_name, description="d", max_participants=50)
    implicit = (
        await livestreams.UpdateLivestream(
            _update(ls.id, max_participants=10), metadata=auth("alice")
        )
    ).livestream
    assert (implicit.max_participants, implicit.description, implicit.title) == (10, "d", ls.title)
    star = (
        await livestreams.UpdateLivestream(
            _update(
                ls.id,
                ["*"],
                title="Only title",
                max_participants=3,
                empty_timeout=duration_pb2.Duration(seconds=30),
            ),
            metadata=auth("alice"),
        )
    ).livestream
    assert (star.title, star.description, star.max_participants) == ("Only title", "", 3)
    assert star.empty_timeout.seconds == 30


async def test_update_mask_rules(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth, room_name: str
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    for paths, expected in (
        (["room_name"], "room_name is immutable"),
        (["nonsense"], "unknown field 'nonsense'"),
        (["status"], "names no field to change"),
    ):
        failure = await fails(
            livestreams.UpdateLivestream(_update(ls.id, paths, title="x"), metadata=auth("alice"))
        )
        assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
        assert failure.violations == {"update_mask": expected}
    # Output-only paths are ignored next to real ones.
    ok = await livestreams.UpdateLivestream(
        _update(
            ls.id, ["status", "title"], title="T2", status=livestream_pb2.LIVESTREAM_STATUS_ENDED
        ),
        metadata=auth("alice"),
    )
    assert ok.livestream.status == livestream_pb2.LIVESTREAM_STATUS_LIVE
    assert ok.livestream.title == "T2"
    failure = await fails(
        livestreams.UpdateLivestream(_update(ls.id, ["title"], title=""), metadata=auth("alice"))
    )
    assert failure.violations == {"livestream.title": "is required"}


async def test_update_cannot_raise_capacity_past_the_rooms_seats(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth, room_name: str
) -> None:
    ls = await create(livestreams, auth("alice"), room_name, max_participants=5)
    failure = await fails(
        livestreams.UpdateLivestream(_update(ls.id, max_participants=6), metadata=auth("alice"))
    )
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "ROOM_CAPACITY_FIXED",
    )
    lowered = await livestreams.UpdateLivestream(
        _update(ls.id, max_participants=2), metadata=auth("alice")
    )
    assert lowered.livestream.max_participants == 2


async def test_update_is_for_the_creator_or_an_admin_and_not_after_the_end(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth, room_name: str
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    failure = await fails(
        livestreams.UpdateLivestream(_update(ls.id, title="mine"), metadata=auth("mallory"))
    )
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NOT_LIVESTREAM_OWNER",
    )
    by_admin = await livestreams.UpdateLivestream(
        _update(ls.id, title="by ops"), metadata=auth("ops", admin=True)
    )
    assert by_admin.livestream.title == "by ops"
    await livestreams.DeleteLivestream(
        pb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=auth("alice")
    )
    failure = await fails(
        livestreams.UpdateLivestream(_update(ls.id, title="late"), metadata=auth("alice"))
    )
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "LIVESTREAM_TERMINATED",
    )


async def test_update_metadata_fails_cleanly_when_livekit_is_down(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    auth: Auth,
    emulator: LiveKitEmulator,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    metadata = struct_pb2.Struct()
    metadata.update({"k": "v"})
    emulator.fail_all("unavailable")
    failure = await fails(
        livestreams.UpdateLivestream(
            _update(ls.id, ["metadata", "title"], title="nope", metadata=metadata),
            metadata=auth("alice"),
        )
    )
    assert failure.code is grpc.StatusCode.UNAVAILABLE
    emulator.heal()
    got = await livestreams.GetLivestream(
        pb.GetLivestreamRequest(livestream_id=ls.id), metadata=auth("alice")
    )
    assert got.livestream.title == ls.title and not got.livestream.metadata.fields


async def test_delete_ends_stream_room_and_participants_idempotently(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    emulator: LiveKitEmulator,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    await join(participants, auth("alice"), ls.id, role=1)
    for viewer in ("v1", "v2"):
        await join(participants, auth(viewer), ls.id)
    ended = (
        await livestreams.DeleteLivestream(
            pb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=auth("alice")
        )
    ).livestream
    assert ended.status == livestream_pb2.LIVESTREAM_STATUS_ENDED
    assert ended.HasField("end_time")
    assert room_name not in emulator.rooms
    statuses = await db.fetch("SELECT status::text, leave_time FROM participants")
    assert len(statuses) == 3
    assert all(r["status"] == "LEFT" and r["leave_time"] is not None for r in statuses)

    again = (
        await livestreams.DeleteLivestream(
            pb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=auth("ops", admin=True)
        )
    ).livestream
    assert again == ended  # nothing changed, not even end_time


async def test_delete_checks_authorization_even_when_already_ended(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth, room_name: str
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    failure = await fails(
        livestreams.DeleteLivestream(
            pb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=auth("mallory")
        )
    )
    assert failure.code is grpc.StatusCode.PERMISSION_DENIED
    await livestreams.DeleteLivestream(
        pb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=auth("alice")
    )
    failure = await fails(
        livestreams.DeleteLivestream(
            pb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=auth("mallory")
        )
    )
    assert failure.code is grpc.StatusCode.PERMISSION_DENIED


async def test_delete_changes_nothing_when_livekit_fails(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    auth: Auth,
    emulator: LiveKitEmulator,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    emulator.fail_next(1, "internal")
    failure = await fails(
        livestreams.DeleteLivestream(
            pb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=auth("alice")
        )
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.UNAVAILABLE, "LIVEKIT_UNAVAILABLE")
    got = await livestreams.GetLivestream(
        pb.GetLivestreamRequest(livestream_id=ls.id), metadata=auth("alice")
    )
    assert got.livestream.status == livestream_pb2.LIVESTREAM_STATUS_LIVE
    assert room_name in emulator.rooms


async def test_delete_succeeds_when_the_room_is_already_gone(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    auth: Auth,
    emulator: LiveKitEmulator,
    room_name: str,
) -> None:
    from livekit import api

    ls = await create(livestreams, auth("alice"), room_name)
    async with api.LiveKitAPI(
        emulator.url, "APItestkey", "test-livekit-secret-0123456789abcdef-0123456789"
    ) as lk:
        await lk.room.delete_room(api.DeleteRoomRequest(room=room_name))
    ended = await livestreams.DeleteLivestream(
        pb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=auth("alice")
    )
    assert ended.livestream.status == livestream_pb2.LIVESTREAM_STATUS_ENDED


async def test_ending_a_big_livestream_is_not_cut_by_the_statement_timeout(
    database_url: str,
    emulator: LiveKitEmulator,
    auth: Auth,
    db: asyncpg.Pool,
    clean: None,
    room_name: str,
) -> None:
    import grpc as grpc_

    from favorited.app import ApiApp
    from tests.conftest import make_settings

    # A statement timeout far below what ending 20,000 participants takes (their triggers write
    # 20,000 events): the end must still succeed, as one statement.
    app = await ApiApp.start(
        make_settings(database_url, emulator.url, DATABASE_TIMEOUT_SECONDS="0.2")
    )
    try:
        async with grpc_.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            stub = ls_grpc.LivestreamServiceStub(channel)
            ls = await create(stub, auth("alice"), room_name)
            await db.execute(
                "INSERT INTO participants (id, livestream_id, user_id, display_name, role,"
                " connected) SELECT gen_random_uuid(), $1, 'v' || g, 'V', 'VIEWER', true"
                " FROM generate_series(1, 20000) g",
                ls.id,
                timeout=60,
            )
            ended = await stub.DeleteLivestream(
                pb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=auth("alice")
            )
        assert ended.livestream.status == livestream_pb2.LIVESTREAM_STATUS_ENDED
        assert ended.livestream.viewer_count == 0
        assert (
            await db.fetchval(
                "SELECT count(*) FROM participants WHERE livestream_id = $1 AND status = 'JOINED'",
                ls.id,
            )
            == 0
        )
    finally:
        await app.stop()
