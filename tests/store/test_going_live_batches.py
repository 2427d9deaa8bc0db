"""Creates moving their livestreams to LIVE share a statement; a held livestream stays out of it.

PgDatabase.mark_live batches concurrent SCHEDULED → LIVE updates in one statement that never waits
on a row; a livestream left out (held by another transaction, or no longer SCHEDULED) then gets
the one-row statement, which waits and tells the two apart.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from favorited.domain import models
from favorited.store.database import PgDatabase
from tests.support.locks import blocked_on_a_lock, held
from tests.support.waiting import until

_SCHEDULED = """
INSERT INTO livestreams (id, room_name, title, created_by, max_participants, room_capacity,
                         empty_timeout_s)
SELECT gen_random_uuid(), $1 || '-' || g, 't', 'alice', 10, 11, 60
FROM generate_series(1, $2) g
RETURNING id::text
"""


async def _scheduled(db: asyncpg.Pool, count: int) -> list[str]:
    rows = await db.fetch(_SCHEDULED, f"live-{uuid.uuid4().hex[:8]}", count)
    return [row["id"] for row in rows]


async def _xmins(db: asyncpg.Pool, ids: list[str]) -> list[str]:
    rows = await db.fetch(
        "SELECT xmin::text FROM livestreams WHERE id = ANY($1::uuid[]) ORDER BY id", ids
    )
    return [row[0] for row in rows]


async def test_livestreams_going_live_during_a_batch_share_the_next_commit(
    db: asyncpg.Pool, narrow_database: PgDatabase, clean: None
) -> None:
    first, *others = await _scheduled(db, 4)
    # The pool's only connection is ours: the first update's batch (its task runs first) waits
    # for it while three more creates arrive and queue behind it.
    async with narrow_database.autocommit():
        running = asyncio.create_task(narrow_database.mark_live(first, room_sid=f"RM_{first}"))
        queued = [
            asyncio.create_task(narrow_database.mark_live(ls, room_sid=f"RM_{ls}")) for ls in others
        ]
        await until(lambda: narrow_database.writes_waiting == len(others))
    results = await asyncio.gather(running, *queued)

    assert [r.status if r else None for r in results] == [models.LivestreamStatus.LIVE] * 4
    assert [r.livekit_room_sid for r in results if r] == [f"RM_{ls}" for ls in [first, *others]]
    together = await _xmins(db, others)
    assert len(set(together)) == 1
    assert together[0] not in await _xmins(db, [first])


async def test_an_update_waiting_on_another_transaction_does_not_hold_up_the_others(
    db: asyncpg.Pool, database: PgDatabase, clean: None
) -> None:
    first, *others, holder = await _scheduled(db, 5)
    # Another transaction is writing the same room sid on another livestream: the update must
    # wait for it, but the batch gives up after BATCH_LOCK_TIMEOUT and the update waits alone.
    async with held(db, "UPDATE livestreams SET livekit_room_sid = 'RM_dup' WHERE id = $1", holder):
        waiting = asyncio.create_task(database.mark_live(first, room_sid="RM_dup"))
        await until(lambda: blocked_on_a_lock(db, "AND status = 'SCHEDULED'"))
        served = await asyncio.gather(
            *(database.mark_live(ls, room_sid=f"RM_{ls}") for ls in others)
        )
        assert all(r is not None and r.status is models.LivestreamStatus.LIVE for r in served)
        assert not waiting.done()
    live = await waiting
    assert live is not None and live.livekit_room_sid == "RM_dup"


async def test_a_held_livestream_is_left_out_of_the_batch_and_goes_live_once_released(
    db: asyncpg.Pool, database: PgDatabase, clean: None
) -> None:
    busy, free = await _scheduled(db, 2)
    async with held(db, "SELECT 1 FROM livestreams WHERE id = $1 FOR UPDATE", busy):
        waiting = asyncio.create_task(database.mark_live(busy, room_sid="RM_busy"))
        await until(lambda: blocked_on_a_lock(db, "UPDATE livestreams SET status = 'LIVE'"))
        other = await database.mark_live(free, room_sid="RM_free")
        assert other is not None and other.status is models.LivestreamStatus.LIVE
        assert not waiting.done()
    live = await waiting

    assert live is not None and live.status is models.LivestreamStatus.LIVE
    assert live.livekit_room_sid == "RM_busy"


async def test_a_livestream_no_longer_scheduled_is_not_made_live(
    db: asyncpg.Pool, database: PgDatabase, clean: None
) -> None:
    errored, fine = await _scheduled(db, 2)
    await db.execute("UPDATE livestreams SET status = 'ERROR' WHERE id = $1", errored)

    async with database.autocommit() as work:
        marked = await work.livestreams.try_mark_live_many([(errored, "RM_e"), (fine, "RM_f")])
    again = await database.mark_live(errored, room_sid="RM_e")

    assert set(marked) == {fine}
    assert again is None
    status = await db.fetchval("SELECT status::text FROM livestreams WHERE id = $1", errored)
    assert status == "ERROR"
