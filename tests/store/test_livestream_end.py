"""Ending a livestream rewrites its participants in place (migrations/0011).

The end of a 100,000-participant livestream is one UPDATE; it must stay heap-only (no index
entries per ended row), and the roster key that replaced the `status = 'JOINED'` predicate must
still allow exactly one JOINED row per user of a live livestream.
"""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from favorited.store.pool import Connection


async def _live_livestream(conn: Connection) -> str:
    livestream_id = str(uuid.uuid4())
    await conn.execute(
        "INSERT INTO livestreams (id, room_name, title, created_by, max_participants,"
        " room_capacity, empty_timeout_s, status, start_time)"
        " VALUES ($1, $2, 't', 'alice', 10000, 10001, 60, 'LIVE', clock_timestamp())",
        livestream_id,
        f"end-{livestream_id[:8]}",
    )
    return livestream_id


async def _join(conn: Connection, livestream_id: str, user_id: str) -> str:
    participant_id = str(uuid.uuid4())
    await conn.execute(
        "INSERT INTO participants (id, livestream_id, user_id, display_name, role)"
        " VALUES ($1, $2, $3, $3, 'VIEWER')",
        participant_id,
        livestream_id,
        user_id,
    )
    return participant_id


_UPDATES = (
    "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'participants'"
)


async def _end_counting_updates(conn: Connection, livestream_id: str) -> tuple[int, int]:
    """End the livestream; return how many participant rows it updated, and how many of those
    heap-only. The counts are this backend's own, not yet flushed to the shared statistics;
    read before and after the end in one transaction, their difference is the end's alone."""
    async with conn.transaction():
        before = await conn.fetchrow(_UPDATES)
        assert await conn.fetchval("SELECT end_livestream($1)", livestream_id)
        after = await conn.fetchrow(_UPDATES)
    assert before is not None and after is not None
    return (
        after["n_tup_upd"] - before["n_tup_upd"],
        after["n_tup_hot_upd"] - before["n_tup_hot_upd"],
    )


async def test_the_end_adds_no_index_entry_for_any_participant(
    db: asyncpg.Pool, clean: None
) -> None:
    async with db.acquire() as conn:
        livestream_id = await _live_livestream(conn)
        await conn.execute(
            "INSERT INTO participants (id, livestream_id, user_id, display_name, role, connected,"
            " livekit_participant_sid)"
            " SELECT gen_random_uuid(), $1, 'u' || g, 'Viewer ' || g, 'VIEWER', true, 'PA_' || g"
            " FROM generate_series(1, 500) g",
            livestream_id,
        )
        updated, heap_only = await _end_counting_updates(conn, livestream_id)
        left = await conn.fetchval(
            "SELECT count(*) FROM participants WHERE livestream_id = $1 AND status = 'LEFT'"
            " AND ended_with_livestream AND NOT connected",
            livestream_id,
        )
    assert (updated, heap_only) == (500, 500)
    assert left == 500


async def test_the_end_stays_heap_only_after_sids_were_bound_row_by_row(
    db: asyncpg.Pool, clean: None
) -> None:
    """As in production: viewers join unconnected, then each one's participant_joined webhook
    binds its LiveKit sid in an UPDATE of its own (indexed, so not heap-only: it takes room on
    the page), then the livestream ends."""
    async with db.acquire() as conn:
        livestream_id = await _live_livestream(conn)
        await conn.execute(
            "INSERT INTO participants (id, livestream_id, user_id, display_name, role)"
            " SELECT gen_random_uuid(), $1, 'u' || g, 'Viewer ' || g, 'VIEWER'"
            " FROM generate_series(1, 400) g",
            livestream_id,
        )
        ids = await conn.fetch(
            "SELECT id FROM participants WHERE livestream_id = $1 ORDER BY user_id", livestream_id
        )
        for row in ids:
            await conn.execute(
                "UPDATE participants SET connected = true, livekit_participant_sid = 'PA_' || id"
                " WHERE id = $1",
                row["id"],
            )
        updated, heap_only = await _end_counting_updates(conn, livestream_id)
    assert updated == 400
    # The fill factor leaves room for both new versions (migrations/0011): at 45 only 67 % of
    # these were heap-only, and none before that migration.
    assert heap_only == 400


async def test_one_joined_row_per_user_while_live_and_leaving_frees_it(
    db: asyncpg.Pool, clean: None
) -> None:
    async with db.acquire() as conn:
        livestream_id = await _live_livestream(conn)
        first = await _join(conn, livestream_id, "bob")
        with pytest.raises(asyncpg.UniqueViolationError) as raised:
            await _join(conn, livestream_id, "bob")
        assert raised.value.constraint_name == "participants_one_joined_key"

        await conn.execute(
            "UPDATE participants SET status = 'LEFT', leave_time = clock_timestamp() WHERE id = $1",
            first,
        )
        second = await _join(conn, livestream_id, "bob")
        assert await conn.fetchval("SELECT end_livestream($1)", livestream_id)
        rows = await conn.fetch(
            "SELECT id::text, status::text, in_roster FROM participants WHERE livestream_id = $1",
            livestream_id,
        )
    # The row that left by itself is off the roster; the one the end set LEFT stays on it.
    assert {(r["id"], r["status"], r["in_roster"]) for r in rows} == {
        (first, "LEFT", False),
        (second, "LEFT", True),
    }
