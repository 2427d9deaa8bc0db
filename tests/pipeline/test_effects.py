"""Every event type's effect, through shim → RabbitMQ → consumer → PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import asyncpg

from favorited.app import ConsumerApp
from favorited_api.v1 import livestream_pb2
from favorited_api.v1 import livestream_service_pb2 as lpb
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from favorited_api.v1 import participant_service_pb2_grpc as ps_grpc
from tests.api.helpers import create, join
from tests.conftest import Metadata
from tests.pipeline.conftest import Post, eventually
from tests.support.livekit_webhooks import event_body, sid

Auth = Callable[..., Metadata]
INBOX = "SELECT count(*) FROM webhook_inbox"


def _ms() -> int:
    return int(time.time() * 1000)


async def _participant(db: asyncpg.Pool, user: str) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT status::text, livekit_participant_sid AS sid, connected FROM participants"
        " WHERE user_id = $1 ORDER BY join_time DESC LIMIT 1",
        user,
    )
    assert row is not None
    return row


async def _figures(db: asyncpg.Pool, livestream_id: str) -> tuple[int, int, int]:
    row = await db.fetchrow(
        "SELECT viewer_count, peak_viewer_count, unique_viewer_count FROM livestreams WHERE id=$1",
        livestream_id,
    )
    assert row is not None
    return (row[0], row[1], row[2])


async def test_join_connect_leave_and_live_figures(
    consumer: ConsumerApp,
    post: Post,
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    room: dict[str, Any] = {"room_sid": ls.livekit_room_sid, "room_name": room_name}
    await join(participants, auth("bob"), ls.id)
    bob_sid, carol_sid = sid("PA_"), sid("PA_")
    _, joined = event_body(
        "participant_joined", **room, participant_sid=bob_sid, identity="bob", joined_at_ms=_ms()
    )
    # carol never called JoinLivestream but holds a valid token: LiveKit admitted her.
    _, carol = event_body(
        "participant_joined",
        **room,
        participant_sid=carol_sid,
        identity="carol",
        name="Carol",
        joined_at_ms=_ms(),
    )
    assert await post(joined) == 200 and await post(carol) == 200
    await eventually(db, INBOX, 2)
    bob = await _participant(db, "bob")
    assert (bob["status"], bob["sid"], bob["connected"]) == ("JOINED", bob_sid, True)
    assert (await _participant(db, "carol"))["status"] == "JOINED"
    assert await _figures(db, ls.id) == (2, 2, 2)

    _, left = event_body("participant_left", **room, participant_sid=bob_sid, identity="bob")
    assert await post(left) == 200
    await eventually(db, INBOX, 3)
    bob = await _participant(db, "bob")
    assert (bob["status"], bob["connected"]) == ("LEFT", False)
    assert await _figures(db, ls.id) == (1, 2, 2)


async def test_old_sessions_late_left_never_ends_the_reconnected_one(
    consumer: ConsumerApp,
    post: Post,
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    room: dict[str, Any] = {"room_sid": ls.livekit_room_sid, "room_name": room_name}
    await join(participants, auth("bob"), ls.id)
    old, new = sid("PA_"), sid("PA_")
    t0 = _ms()
    for body in (
        event_body(
            "participant_joined", **room, participant_sid=old, identity="bob", joined_at_ms=t0
        )[1],
        event_body(
            "participant_joined", **room, participant_sid=new, identity="bob", joined_at_ms=t0 + 5
        )[1],
        event_body("participant_left", **room, participant_sid=old, identity="bob")[1],
    ):
        assert await post(body) == 200
        await eventually(
            db,
            "SELECT count(*) FROM webhook_inbox WHERE outcome <> 'pending'",
            await db.fetchval(INBOX),
        )
    await eventually(db, INBOX, 3)
    bob = await _participant(db, "bob")
    assert (bob["status"], bob["sid"], bob["connected"]) == ("JOINED", new, True)


async def test_room_finished_ends_only_the_matching_incarnation(
    consumer: ConsumerApp,
    post: Post,
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    first = await create(livestreams, auth("alice"), room_name)
    await livestreams.DeleteLivestream(
        lpb.DeleteLivestreamRequest(livestream_id=first.id), metadata=auth("alice")
    )
    second = await create(livestreams, auth("alice"), room_name)
    for user in ("u1", "u2", "u3"):
        await join(participants, auth(user), second.id)
    room: dict[str, Any] = {"room_sid": second.livekit_room_sid, "room_name": room_name}
    for user in ("u1", "u2"):  # two of them connect
        _, body = event_body(
            "participant_joined",
            **room,
            participant_sid=sid("PA_"),
            identity=user,
            joined_at_ms=_ms(),
        )
        assert await post(body) == 200
    await eventually(db, INBOX, 2)
    assert await _figures(db, second.id) == (2, 2, 2)
    # A late room_finished of the earlier incarnation (same name, old sid) changes nothing.
    _, stale = event_body("room_finished", room_sid=first.livekit_room_sid, room_name=room_name)
    assert await post(stale) == 200
    await eventually(db, INBOX, 3)
    got = await livestreams.GetLivestream(
        lpb.GetLivestreamRequest(livestream_id=second.id), metadata=auth("alice")
    )
    assert got.livestream.status == livestream_pb2.LIVESTREAM_STATUS_LIVE

    _, finished = event_body("room_finished", room_sid=second.livekit_room_sid, room_name=room_name)
    assert await post(finished) == 200
    await eventually(db, INBOX, 4)
    got = await livestreams.GetLivestream(
        lpb.GetLivestreamRequest(livestream_id=second.id), metadata=auth("alice")
    )
    assert got.livestream.status == livestream_pb2.LIVESTREAM_STATUS_ENDED
    assert (
        await db.fetchval(
            "SELECT count(*) FROM participants WHERE livestream_id = $1 AND status = 'JOINED'",
            second.id,
        )
        == 0
    )
    # Nobody is watching any more; the peak and the unique count stay.
    assert await _figures(db, second.id) == (0, 2, 2)
    # The end is one event: three JOINED, two CONNECTED, then LIVESTREAM_ENDED, no LEFT each.
    types = await db.fetch(
        "SELECT type::text FROM participant_events WHERE livestream_id = $1 ORDER BY sequence",
        second.id,
    )
    assert [t[0] for t in types] == ["JOINED"] * 3 + ["CONNECTED"] * 2 + ["LIVESTREAM_ENDED"]


async def test_duplicates_apply_once_and_unknown_events_are_counted(
    consumer: ConsumerApp,
    post: Post,
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    room: dict[str, Any] = {"room_sid": ls.livekit_room_sid, "room_name": room_name}
    _, joined = event_body(
        "participant_joined",
        **room,
        participant_sid=sid("PA_"),
        identity="dave",
        joined_at_ms=_ms(),
    )
    for _ in range(3):
        assert await post(joined) == 200
    _, track = event_body("track_published", **room, participant_sid=sid("PA_"), identity="dave")
    assert await post(track) == 200
    await eventually(db, "SELECT count(*) FROM webhook_inbox WHERE outcome <> 'pending'", 2)
    outcomes = await db.fetch("SELECT event, outcome FROM webhook_inbox ORDER BY event")
    assert [tuple(r) for r in outcomes] == [
        ("participant_joined", "applied"),
        ("track_published", "unhandled"),
    ]
    assert await db.fetchval("SELECT count(*) FROM participants WHERE user_id = 'dave'") == 1
    assert await db.fetchval("SELECT count(*) FROM participant_events") == 1
    # The consumer counted all of it.
    from prometheus_client import generate_latest

    text = generate_latest(consumer.handler._metrics.registry).decode()
    assert 'favorited_events_total{event="track_published",outcome="unhandled"} 1.0' in text
    assert 'favorited_events_total{event="participant_joined",outcome="duplicate"} 2.0' in text
