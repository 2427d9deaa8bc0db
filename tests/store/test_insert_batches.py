"""Creates' SCHEDULED inserts share a statement; a taken room name is refused on its own.

PgDatabase.insert_livestream batches concurrent inserts in one statement that leaves out a row
whose room name an active livestream (or an earlier row of the batch) holds; that row then gets
the one-row insert, which raises RoomNameTakenError.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from favorited import errors
from favorited.domain import models
from favorited.store.database import PgDatabase
from favorited.store.livestreams import PendingLivestream
from tests.support.locks import blocked_on_a_lock, held
from tests.support.waiting import until


def _new(room_name: str) -> models.NewLivestream:
    return models.NewLivestream(
        room_name=room_name,
        title="t",
        description="",
        max_participants=10,
        empty_timeout_s=60,
        metadata={"k": room_name},
    )


async def _insert(database: PgDatabase, room_name: str) -> models.Livestream:
    return await database.insert_livestream(
        livestream_id=str(uuid.uuid4()), new=_new(room_name), created_by="alice", room_capacity=11
    )


def _room() -> str:
    return f"room-{uuid.uuid4().hex[:12]}"


async def test_inserts_arriving_during_a_batch_share_the_next_commit(
    db: asyncpg.Pool, narrow_database: PgDatabase, clean: None
) -> None:
    first, others = _room(), [_room() for _ in range(3)]
    # The pool's only connection is ours: the first insert's batch (its task runs first) waits
    # for it while three more creates arrive and queue behind it.
    async with narrow_database.autocommit():
        running = asyncio.create_task(_insert(narrow_database, first))
        queued = [asyncio.create_task(_insert(narrow_database, room)) for room in others]
        await until(lambda: narrow_database.writes_waiting == len(others))
    created = await asyncio.gather(running, *queued)

    assert [c.room_name for c in created] == [first, *others]
    assert all(c.status is models.LivestreamStatus.SCHEDULED for c in created)
    assert [c.metadata for c in created] == [{"k": room} for room in [first, *others]]
    rows = await db.fetch(
        "SELECT room_name, xmin::text AS x FROM livestreams WHERE room_name = ANY($1::text[])",
        [first, *others],
    )
    xmins = {row["room_name"]: row["x"] for row in rows}
    assert len({xmins[room] for room in others}) == 1
    assert xmins[first] != xmins[others[0]]


async def test_a_create_waiting_on_another_transaction_does_not_hold_up_the_others(
    db: asyncpg.Pool, database: PgDatabase, clean: None
) -> None:
    contested, others = _room(), [_room() for _ in range(3)]
    # Another transaction is inserting a livestream with the same name: the create must wait for
    # it, but the batch gives up after BATCH_LOCK_TIMEOUT and the create waits alone.
    async with held(
        db,
        "INSERT INTO livestreams (id, room_name, title, created_by, max_participants,"
        " room_capacity, empty_timeout_s) VALUES (gen_random_uuid(), $1, 't', 'x', 1, 2, 60)",
        contested,
    ):
        waiting = asyncio.create_task(_insert(database, contested))
        await until(lambda: blocked_on_a_lock(db, "VALUES ($1, $2"))
        served = await asyncio.gather(*(_insert(database, room) for room in others))
        assert [c.room_name for c in served] == others
        assert not waiting.done()
    created = await waiting  # the other transaction rolled back: the name is free
    assert created.room_name == contested


async def test_a_taken_room_name_is_left_out_and_refused_alone(
    db: asyncpg.Pool, database: PgDatabase, clean: None
) -> None:
    taken, free = _room(), _room()
    await _insert(database, taken)
    rows = [
        PendingLivestream(str(uuid.uuid4()), _new(taken), "bob", 11),
        PendingLivestream(str(uuid.uuid4()), _new(free), "bob", 11),
        PendingLivestream(str(uuid.uuid4()), _new(free), "carol", 11),  # same name, same batch
    ]
    async with database.autocommit() as work:
        inserted = await work.livestreams.try_insert_many(rows)

    assert set(inserted) == {rows[1].livestream_id}
    with pytest.raises(errors.RoomNameTakenError):
        await _insert(database, taken)
    names = await db.fetch("SELECT room_name, created_by FROM livestreams ORDER BY create_time")
    assert [tuple(n) for n in names] == [(taken, "alice"), (free, "bob")]
