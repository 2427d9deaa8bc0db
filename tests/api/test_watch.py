"""WatchParticipants and WatchLivestream: snapshot, live changes in order, resume without gaps,
slow watchers cut off, coalesced figures, shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import grpc
import pytest

from favorited.app import ApiApp
from favorited.livekit_emulator import LiveKitEmulator
from favorited_api.v1 import livestream_pb2
from favorited_api.v1 import livestream_service_pb2 as lpb
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from favorited_api.v1 import participant_service_pb2 as ppb
from favorited_api.v1 import participant_service_pb2_grpc as ps_grpc
from tests.api.helpers import create, fails, join
from tests.conftest import Metadata, make_settings
from tests.support.grpc_errors import failure
from tests.support.streams import read

Auth = Callable[..., Metadata]
JOINED = ppb.PARTICIPANT_EVENT_TYPE_JOINED
LEFT = ppb.PARTICIPANT_EVENT_TYPE_LEFT
ENDED = ppb.PARTICIPANT_EVENT_TYPE_LIVESTREAM_ENDED


async def _take(stream: Any, count: int) -> list[ppb.WatchParticipantsResponse]:
    """The next `count` messages that are not heartbeats."""
    out: list[ppb.WatchParticipantsResponse] = []
    while len(out) < count:
        message = await read(stream)
        assert message is not grpc.aio.EOF, f"stream ended after {out}"
        if message.WhichOneof("event") != "heartbeat":
            out.append(message)
    return out


def _changes(messages: list[ppb.WatchParticipantsResponse]) -> list[tuple[int, int, str]]:
    return [
        (m.change.sequence, m.change.type, m.change.participant.user_id)
        for m in messages
        if m.WhichOneof("event") == "change"
    ]


async def test_snapshot_then_live_changes_in_commit_order(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    for user in ("u1", "u2"):
        await join(participants, auth(user), ls.id)
    stream = participants.WatchParticipants(
        ppb.WatchParticipantsRequest(livestream_id=ls.id), metadata=auth("watcher")
    )
    (snapshot,) = await _take(stream, 1)
    assert snapshot.snapshot.complete and snapshot.snapshot.sequence == 2
    assert sorted(p.user_id for p in snapshot.snapshot.participants) == ["u1", "u2"]
    await join(participants, auth("u3"), ls.id)
    await participants.LeaveLivestream(
        ppb.LeaveLivestreamRequest(livestream_id=ls.id), metadata=auth("u1")
    )
    assert _changes(await _take(stream, 2)) == [(3, JOINED, "u3"), (4, LEFT, "u1")]
    # The end is one event (not a LEFT per participant still joined), then the stream completes.
    await livestreams.DeleteLivestream(
        lpb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=auth("alice")
    )
    (ended,) = await _take(stream, 1)
    assert _changes([ended]) == [(5, ENDED, "")]
    assert not ended.change.HasField("participant")
    assert await stream.read() is grpc.aio.EOF
    assert await stream.code() == grpc.StatusCode.OK


def _batched(messages: list[ppb.WatchParticipantsResponse]) -> list[list[int]]:
    """The sequences of each `changes` message; fails on any other kind but heartbeats."""
    out: list[list[int]] = []
    for m in messages:
        assert m.WhichOneof("event") == "changes", m
        out.append([e.sequence for e in m.changes.events])
    return out


async def _bulk_join(db: asyncpg.Pool, livestream_id: str, count: int, prefix: str) -> None:
    """`count` joins committed in one statement: `count` changes that a feed reads at once."""
    await db.execute(
        "INSERT INTO participants (id, livestream_id, user_id, display_name, role)"
        " SELECT gen_random_uuid(), $1, $3 || g, 'Bulk', 'VIEWER'"
        " FROM generate_series(1, $2) g",
        livestream_id,
        count,
        prefix,
    )


async def test_batched_watchers_get_what_is_ready_in_one_message_and_others_one_each(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    plain = participants.WatchParticipants(
        ppb.WatchParticipantsRequest(livestream_id=ls.id), metadata=auth("plain")
    )
    batched = participants.WatchParticipants(
        ppb.WatchParticipantsRequest(livestream_id=ls.id, batch_changes=True),
        metadata=auth("batched"),
    )
    for stream in (plain, batched):
        (snapshot,) = await _take(stream, 1)
        assert snapshot.snapshot.complete and snapshot.snapshot.sequence == 0
    await join(participants, auth("u1"), ls.id)
    # A watcher that keeps up gets each change as it comes: a batch of one.
    assert _batched(await _take(batched, 1)) == [[1]]
    # 1,200 changes in one commit are ready at once: MAX_BATCH (500) per message, in order.
    await _bulk_join(db, ls.id, 1200, "bulk")
    assert [len(b) for b in _batched(await _take(batched, 3))] == [500, 500, 200]
    # The same changes reach a watcher that did not opt in exactly as before: one per message.
    plain_messages = await _take(plain, 1201)
    assert {m.WhichOneof("event") for m in plain_messages} == {"change"}
    assert [seq for seq, _, _ in _changes(plain_messages)] == list(range(1, 1202))
    # Ending it: one LIVESTREAM_ENDED for the 1,201 still joined, then EOF.
    await livestreams.DeleteLivestream(
        lpb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=auth("alice")
    )
    rest: list[ppb.WatchParticipantsResponse] = []
    while (message := await batched.read()) is not grpc.aio.EOF:
        received: Any = message
        if received.WhichOneof("event") != "heartbeat":
            rest.append(received)
    assert _batched(rest) == [[1202]]
    assert [e.type for m in rest for e in m.changes.events] == [ENDED]
    assert await batched.code() == grpc.StatusCode.OK
    plain.cancel()


async def test_a_batched_resume_replays_in_batches_without_gap_or_duplicate(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    await join(participants, auth("u1"), ls.id)
    await _bulk_join(db, ls.id, 600, "gone")
    resumed = participants.WatchParticipants(
        ppb.WatchParticipantsRequest(livestream_id=ls.id, after_sequence=1, batch_changes=True),
        metadata=auth("w"),
    )
    replayed = _batched(await _take(resumed, 2))
    assert [len(b) for b in replayed] == [500, 100]
    await _bulk_join(db, ls.id, 1, "later")  # then live again, after the replay
    live = _batched(await _take(resumed, 1))
    assert [seq for b in replayed + live for seq in b] == list(range(2, 603))
    resumed.cancel()


async def test_resume_after_disconnect_has_no_gap_and_no_duplicate(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    stream = participants.WatchParticipants(
        ppb.WatchParticipantsRequest(livestream_id=ls.id), metadata=auth("w")
    )
    await _take(stream, 1)  # empty snapshot
    for i in range(5):
        await join(participants, auth(f"a{i}"), ls.id)
    first = _changes(await _take(stream, 3))
    stream.cancel()
    for i in range(5):
        await join(participants, auth(f"b{i}"), ls.id)
    resumed = participants.WatchParticipants(
        ppb.WatchParticipantsRequest(livestream_id=ls.id, after_sequence=first[-1][0]),
        metadata=auth("w"),
    )
    second = _changes(await _take(resumed, 7))
    resumed.cancel()
    assert [seq for seq, _, _ in first + second] == list(range(1, 11))


async def test_resume_on_another_server_after_a_restart(
    database_url: str,
    emulator: LiveKitEmulator,
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    other = await ApiApp.start(make_settings(database_url, emulator.url))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{other.port}") as channel:
            stub = ps_grpc.ParticipantServiceStub(channel)
            stream = stub.WatchParticipants(
                ppb.WatchParticipantsRequest(livestream_id=ls.id), metadata=auth("w")
            )
            await _take(stream, 1)
            await join(participants, auth("x1"), ls.id)  # through the other server
            seen = _changes(await _take(stream, 1))
            await other.stop()  # the serving process goes away mid-stream
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await _take(stream, 1)
            assert failure(info.value).code is grpc.StatusCode.UNAVAILABLE
            assert failure(info.value).reason == "SERVER_SHUTTING_DOWN"
    finally:
        await other.stop()
    await join(participants, auth("x2"), ls.id)
    resumed = participants.WatchParticipants(
        ppb.WatchParticipantsRequest(livestream_id=ls.id, after_sequence=seen[-1][0]),
        metadata=auth("w"),
    )
    assert _changes(await _take(resumed, 1)) == [(2, JOINED, "x2")]
    resumed.cancel()


async def test_expired_unknown_and_future_sequences(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    for i in range(4):
        await join(participants, auth(f"u{i}"), ls.id)
    await db.execute("DELETE FROM participant_events WHERE sequence <= 2")  # as retention would

    async def first_message(request: ppb.WatchParticipantsRequest) -> None:
        stream = participants.WatchParticipants(request, metadata=auth("w"))
        await stream.read()

    expired = await fails(
        first_message(ppb.WatchParticipantsRequest(livestream_id=ls.id, after_sequence=1))
    )
    assert (expired.code, expired.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "SEQUENCE_EXPIRED",
    )
    future = await fails(
        first_message(ppb.WatchParticipantsRequest(livestream_id=ls.id, after_sequence=9))
    )
    assert future.code is grpc.StatusCode.INVALID_ARGUMENT
    missing = await fails(
        first_message(ppb.WatchParticipantsRequest(livestream_id=str(uuid.uuid4())))
    )
    assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "LIVESTREAM_NOT_FOUND")
    # Resuming from the oldest kept point still works.
    ok = participants.WatchParticipants(
        ppb.WatchParticipantsRequest(livestream_id=ls.id, after_sequence=2), metadata=auth("w")
    )
    assert [s for s, _, _ in _changes(await _take(ok, 2))] == [3, 4]
    ok.cancel()


@dataclasses.dataclass
class Tight:
    stub: ps_grpc.ParticipantServiceAsyncStub
    livestreams: ls_grpc.LivestreamServiceAsyncStub
    # A client whose HTTP/2 receive window stays tiny, so a watcher on it that stops reading
    # really stalls the server's writes instead of filling a large client-side buffer.
    stingy: ps_grpc.ParticipantServiceAsyncStub


@pytest.fixture
async def tight(database_url: str, emulator: LiveKitEmulator, clean: None) -> AsyncIterator[Tight]:
    """An API server with small watcher buffers and a low per-caller stream cap."""
    app = await ApiApp.start(
        make_settings(
            database_url,
            emulator.url,
            WATCH_BUFFER_EVENTS="8",
            WATCH_MAX_STREAMS_PER_CALLER="2",
            WATCH_COALESCE_SECONDS="0.3",
        )
    )
    try:
        target = f"127.0.0.1:{app.port}"
        stingy_options = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)]
        async with (
            grpc.aio.insecure_channel(target) as channel,
            grpc.aio.insecure_channel(target, options=stingy_options) as stingy,
        ):
            yield Tight(
                ps_grpc.ParticipantServiceStub(channel),
                ls_grpc.LivestreamServiceStub(channel),
                ps_grpc.ParticipantServiceStub(stingy),
            )
    finally:
        await app.stop()


async def test_a_stalled_watcher_is_cut_off_while_fast_ones_keep_up(
    tight: Tight, auth: Auth, db: asyncpg.Pool, room_name: str
) -> None:
    ls = await create(tight.livestreams, auth("alice"), room_name)
    request = ppb.WatchParticipantsRequest(livestream_id=ls.id)
    slow = tight.stingy.WatchParticipants(request, metadata=auth("slow"))
    fast = tight.stub.WatchParticipants(request, metadata=auth("fast"))
    await _take(slow, 1)
    await _take(fast, 1)
    total = 3000
    # 3,000 joins in one statement: 3,000 events, far more than the slow watcher's buffer plus
    # what HTTP/2 flow control lets the server write ahead.
    await db.execute(
        "INSERT INTO participants (id, livestream_id, user_id, display_name, role)"
        " SELECT gen_random_uuid(), $1, 'bulk' || g, 'Bulk', 'VIEWER'"
        " FROM generate_series(1, $2) g",
        ls.id,
        total,
    )
    received = 0
    while received < total:
        batch = _changes(await _take(fast, 1))
        received += len(batch)
    assert received == total

    async def read_until_cut() -> None:
        while True:
            await _take(slow, 1)

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await read_until_cut()
    cut = failure(info.value)
    assert (cut.code, cut.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "WATCHER_TOO_SLOW")
    fast.cancel()


async def test_streams_per_caller_are_capped(tight: Tight, auth: Auth, room_name: str) -> None:
    ls = await create(tight.livestreams, auth("alice"), room_name)
    request = ppb.WatchParticipantsRequest(livestream_id=ls.id)
    open_streams = [
        tight.stub.WatchParticipants(request, metadata=auth("greedy")) for _ in range(2)
    ]
    for stream in open_streams:
        await _take(stream, 1)
    third = tight.stub.WatchParticipants(request, metadata=auth("greedy"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await third.read()
    assert failure(info.value).reason == "TOO_MANY_STREAMS"
    other_user = tight.stub.WatchParticipants(request, metadata=auth("modest"))
    await _take(other_user, 1)
    for stream in (*open_streams, other_user):
        stream.cancel()


async def test_watch_livestream_coalesces_figures_and_ends_on_the_true_final_value(
    tight: Tight, auth: Auth, db: asyncpg.Pool, room_name: str
) -> None:
    ls = await create(tight.livestreams, auth("alice"), room_name)
    stream = tight.livestreams.WatchLivestream(
        lpb.WatchLivestreamRequest(livestream_id=ls.id), metadata=auth("w")
    )
    first = await read(stream)
    assert first.livestream.viewer_count == 0
    await db.execute(
        "INSERT INTO participants (id, livestream_id, user_id, display_name, role)"
        " SELECT gen_random_uuid(), $1, 'v' || g, 'V', 'VIEWER' FROM generate_series(1, 60) g",
        ls.id,
    )
    # 60 viewers connect one transaction at a time, then 17 of them disconnect.
    ids = [
        r["id"] for r in await db.fetch("SELECT id FROM participants WHERE livestream_id=$1", ls.id)
    ]
    for pid in ids:
        await db.execute("UPDATE participants SET connected = true WHERE id = $1", pid)
    for pid in ids[:17]:
        await db.execute("UPDATE participants SET connected = false WHERE id = $1", pid)
    updates: list[livestream_pb2.Livestream] = []
    while not updates or updates[-1].viewer_count != 43:
        message = await read(stream)
        if message.WhichOneof("event") == "livestream":
            updates.append(message.livestream)
    assert updates[-1].peak_viewer_count == 60 and updates[-1].unique_viewer_count == 60
    assert len(updates) < 20  # 77 changes, coalesced
    await tight.livestreams.DeleteLivestream(
        lpb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=auth("alice")
    )
    final = None
    while (message := await stream.read()) is not grpc.aio.EOF:
        received: Any = message
        if received.WhichOneof("event") == "livestream":
            final = received.livestream
    assert final is not None and final.status == livestream_pb2.LIVESTREAM_STATUS_ENDED
    assert await stream.code() == grpc.StatusCode.OK


async def test_watch_livestream_not_found(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Auth
) -> None:
    stream = livestreams.WatchLivestream(
        lpb.WatchLivestreamRequest(livestream_id=str(uuid.uuid4())), metadata=auth("w")
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stream.read()
    assert failure(info.value).reason == "LIVESTREAM_NOT_FOUND"


async def test_heartbeats_on_idle_streams(
    database_url: str, emulator: LiveKitEmulator, clean: None, auth: Auth, room_name: str
) -> None:
    app = await ApiApp.start(
        make_settings(database_url, emulator.url, WATCH_HEARTBEAT_SECONDS="0.1")
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            ls = await create(ls_grpc.LivestreamServiceStub(channel), auth("alice"), room_name)
            stream = ps_grpc.ParticipantServiceStub(channel).WatchParticipants(
                ppb.WatchParticipantsRequest(livestream_id=ls.id), metadata=auth("w")
            )
            kinds = [(await read(stream)).WhichOneof("event") for _ in range(3)]
            assert kinds == ["snapshot", "heartbeat", "heartbeat"]
            stream.cancel()
    finally:
        await app.stop()


async def test_participant_heartbeats_come_after_the_silence_not_before(
    database_url: str, emulator: LiveKitEmulator, clean: None, auth: Auth, room_name: str
) -> None:
    # Watchers share their feed's tick (a quarter of the heartbeat period) rather than owning a
    # timer each; a heartbeat still waits for the silence on its own stream. Gaps are read from
    # the heartbeats' own time, stamped by the server when it sends one: a late delivery to the
    # client cannot shorten them. A heartbeat on every tick would be 0.05 s apart here.
    app = await ApiApp.start(
        make_settings(database_url, emulator.url, WATCH_HEARTBEAT_SECONDS="0.2")
    )

    async def gaps(stub: ps_grpc.ParticipantServiceStub, user: str, ls_id: str) -> list[float]:
        request = ppb.WatchParticipantsRequest(livestream_id=ls_id)
        stream = stub.WatchParticipants(request, metadata=auth(user))
        assert (await read(stream)).snapshot.complete
        sent: list[float] = []
        for _ in range(3):
            message = await read(stream)
            assert message.WhichOneof("event") == "heartbeat"
            sent.append(message.heartbeat.time.ToDatetime().timestamp())
        stream.cancel()
        return [b - a for a, b in itertools.pairwise(sent)]

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            ls = await create(ls_grpc.LivestreamServiceStub(channel), auth("alice"), room_name)
            stub = ps_grpc.ParticipantServiceStub(channel)
            for seen in await asyncio.gather(gaps(stub, "a", ls.id), gaps(stub, "b", ls.id)):
                assert min(seen) >= 0.2 - 0.005, seen  # the clocks' granularity
    finally:
        await app.stop()
