"""Publishing participant changes (migrations/0008): once per statement for every writer, once
per batch inside apply_webhook_events — and only there.

That a batch publishes exactly what its events one by one would is the property in
tests/pipeline/test_order_independence.py; these tests pin the edges of the batch mode.
"""

from __future__ import annotations

import uuid

import asyncpg

from favorited.store.pool import Connection

_APPLY_ONE_JOIN = """
SELECT apply_webhook_events(
    ARRAY[$1]::text[], ARRAY['participant_joined'], ARRAY[$2]::text[], ARRAY['']::text[],
    ARRAY[$3]::text[], ARRAY['viewer-1']::text[], ARRAY['Viewer']::text[], ARRAY['{}']::jsonb[],
    ARRAY[1]::bigint[], ARRAY[false], 3600)
"""


async def _live_livestream(conn: Connection) -> tuple[str, str]:
    livestream_id, room_sid = str(uuid.uuid4()), f"RM_{uuid.uuid4().hex[:12]}"
    await conn.execute(
        "INSERT INTO livestreams (id, room_name, title, created_by, max_participants,"
        " room_capacity, empty_timeout_s, status, start_time, livekit_room_sid)"
        " VALUES ($1, $2, 't', 'host', 10, 11, 60, 'LIVE', now(), $3)",
        livestream_id,
        f"pub-{livestream_id[:8]}",
        room_sid,
    )
    return livestream_id, room_sid


async def _log(conn: Connection, livestream_id: str) -> list[tuple[int, str]]:
    rows = await conn.fetch(
        "SELECT sequence, type::text FROM participant_events WHERE livestream_id = $1"
        " ORDER BY sequence",
        livestream_id,
    )
    return [(r["sequence"], r["type"]) for r in rows]


async def test_a_statement_after_a_batch_in_its_transaction_publishes_at_once(
    db: asyncpg.Pool, clean: None
) -> None:
    """The batch mode is switched off when apply_webhook_events returns: a change the caller
    makes next, in the same transaction, is published by its own statement (as the room_finished
    path's transaction could, and as any future caller might)."""
    async with db.acquire() as conn:
        livestream_id, room_sid = await _live_livestream(conn)
        async with conn.transaction():
            outcomes = await conn.fetchval(
                _APPLY_ONE_JOIN, f"EV_{uuid.uuid4().hex}", room_sid, "PA_one"
            )
            assert outcomes == ["applied"]
            assert await _log(conn, livestream_id) == [(1, "JOINED")]
            await conn.execute(
                "UPDATE participants SET connected = false WHERE livestream_id = $1",
                livestream_id,
            )
            # Before COMMIT: published by the UPDATE itself, not left pending.
            assert await _log(conn, livestream_id) == [(1, "JOINED"), (2, "DISCONNECTED")]
        figures = await conn.fetchrow(
            "SELECT viewer_count, peak_viewer_count, last_event_sequence FROM livestreams"
            " WHERE id = $1",
            livestream_id,
        )
        assert figures is not None and tuple(figures) == (0, 1, 2)


async def test_a_batch_in_a_fresh_session_creates_its_list_and_publishes(
    db: asyncpg.Pool, database_url: str, clean: None
) -> None:
    """The pending list is a temporary table apply_webhook_events creates on first use: a
    brand-new connection (no temporary schema yet) applies a batch and publishes it."""
    async with db.acquire() as setup:
        livestream_id, room_sid = await _live_livestream(setup)
    fresh = await asyncpg.connect(dsn=database_url)
    try:
        assert await fresh.fetchval("SELECT to_regclass('pg_temp.participant_changes')") is None
        outcomes = await fresh.fetchval(
            _APPLY_ONE_JOIN, f"EV_{uuid.uuid4().hex}", room_sid, "PA_fresh"
        )
        assert outcomes == ["applied"]
        assert await _log(fresh, livestream_id) == [(1, "JOINED")]
        assert await fresh.fetchval("SELECT count(*) FROM pg_temp.participant_changes") == 0
    finally:
        await fresh.close()


# Single-row and multi-row changes of every kind: joins (viewer, host, not connected), a
# connect, a disconnect, a leave, a reconnect, a statement changing two rows, a row recorded as
# already LEFT (no event).
_CHANGES = [
    "INSERT INTO participants (id, livestream_id, user_id, display_name, role, connected)"
    " VALUES (gen_random_uuid(), $1, 'a', 'A', 'VIEWER', false)",
    "INSERT INTO participants (id, livestream_id, user_id, display_name, role, connected)"
    " VALUES (gen_random_uuid(), $1, 'b', 'B', 'VIEWER', true)",
    "INSERT INTO participants (id, livestream_id, user_id, display_name, role, connected)"
    " VALUES (gen_random_uuid(), $1, 'h', 'H', 'HOST', true)",
    "UPDATE participants SET connected = true WHERE livestream_id = $1 AND user_id = 'a'",
    "UPDATE participants SET connected = false WHERE livestream_id = $1 AND user_id = 'b'",
    "UPDATE participants SET status = 'LEFT', leave_time = now(), connected = false"
    " WHERE livestream_id = $1 AND user_id = 'a'",
    "UPDATE participants SET connected = true WHERE livestream_id = $1 AND user_id = 'b'",
    "UPDATE participants SET connected = false WHERE livestream_id = $1 AND status = 'JOINED'",
    "INSERT INTO participants (id, livestream_id, user_id, display_name, role, status, leave_time)"
    " VALUES (gen_random_uuid(), $1, 'c', 'C', 'VIEWER', 'LEFT', now())",
]
_PUBLISHED = """
SELECT sequence, type::text, participant->>'user_id', participant->>'status',
       participant->>'connected', participant->>'role'
FROM participant_events WHERE livestream_id = $1 ORDER BY sequence
"""
_FIGURES = """
SELECT last_event_sequence, viewer_count, peak_viewer_count, unique_viewer_count,
       joined_viewer_count
FROM livestreams WHERE id = $1
"""


async def test_a_batch_publishes_what_the_same_statements_publish_one_by_one(
    db: asyncpg.Pool, clean: None
) -> None:
    """The triggers have two forms of each rule — publish the statement's changes at once, or
    record them for the batch — and both must publish the same events and figures."""
    async with db.acquire() as conn:
        one_by_one, _ = await _live_livestream(conn)
        for statement in _CHANGES:
            await conn.execute(statement, one_by_one)
        batched, _ = await _live_livestream(conn)
        async with conn.transaction():
            await conn.execute("SELECT create_participant_changes()")
            await conn.execute("SELECT set_config('favorited.publish', 'batch', true)")
            for statement in _CHANGES:
                await conn.execute(statement, batched)
            assert await _log(conn, batched) == [], "nothing is published before the batch ends"
            await conn.execute("SELECT publish_participant_changes()")
        expected = [tuple(r) for r in await conn.fetch(_PUBLISHED, one_by_one)]
        assert [tuple(r) for r in await conn.fetch(_PUBLISHED, batched)] == expected
        assert [t[1] for t in expected] == [
            "JOINED", "JOINED", "JOINED", "CONNECTED", "DISCONNECTED", "LEFT", "CONNECTED",
            "DISCONNECTED", "DISCONNECTED",
        ]  # fmt: skip
        figures = await conn.fetchrow(_FIGURES, one_by_one)
        assert figures is not None and tuple(figures) == (9, 0, 2, 2, 1)  # b's seat
        assert await conn.fetchrow(_FIGURES, batched) == figures
