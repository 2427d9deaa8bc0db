"""JoinLivestream, LeaveLivestream, RemoveParticipant and ListParticipants."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest
from google.protobuf import struct_pb2
from livekit import api

from favorited.livekit_emulator import EmulatorJoinError, LiveKitEmulator
from favorited_api.v1 import livestream_service_pb2 as lpb
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from favorited_api.v1 import participant_pb2
from favorited_api.v1 import participant_service_pb2 as pb
from favorited_api.v1 import participant_service_pb2_grpc as ps_grpc
from tests.api.helpers import create, fails, join
from tests.conftest import LIVEKIT_KEY, LIVEKIT_SECRET, Metadata

Auth = Callable[..., Metadata]
HOST = participant_pb2.PARTICIPANT_ROLE_HOST
VIEWER = participant_pb2.PARTICIPANT_ROLE_VIEWER


async def test_join_returns_a_token_livekit_accepts_with_role_grants(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    emulator: LiveKitEmulator,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    metadata = struct_pb2.Struct()
    metadata.update({"avatar": "a.png"})
    host = await join(participants, auth("alice"), ls.id, role=HOST, display_name="Alice")
    viewer = await join(participants, auth("bob"), ls.id, display_name="Bob", metadata=metadata)

    assert host.participant.role == HOST and viewer.participant.role == VIEWER
    assert viewer.participant.status == participant_pb2.PARTICIPANT_STATUS_JOINED
    assert viewer.participant.user_id == "bob" and viewer.participant.metadata == metadata
    assert viewer.url == emulator.url
    ttl = viewer.expire_time.ToDatetime(UTC) - datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < ttl <= timedelta(hours=24)

    verifier = api.TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET)
    host_claims = verifier.verify(host.token)
    viewer_claims = verifier.verify(viewer.token)
    assert (viewer_claims.identity, viewer_claims.name) == ("bob", "Bob")
    assert viewer_claims.video is not None and host_claims.video is not None
    assert viewer_claims.video.room == room_name and viewer_claims.video.room_join
    assert (viewer_claims.video.can_publish, viewer_claims.video.can_publish_data) == (False, False)
    assert viewer_claims.video.can_subscribe
    assert (host_claims.video.can_publish, host_claims.video.can_publish_data) == (True, True)
    # The emulator verifies the token as LiveKit would and lets the participant in.
    info = emulator.connect(viewer.token)
    assert info.identity == "bob"
    assert [p.identity for p in emulator.participants(room_name)] == ["bob"]


async def test_join_checks_in_spec_order(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    room_name: str,
) -> None:
    missing = await fails(join(participants, auth("bob"), str(uuid.uuid4()), role=HOST))
    assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "LIVESTREAM_NOT_FOUND")

    ls = await create(livestreams, auth("alice"), room_name, max_participants=1)
    not_host = await fails(join(participants, auth("bob"), ls.id, role=HOST))
    assert (not_host.code, not_host.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "HOST_ROLE_RESERVED",
    )
    await join(participants, auth("bob"), ls.id)
    twice = await fails(join(participants, auth("bob"), ls.id))
    assert (twice.code, twice.reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "PARTICIPANT_ALREADY_JOINED",
    )
    full = await fails(join(participants, auth("carol"), ls.id))
    assert (full.code, full.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "LIVESTREAM_FULL")
    # The host's seat is not a viewer seat.
    await join(participants, auth("alice"), ls.id, role=HOST)

    await livestreams.DeleteLivestream(
        lpb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=auth("alice")
    )
    ended = await fails(join(participants, auth("carol"), ls.id, role=HOST))
    assert (ended.code, ended.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "LIVESTREAM_NOT_LIVE",
    )


async def test_join_validates_fields(
    participants: ps_grpc.ParticipantServiceAsyncStub, auth: Auth
) -> None:
    failure = await fails(
        participants.JoinLivestream(
            pb.JoinLivestreamRequest(livestream_id="nope", display_name="", role=7),  # type: ignore[arg-type]
            metadata=auth("bob"),
        )
    )
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.violations) == {"livestream_id", "display_name", "role"}


async def test_concurrent_joins_of_one_user_yield_exactly_one_participant(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    results = await asyncio.gather(
        *(join(participants, auth("bob"), ls.id) for _ in range(20)), return_exceptions=True
    )
    ok = [r for r in results if isinstance(r, pb.JoinLivestreamResponse)]
    failed = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(ok) == 1 and len(failed) == 19
    assert {e.code() for e in failed} == {grpc.StatusCode.ALREADY_EXISTS}
    assert await db.fetchval("SELECT count(*) FROM participants") == 1


async def test_capacity_is_exact_under_concurrent_joins(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name, max_participants=7)
    results = await asyncio.gather(
        *(join(participants, auth(f"v{i}"), ls.id) for i in range(25)), return_exceptions=True
    )
    codes = [
        r.code() if isinstance(r, grpc.aio.AioRpcError) else grpc.StatusCode.OK for r in results
    ]
    assert codes.count(grpc.StatusCode.OK) == 7
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 18
    assert await db.fetchval("SELECT count(*) FROM participants WHERE status = 'JOINED'") == 7


async def test_a_seat_freed_by_leaving_or_removal_is_taken_again(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    """Capacity reads the livestream's seat count (migrations/0009): every way out gives the
    seat back, the host takes none, and the count is the JOINED viewers' at each step."""

    async def seats_agree() -> int:
        row = await db.fetchrow(
            "SELECT l.joined_viewer_count AS counted, (SELECT count(*) FROM participants p"
            " WHERE p.livestream_id = l.id AND p.status = 'JOINED' AND p.role = 'VIEWER')"
            " AS rows FROM livestreams l WHERE l.id = $1",
            ls.id,
        )
        assert row is not None and row["counted"] == row["rows"]
        return int(row["counted"])

    ls = await create(livestreams, auth("alice"), room_name, max_participants=2)
    await join(participants, auth("alice"), ls.id, role=HOST)
    await join(participants, auth("bob"), ls.id)
    carol = await join(participants, auth("carol"), ls.id)
    assert await seats_agree() == 2
    full = await fails(join(participants, auth("dave"), ls.id))
    assert full.reason == "LIVESTREAM_FULL"

    await participants.LeaveLivestream(
        pb.LeaveLivestreamRequest(livestream_id=ls.id), metadata=auth("bob")
    )
    assert await seats_agree() == 1
    await join(participants, auth("dave"), ls.id)
    assert (await fails(join(participants, auth("erin"), ls.id))).reason == "LIVESTREAM_FULL"

    await participants.RemoveParticipant(
        pb.RemoveParticipantRequest(livestream_id=ls.id, participant_id=carol.participant.id),
        metadata=auth("alice"),
    )
    assert await seats_agree() == 1
    await join(participants, auth("erin"), ls.id)
    assert await seats_agree() == 2

    await livestreams.DeleteLivestream(
        lpb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=auth("alice")
    )
    assert await seats_agree() == 0


async def test_request_id_replay_returns_same_participant_with_fresh_token(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    request_id = str(uuid.uuid4())
    first = await join(participants, auth("bob"), ls.id, request_id=request_id)
    again = await join(participants, auth("bob"), ls.id, request_id=request_id)
    assert again.participant == first.participant
    assert again.token  # minted anew for the same identity and room
    other = await fails(join(participants, auth("bob"), ls.id, request_id=str(uuid.uuid4())))
    assert other.reason == "PARTICIPANT_ALREADY_JOINED"
    await participants.LeaveLivestream(
        pb.LeaveLivestreamRequest(livestream_id=ls.id), metadata=auth("bob")
    )
    spent = await fails(join(participants, auth("bob"), ls.id, request_id=request_id))
    assert (spent.code, spent.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REQUEST_ID_REUSED")


async def test_leave_is_idempotent_and_works_without_a_livekit_connection(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    joined = await join(participants, auth("bob"), ls.id)
    left = (
        await participants.LeaveLivestream(
            pb.LeaveLivestreamRequest(livestream_id=ls.id), metadata=auth("bob")
        )
    ).participant
    assert left.id == joined.participant.id
    assert left.status == participant_pb2.PARTICIPANT_STATUS_LEFT and left.HasField("leave_time")
    again = (
        await participants.LeaveLivestream(
            pb.LeaveLivestreamRequest(livestream_id=ls.id), metadata=auth("bob")
        )
    ).participant
    assert again == left
    # Leaving frees the seat: the same user may join again as a new participant.
    rejoined = await join(participants, auth("bob"), ls.id)
    assert rejoined.participant.id != left.id


async def test_leave_disconnects_a_connected_participant_from_livekit(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    emulator: LiveKitEmulator,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    viewer = await join(participants, auth("bob"), ls.id)
    emulator.connect(viewer.token)
    await participants.LeaveLivestream(
        pb.LeaveLivestreamRequest(livestream_id=ls.id), metadata=auth("bob")
    )
    assert emulator.participants(room_name) == []


async def test_leave_succeeds_when_livekit_is_down(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    emulator: LiveKitEmulator,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    await join(participants, auth("bob"), ls.id)
    emulator.fail_all("unavailable")
    left = await participants.LeaveLivestream(
        pb.LeaveLivestreamRequest(livestream_id=ls.id), metadata=auth("bob")
    )
    assert left.participant.status == participant_pb2.PARTICIPANT_STATUS_LEFT


async def test_leave_without_joining_or_unknown_livestream_is_not_found(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    never = await fails(
        participants.LeaveLivestream(
            pb.LeaveLivestreamRequest(livestream_id=ls.id), metadata=auth("x")
        )
    )
    assert (never.code, never.reason) == (grpc.StatusCode.NOT_FOUND, "PARTICIPANT_NOT_FOUND")
    unknown = await fails(
        participants.LeaveLivestream(
            pb.LeaveLivestreamRequest(livestream_id=str(uuid.uuid4())), metadata=auth("x")
        )
    )
    assert unknown.reason == "LIVESTREAM_NOT_FOUND"


async def test_remove_participant_is_for_the_creator_or_an_admin(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    emulator: LiveKitEmulator,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    bob = await join(participants, auth("bob"), ls.id)
    carol = await join(participants, auth("carol"), ls.id)
    emulator.connect(bob.token)
    request = pb.RemoveParticipantRequest(livestream_id=ls.id, participant_id=bob.participant.id)
    denied = await fails(participants.RemoveParticipant(request, metadata=auth("carol")))
    assert (denied.code, denied.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NOT_LIVESTREAM_OWNER",
    )
    removed = (await participants.RemoveParticipant(request, metadata=auth("alice"))).participant
    assert removed.status == participant_pb2.PARTICIPANT_STATUS_LEFT
    assert emulator.participants(room_name) == []
    again = (await participants.RemoveParticipant(request, metadata=auth("alice"))).participant
    assert again == removed
    by_admin = await participants.RemoveParticipant(
        pb.RemoveParticipantRequest(livestream_id=ls.id, participant_id=carol.participant.id),
        metadata=auth("ops", admin=True),
    )
    assert by_admin.participant.status == participant_pb2.PARTICIPANT_STATUS_LEFT
    other = await fails(
        participants.RemoveParticipant(
            pb.RemoveParticipantRequest(livestream_id=ls.id, participant_id=str(uuid.uuid4())),
            metadata=auth("alice"),
        )
    )
    assert (other.code, other.reason) == (grpc.StatusCode.NOT_FOUND, "PARTICIPANT_NOT_FOUND")


async def test_list_participants_filters_and_pages_in_join_order(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    await join(participants, auth("alice"), ls.id, role=HOST)
    users = [f"u{i:02d}" for i in range(12)]
    for user in users:
        await join(participants, auth(user), ls.id)
    await participants.LeaveLivestream(
        pb.LeaveLivestreamRequest(livestream_id=ls.id), metadata=auth("u03")
    )
    seen: list[str] = []
    token = ""
    while True:
        page = await participants.ListParticipants(
            pb.ListParticipantsRequest(
                livestream_id=ls.id,
                page_size=5,
                page_token=token,
                role=VIEWER,
                status=participant_pb2.PARTICIPANT_STATUS_JOINED,
            ),
            metadata=auth("anyone"),
        )
        seen.extend(p.user_id for p in page.participants)
        token = page.next_page_token
        if not token:
            break
    assert seen == [u for u in users if u != "u03"]
    everyone = await participants.ListParticipants(
        pb.ListParticipantsRequest(livestream_id=ls.id), metadata=auth("anyone")
    )
    assert [p.user_id for p in everyone.participants] == ["alice", *users]
    failure = await fails(
        participants.ListParticipants(
            pb.ListParticipantsRequest(livestream_id=str(uuid.uuid4())), metadata=auth("anyone")
        )
    )
    assert failure.reason == "LIVESTREAM_NOT_FOUND"


async def test_token_for_another_room_is_refused_by_livekit(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    emulator: LiveKitEmulator,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    viewer = await join(participants, auth("bob"), ls.id)
    await livestreams.DeleteLivestream(
        lpb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=auth("alice")
    )
    # The room is gone, so the token no longer admits anyone.
    with pytest.raises(EmulatorJoinError):
        emulator.connect(viewer.token)


async def test_every_change_is_logged_with_a_gapless_sequence(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    await asyncio.gather(*(join(participants, auth(f"u{i}"), ls.id) for i in range(10)))
    await participants.LeaveLivestream(
        pb.LeaveLivestreamRequest(livestream_id=ls.id), metadata=auth("u3")
    )
    await livestreams.DeleteLivestream(
        lpb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=auth("alice")
    )
    rows = await db.fetch(
        "SELECT sequence, type::text, participant->>'user_id' AS user_id FROM participant_events"
        " WHERE livestream_id = $1 ORDER BY sequence",
        ls.id,
    )
    assert [r["sequence"] for r in rows] == list(range(1, 13))
    assert [r["type"] for r in rows[:10]] == ["JOINED"] * 10
    assert (rows[10]["type"], rows[10]["user_id"]) == ("LEFT", "u3")
    # The end is one event for the nine still joined, not one LEFT each.
    assert (rows[11]["type"], rows[11]["user_id"]) == ("LIVESTREAM_ENDED", None)
    ended = await db.fetchrow(
        "SELECT last_event_sequence, viewer_count FROM livestreams WHERE id = $1", ls.id
    )
    assert ended is not None and tuple(ended) == (12, 0)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM participants WHERE livestream_id = $1 AND status = 'LEFT'", ls.id
        )
        == 10
    )
