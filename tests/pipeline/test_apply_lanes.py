"""The consumer's apply lanes (favorited/consumer/batching.py) on real PostgreSQL: rooms spread
over ordered lanes, at most WEBHOOK_QUEUE_CONCURRENCY transactions at once, a second one only once
the running one has run WEBHOOK_APPLY_OVERLAP_MS, and a lane's batch collected only once its turn
has come.

A livestream row locked by the test stands in for a long transaction (a room's end of 100,000
participants): the event for that room blocks inside PostgreSQL, holding its slot, for as long as
the test wants.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
import zlib
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from favorited.app import ConsumerApp, WebhooksApp
from favorited.config import Settings
from favorited.consumer.batching import BatchApplier
from favorited.domain.livekit_events import LiveKitEvent, LiveKitEventService, Outcome
from favorited.metrics import Metrics
from tests.pipeline.conftest import Post
from tests.support.livekit_webhooks import event_body, sid
from tests.support.waiting import until


def _room_in_lane(lane: int, lanes: int) -> str:
    """A room sid that BatchApplier puts in `lane` (it spreads rooms by crc32)."""
    while True:
        room_sid = sid("RM_")
        if zlib.crc32(room_sid.encode()) % lanes == lane:
            return room_sid


async def _live(db: asyncpg.Pool, room_sid: str) -> str:
    livestream_id = str(uuid.uuid4())
    await db.execute(
        "INSERT INTO livestreams (id, room_name, title, created_by, max_participants,"
        " room_capacity, empty_timeout_s, status, start_time, livekit_room_sid)"
        " VALUES ($1, $2, 't', 'host', 100, 101, 60, 'LIVE', now(), $3)",
        livestream_id,
        f"lanes-{livestream_id[:8]}",
        room_sid,
    )
    return livestream_id


async def _live_rooms(db: asyncpg.Pool, lanes: int) -> list[tuple[str, str]]:
    """A live livestream in each of `lanes` lanes: (room sid, livestream id), lane by lane."""
    rooms = [_room_in_lane(lane, lanes) for lane in range(lanes)]
    return [(room, await _live(db, room)) for room in rooms]


def _joined(room_sid: str, identity: str) -> LiveKitEvent:
    return LiveKitEvent(
        event_id=sid("EV_"),
        event="participant_joined",
        created_at=None,
        room_sid=room_sid,
        room_name="lanes",
        participant_sid=sid("PA_"),
        identity=identity,
        joined_at_ms=1_800_000_000_000,
    )


@contextlib.asynccontextmanager
async def _running(
    livekit_events: LiveKitEventService,
    *,
    lanes: int,
    transactions: int,
    batch_size: int,
    overlap_after_s: float,
) -> AsyncIterator[BatchApplier]:
    """A started BatchApplier, stopped on the way out."""
    applier = BatchApplier(
        livekit_events,
        lanes=lanes,
        transactions=transactions,
        batch_size=batch_size,
        overlap_after_s=overlap_after_s,
    )
    applier.start()
    try:
        yield applier
    finally:
        await applier.stop()


@contextlib.asynccontextmanager
async def _row_locked(db: asyncpg.Pool, livestream_id: str) -> AsyncIterator[None]:
    """A transaction holding the livestream's row lock, as a room's long end would."""
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM livestreams WHERE id = $1 FOR UPDATE", livestream_id)
        yield


@contextlib.asynccontextmanager
async def _stuck(
    db: asyncpg.Pool, applier: BatchApplier, room_sid: str, livestream_id: str
) -> AsyncIterator[asyncio.Task[Outcome]]:
    """An event for the room, in a transaction (holding a slot) blocked behind the room's row
    lock until the block ends."""
    async with _row_locked(db, livestream_id):
        task = asyncio.create_task(applier.apply(_joined(room_sid, "x")))
        await until(lambda: _blocked_on_a_lock(db))
        yield task


async def _blocked_on_a_lock(db: asyncpg.Pool) -> bool:
    waiting = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return bool(waiting)


def _waiting_or_done(
    applier: BatchApplier, count: int, task: asyncio.Task[Outcome]
) -> Callable[[], bool]:
    """Until `count` events wait, or the task is done: done means it did not wait (a failure)."""
    return lambda: applier.waiting() == count or task.done()


async def _joined_count(db: asyncpg.Pool, livestream_id: str) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM participants WHERE livestream_id = $1", livestream_id
    )
    return count


@pytest.fixture(params=[(1, 0.05), (2, 60.0)], ids=["one-slot", "two-slots"])
async def waiting_lanes(
    request: pytest.FixtureRequest, livekit_events: LiveKitEventService
) -> AsyncIterator[BatchApplier]:
    """Two lanes where the second waits for its turn while the first's transaction runs: for
    the only slot, or, with a slot free, for the running transaction, which an overlap wait
    longer than the test never lets count as long."""
    transactions, overlap_after_s = request.param
    async with _running(
        livekit_events,
        lanes=2,
        transactions=transactions,
        batch_size=100,
        overlap_after_s=overlap_after_s,
    ) as applier:
        yield applier


async def test_a_lane_waiting_for_its_turn_commits_what_arrived_meanwhile_in_one_transaction(
    waiting_lanes: BatchApplier, db: asyncpg.Pool
) -> None:
    applier = waiting_lanes
    (room_x, x_id), (room_y, y_id) = await _live_rooms(db, 2)
    y_events = [_joined(room_y, f"y{i}") for i in range(3)]
    # The fixture stops the applier, whatever happens here.
    # x's transaction holds the only slot, or runs in one of two.
    async with _stuck(db, applier, room_x, x_id) as x_task:
        y_tasks: list[asyncio.Task[Outcome]] = []
        for count, event in enumerate(y_events, start=1):
            task = asyncio.create_task(applier.apply(event))
            y_tasks.append(task)
            # Each arrives on its own; without the slot bound or the overlap wait, each
            # would commit at once.
            await until(_waiting_or_done(applier, count, task))
            assert not task.done()
        assert await _joined_count(db, y_id) == 0
    # The lock is gone: x commits, then y's lane takes its turn with all three.
    await asyncio.gather(x_task, *y_tasks)
    xmins = await db.fetch(
        "SELECT event_id, xmin::text AS tx FROM webhook_inbox WHERE event_id = ANY($1)",
        [e.event_id for e in y_events],
    )
    assert len(xmins) == 3
    assert len({row["tx"] for row in xmins}) == 1
    assert await _joined_count(db, y_id) == 3
    assert applier.waiting() == 0


async def test_a_long_transaction_holds_up_only_its_own_lane(
    livekit_events: LiveKitEventService, db: asyncpg.Pool
) -> None:
    async with _running(
        livekit_events, lanes=3, transactions=2, batch_size=100, overlap_after_s=0.05
    ) as applier:
        (room_x, x_id), (room_y, y_id), (room_z, z_id) = await _live_rooms(db, 3)
        async with _stuck(db, applier, room_x, x_id) as x_task:
            # While x's room is stuck in one slot, past the overlap wait the other lanes go on
            # through the other slot.
            await asyncio.wait_for(applier.apply(_joined(room_y, "y")), timeout=30)
            await asyncio.wait_for(applier.apply(_joined(room_z, "z")), timeout=30)
            assert (await _joined_count(db, y_id), await _joined_count(db, z_id)) == (1, 1)
            assert not x_task.done()
        await x_task
        assert await _joined_count(db, x_id) == 1


def _left(room_sid: str) -> LiveKitEvent:
    """A cheap event for the room: a session it never saw leaves (ignored, inbox row kept)."""
    return LiveKitEvent(
        event_id=sid("EV_"),
        event="participant_left",
        created_at=None,
        room_sid=room_sid,
        room_name="lanes",
        participant_sid=sid("PA_"),
        identity="nobody",
    )


async def test_a_busy_lane_does_not_keep_another_lane_waiting_for_its_turn(
    livekit_events: LiveKitEventService, db: asyncpg.Pool
) -> None:
    # Two events per transaction, so x's lane has a long stream of full batches to run (a full
    # batch does not wait for its turn's overlap), and an overlap wait longer than the test, so
    # only taking turns can let y's lane in: a lane whose transaction just ended must queue
    # behind y's, not go first again.
    x_tasks: list[asyncio.Task[Outcome]] = []
    try:
        async with _running(
            livekit_events, lanes=2, transactions=2, batch_size=2, overlap_after_s=60
        ) as applier:
            (room_x, _), (room_y, y_id) = await _live_rooms(db, 2)
            x_tasks += (asyncio.create_task(applier.apply(_left(room_x))) for _ in range(400))
            await until(lambda: applier.running() == 1)
            await applier.apply(_joined(room_y, "y"))
            # y went in between x's transactions, long before x's stream ended.
            assert sum(task.done() for task in x_tasks) < len(x_tasks) // 2
            assert await _joined_count(db, y_id) == 1
            assert set(await asyncio.gather(*x_tasks)) == {Outcome.IGNORED}
    finally:
        # After a failure above, the stop cancelled what was left: collected, not leaked.
        await asyncio.gather(*x_tasks, return_exceptions=True)


async def test_a_lane_with_a_full_batch_does_not_wait_for_the_running_transaction(
    livekit_events: LiveKitEventService, db: asyncpg.Pool
) -> None:
    # Waiting could not make a full batch bigger: a backlog goes through every slot.
    async with _running(
        livekit_events, lanes=2, transactions=2, batch_size=3, overlap_after_s=60
    ) as applier:
        (room_x, x_id), (room_y, y_id) = await _live_rooms(db, 2)
        y_events = [_joined(room_y, f"y{i}") for i in range(3)]
        async with _stuck(db, applier, room_x, x_id) as x_task:
            # Applied while x's transaction still runs, all three in one commit.
            await asyncio.wait_for(
                asyncio.gather(*(applier.apply(event) for event in y_events)), timeout=10
            )
            assert not x_task.done()
        xmins = await db.fetch(
            "SELECT xmin::text AS tx FROM webhook_inbox WHERE event_id = ANY($1)",
            [e.event_id for e in y_events],
        )
        assert len({row["tx"] for row in xmins}) == 1
        assert await _joined_count(db, y_id) == 3
        await x_task


async def test_stopping_releases_the_events_a_lane_holds_while_waiting_for_its_turn(
    waiting_lanes: BatchApplier, db: asyncpg.Pool
) -> None:
    applier = waiting_lanes
    (room_x, x_id), (room_y, y_id) = await _live_rooms(db, 2)
    # The fixture stops the applier, whatever happens here.
    async with _stuck(db, applier, room_x, x_id) as x_task:
        y_task = asyncio.create_task(applier.apply(_joined(room_y, "y")))
        await until(_waiting_or_done(applier, 1, y_task))
        assert not y_task.done()
        await applier.stop()
        # Both callers learn that their event was not applied (their messages go back
        # unacked), rather than waiting for ever.
        for task in (x_task, y_task):
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=10)
        # Nothing is left counted as running or waiting.
        assert (applier.running(), applier.waiting()) == (0, 0)
    assert await _joined_count(db, y_id) == 0
    assert await _joined_count(db, x_id) == 0


async def test_the_consumer_exports_the_events_waiting_for_a_transaction(
    pipeline_settings: Settings, shim: WebhooksApp, post: Post, db: asyncpg.Pool
) -> None:
    settings = dataclasses.replace(pipeline_settings, webhook_queue_concurrency=1)
    metrics = Metrics()
    consumer = await ConsumerApp.start(settings, metrics=metrics, run_jobs=False)

    def waiting() -> float | None:
        return metrics.registry.get_sample_value("favorited_webhook_events_waiting")

    room = sid("RM_")
    livestream_id = await _live(db, room)
    bodies = [
        event_body(
            "participant_joined",
            room_sid=room,
            room_name="lanes",
            participant_sid=sid("PA_"),
            identity=f"u{i}",
            joined_at_ms=1_800_000_000_000,
        )[1]
        for i in range(2)
    ]
    try:
        assert waiting() == 0
        async with _row_locked(db, livestream_id):
            assert await post(bodies[0]) == 200
            await until(lambda: _blocked_on_a_lock(db))  # the first holds the only slot
            assert await post(bodies[1]) == 200
            await until(lambda: waiting() == 1)  # the second waits behind it
        await until(lambda: _joined_count_is(db, livestream_id, 2))
        assert waiting() == 0
    finally:
        await consumer.stop()


async def _joined_count_is(db: asyncpg.Pool, livestream_id: str, count: int) -> bool:
    return await _joined_count(db, livestream_id) == count
