"""Joins arriving together (and so sharing one statement) keep every rule of a lone join."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import asyncpg
import grpc

from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from favorited_api.v1 import participant_service_pb2 as pb
from favorited_api.v1 import participant_service_pb2_grpc as ps_grpc
from tests.api.helpers import create, join
from tests.conftest import Metadata

Auth = Callable[..., Metadata]


def _code(result: object) -> grpc.StatusCode:
    if isinstance(result, grpc.aio.AioRpcError):
        return result.code()
    assert isinstance(result, pb.JoinLivestreamResponse), result
    return grpc.StatusCode.OK


async def test_concurrent_joins_of_several_livestreams_keep_capacity_uniqueness_and_replay(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    full = await create(livestreams, auth("alice"), f"{room_name}-full", max_participants=5)
    same_user = await create(livestreams, auth("alice"), f"{room_name}-same")
    retried = await create(livestreams, auth("alice"), f"{room_name}-retry")
    request_id = str(uuid.uuid4())
    calls = [
        *(join(participants, auth(f"viewer-{i}"), full.id) for i in range(12)),
        *(join(participants, auth("dup"), same_user.id) for _ in range(8)),
        *(join(participants, auth("carol"), retried.id, request_id=request_id) for _ in range(8)),
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    codes = [_code(r) for r in results]

    assert codes[:12].count(grpc.StatusCode.OK) == 5
    assert codes[:12].count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 7
    assert codes[12:20].count(grpc.StatusCode.OK) == 1
    assert codes[12:20].count(grpc.StatusCode.ALREADY_EXISTS) == 7
    replays = results[20:]
    assert all(isinstance(r, pb.JoinLivestreamResponse) for r in replays)
    assert len({r.participant.id for r in replays if isinstance(r, pb.JoinLivestreamResponse)}) == 1
    rows = await db.fetch(
        "SELECT livestream_id::text, count(*) FROM participants WHERE status = 'JOINED' "
        "GROUP BY livestream_id"
    )
    joined: dict[str, int] = {row[0]: row[1] for row in rows}
    assert joined == {full.id: 5, same_user.id: 1, retried.id: 1}


async def test_cancelled_joins_leave_the_others_answered_and_later_joins_served(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    calls = [
        participants.JoinLivestream(
            pb.JoinLivestreamRequest(livestream_id=ls.id, display_name="Viewer"),
            metadata=auth(f"viewer-{i}"),
        )
        for i in range(30)
    ]
    for call in calls[::2]:
        call.cancel()
    results = await asyncio.gather(*calls, return_exceptions=True)
    kept = results[1::2]
    assert all(isinstance(r, pb.JoinLivestreamResponse) for r in kept)
    # A cancelled call may or may not have been joined (its statement may have run); never more.
    count = await db.fetchval("SELECT count(*) FROM participants WHERE status = 'JOINED'")
    assert 15 <= count <= 30
    late = await join(participants, auth("late"), ls.id)
    assert late.participant.user_id == "late"


async def test_a_locked_livestream_holds_up_only_its_own_joins(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    busy = await create(livestreams, auth("alice"), f"{room_name}-busy")
    free = await create(livestreams, auth("alice"), f"{room_name}-free")
    async with db.acquire() as conn, conn.transaction():
        # As a long DeleteLivestream would: the row stays locked until this block ends.
        await conn.execute("SELECT 1 FROM livestreams WHERE id = $1 FOR UPDATE", busy.id)
        waiting = [
            asyncio.ensure_future(join(participants, auth(f"b{i}"), busy.id)) for i in range(5)
        ]
        served = await asyncio.gather(
            *(join(participants, auth(f"f{i}"), free.id) for i in range(10))
        )
        assert {r.participant.livestream_id for r in served} == {free.id}
        assert not any(task.done() for task in waiting)
    joined = await asyncio.gather(*waiting)
    assert {r.participant.livestream_id for r in joined} == {busy.id}


async def test_a_retry_may_spell_the_livestream_id_differently(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    request_id = str(uuid.uuid4())
    first = await join(participants, auth("bob"), ls.id, request_id=request_id)
    again = await join(participants, auth("bob"), ls.id.upper(), request_id=request_id)
    assert again.participant == first.participant
