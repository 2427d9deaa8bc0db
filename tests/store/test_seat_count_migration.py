"""migrations/0009 fills the new seat count from the rows already there."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from favorited.store.migrate import Migration, apply, default_directory, discover
from tests.conftest import ADMIN_DSN, dsn_for
from tests.support.waiting import until

_LIVESTREAM = """
INSERT INTO livestreams (id, room_name, title, created_by, max_participants, room_capacity,
                         empty_timeout_s, status, start_time)
VALUES ($1, $2, 't', 'host', 10, 11, 60, 'LIVE', now())
"""
_PARTICIPANT = """
INSERT INTO participants (id, livestream_id, user_id, display_name, role, status, leave_time)
VALUES (gen_random_uuid(), $1, $2, 'P', $3, $4::participant_status,
        CASE WHEN $4::participant_status = 'LEFT' THEN now() END)
"""


@pytest.fixture
async def before_0009() -> AsyncIterator[tuple[str, list[Migration]]]:
    """A fresh database migrated up to, not including, 0009; its DSN and the pending migrations."""
    name = f"favorited_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        migrations = discover(default_directory())
        upto = next(i for i, m in enumerate(migrations) if m.version == "0009_counted_seats")
        conn = await asyncpg.connect(dsn_for(name))
        try:
            await apply(conn, migrations[:upto])
        finally:
            await conn.close()
        yield dsn_for(name), migrations[upto:]
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_the_seat_count_is_filled_from_the_joined_viewers(
    before_0009: tuple[str, list[Migration]],
) -> None:
    dsn, pending = before_0009
    conn = await asyncpg.connect(dsn)
    try:
        busy, quiet, ended = (str(uuid.uuid4()) for _ in range(3))
        for livestream_id in (busy, quiet, ended):
            await conn.execute(_LIVESTREAM, livestream_id, f"r-{livestream_id[:8]}")
        for user, role, status in [
            ("v1", "VIEWER", "JOINED"),
            ("v2", "VIEWER", "JOINED"),
            ("v3", "VIEWER", "LEFT"),  # gave the seat back
            ("h", "HOST", "JOINED"),  # the host's seat is not a viewer seat
        ]:
            await conn.execute(_PARTICIPANT, busy, user, role, status)
        await conn.execute(_PARTICIPANT, ended, "v1", "VIEWER", "JOINED")
        await conn.execute("SELECT end_livestream($1)", ended)

        assert await apply(conn, pending) == [m.version for m in pending]

        counts = {
            r["id"]: r["joined_viewer_count"]
            for r in await conn.fetch("SELECT id::text, joined_viewer_count FROM livestreams")
        }
        assert counts == {busy: 2, quiet: 0, ended: 0}
    finally:
        await conn.close()


async def test_the_migration_waits_for_a_join_in_flight_instead_of_deadlocking(
    before_0009: tuple[str, list[Migration]],
) -> None:
    """The service locks a livestream, then writes its participants; the migration takes its
    locks in the same order, so a join in flight finishes and the migration then counts it."""
    dsn, pending = before_0009
    joiner, migrator = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        livestream_id = str(uuid.uuid4())
        await joiner.execute(_LIVESTREAM, livestream_id, "r-inflight")
        join = joiner.transaction()
        await join.start()
        await joiner.execute(
            "SELECT 1 FROM livestreams WHERE id = $1 FOR NO KEY UPDATE", livestream_id
        )
        migrating = asyncio.create_task(apply(migrator, pending))
        pid = migrator.get_server_pid()

        async def migration_waits_on_a_lock() -> bool:
            state = await joiner.fetchval(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid
            )
            return bool(state == "Lock")

        await until(migration_waits_on_a_lock)
        await joiner.execute(_PARTICIPANT, livestream_id, "v1", "VIEWER", "JOINED")
        await join.commit()
        await asyncio.wait_for(migrating, timeout=30)
        assert (
            await joiner.fetchval(
                "SELECT joined_viewer_count FROM livestreams WHERE id = $1", livestream_id
            )
            == 1
        )
    finally:
        await joiner.close()
        await migrator.close()
