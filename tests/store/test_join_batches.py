"""Joins of different livestreams share a statement, and a held livestream stays out of it.

PgDatabase runs joins one batch at a time over every livestream, by statements that never wait on
a livestream row (migrations/0010); a join whose livestream another transaction holds comes back
from that statement with nothing written and then waits in its livestream's own lane.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import asyncpg

from favorited.domain import models
from favorited.domain.models import JoinOutcome
from favorited.store.database import PgDatabase
from favorited.store.participants import PendingJoin
from tests.support.joins import pending_join
from tests.support.locks import blocked_on_a_lock, held
from tests.support.waiting import until

_LIVE = """
INSERT INTO livestreams (id, room_name, title, created_by, max_participants, room_capacity,
                         empty_timeout_s, status, start_time, livekit_room_sid)
SELECT gen_random_uuid(), $1 || '-' || g, 't', 'alice', 10, 11, 60, 'LIVE', clock_timestamp(),
       'RM_' || $1 || '_' || g
FROM generate_series(1, $2) g
RETURNING id::text
"""


async def _live(db: asyncpg.Pool, count: int) -> list[str]:
    rows = await db.fetch(_LIVE, f"batch-{uuid.uuid4().hex[:8]}", count)
    return [row["id"] for row in rows]


async def _join(database: PgDatabase, join: PendingJoin) -> models.JoinResult:
    # PendingJoin's fields are PgDatabase.join's arguments.
    return await database.join(**dataclasses.asdict(join))


async def _xmins(db: asyncpg.Pool, users: list[str]) -> dict[str, str]:
    rows = await db.fetch(
        "SELECT user_id, xmin::text AS x FROM participants WHERE user_id = ANY($1::text[])", users
    )
    return {row["user_id"]: row["x"] for row in rows}


async def test_joins_of_several_livestreams_arriving_during_a_batch_share_the_next_commit(
    db: asyncpg.Pool, narrow_database: PgDatabase, clean: None
) -> None:
    first, *others = await _live(db, 4)
    # The pool's only connection is ours: the first join's batch (its task runs first) waits for
    # it while the joins of three other livestreams arrive and queue behind it.
    async with narrow_database.autocommit():
        running = asyncio.create_task(_join(narrow_database, pending_join(first, "u0")))
        queued = [
            asyncio.create_task(_join(narrow_database, pending_join(ls, f"u{i}")))
            for i, ls in enumerate(others, start=1)
        ]
        await until(lambda: narrow_database.writes_waiting == len(others))
    results = await asyncio.gather(running, *queued)

    assert [r.outcome for r in results] == [JoinOutcome.JOINED] * 4
    xmins = await _xmins(db, ["u0", "u1", "u2", "u3"])
    assert xmins["u1"] == xmins["u2"] == xmins["u3"] != xmins["u0"]


async def test_a_join_waiting_on_another_transaction_does_not_hold_up_the_others(
    db: asyncpg.Pool, database: PgDatabase, clean: None
) -> None:
    first, *others = await _live(db, 4)
    request_id = str(uuid.uuid4())
    # Another transaction is inserting the first join's idempotency key: the join must wait for
    # it, but the batch gives up on it after BATCH_LOCK_TIMEOUT and the join waits alone.
    async with held(
        db,
        "INSERT INTO idempotency_keys (caller, method, request_id, resource_id, expire_time)"
        " VALUES ('u0', 'JoinLivestream', $1, gen_random_uuid(), now() + interval '1 hour')",
        request_id,
    ):
        waiting = asyncio.create_task(_join(database, pending_join(first, "u0", request_id)))
        await until(lambda: blocked_on_a_lock(db, "join_livestream("))
        served = await asyncio.gather(
            *(_join(database, pending_join(ls, f"u{i}")) for i, ls in enumerate(others, start=1))
        )
        assert [r.outcome for r in served] == [JoinOutcome.JOINED] * 3
        assert not waiting.done()
    joined = await waiting
    assert joined.outcome is JoinOutcome.JOINED


async def test_a_held_livestream_is_left_out_of_the_batch_and_joined_once_released(
    db: asyncpg.Pool, database: PgDatabase, clean: None
) -> None:
    busy, free = await _live(db, 2)
    async with held(db, "SELECT 1 FROM livestreams WHERE id = $1 FOR UPDATE", busy):
        waiting = asyncio.create_task(_join(database, pending_join(busy, "waits")))
        await until(lambda: blocked_on_a_lock(db, "join_livestream"))
        served = await asyncio.gather(
            *(_join(database, pending_join(free, f"f{i}")) for i in range(5))
        )
        assert [r.outcome for r in served] == [JoinOutcome.JOINED] * 5
        assert not waiting.done()
    joined = await waiting
    assert joined.outcome is JoinOutcome.JOINED
    assert joined.participant is not None and joined.participant.livestream_id == busy


async def test_the_statement_answers_busy_for_a_held_livestream_and_writes_nothing_for_it(
    db: asyncpg.Pool, database: PgDatabase, clean: None
) -> None:
    busy, free = await _live(db, 2)
    missing = str(uuid.uuid4())
    joins = [
        pending_join(busy, "a"),
        pending_join(free, "b"),
        pending_join(missing, "c"),
        pending_join(busy, "d"),
    ]
    async with (
        held(db, "SELECT 1 FROM livestreams WHERE id = $1 FOR NO KEY UPDATE", busy),
        database.autocommit() as work,
    ):
        results = await work.participants.try_join_many(joins)

    assert results[0] is None and results[3] is None
    assert results[1] is not None and results[1].outcome is JoinOutcome.JOINED
    assert results[2] is not None and results[2].outcome is JoinOutcome.NOT_FOUND
    rows = await db.fetch("SELECT livestream_id::text FROM participants")
    assert [row[0] for row in rows] == [free]
    seats = await db.fetchval("SELECT joined_viewer_count FROM livestreams WHERE id = $1", busy)
    assert seats == 0
