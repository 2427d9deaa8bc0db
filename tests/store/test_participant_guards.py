"""The participants table's own invariants, which no code path may break.

The per-row guard trigger is skipped for statements that set update_time on JOINED rows (ending a
livestream of 100,000 participants); these tests pin that the skip never opens a way around the
invariants it enforces.
"""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from favorited.store.pool import Connection


async def _left_participant(conn: Connection) -> str:
    livestream_id, participant_id = str(uuid.uuid4()), str(uuid.uuid4())
    await conn.execute(
        "INSERT INTO livestreams (id, room_name, title, created_by, max_participants,"
        " room_capacity, empty_timeout_s) VALUES ($1, $2, 't', 'alice', 10, 11, 60)",
        livestream_id,
        f"guard-{livestream_id[:8]}",
    )
    await conn.execute(
        "INSERT INTO participants (id, livestream_id, user_id, display_name, role)"
        " VALUES ($1, $2, 'bob', 'Bob', 'VIEWER')",
        participant_id,
        livestream_id,
    )
    await conn.execute(
        "UPDATE participants SET status = 'LEFT', leave_time = clock_timestamp(),"
        " update_time = clock_timestamp() WHERE id = $1",
        participant_id,
    )
    return participant_id


@pytest.mark.parametrize(
    "assignment",
    [
        "status = 'JOINED', leave_time = NULL",
        "status = 'JOINED', leave_time = NULL, update_time = now()",
    ],
    ids=["plain", "setting-update-time"],
)
async def test_a_participant_that_left_cannot_be_joined_again(
    db: asyncpg.Pool, clean: None, assignment: str
) -> None:
    async with db.acquire() as conn:
        participant_id = await _left_participant(conn)
        with pytest.raises(asyncpg.CheckViolationError) as raised:
            await conn.execute(
                f"UPDATE participants SET {assignment} WHERE id = $1", participant_id
            )
    assert raised.value.constraint_name == "participants_status_transition"


async def test_leave_time_is_written_once_even_when_update_time_is_set(
    db: asyncpg.Pool, clean: None
) -> None:
    async with db.acquire() as conn:
        participant_id = await _left_participant(conn)
        with pytest.raises(asyncpg.CheckViolationError) as raised:
            await conn.execute(
                "UPDATE participants SET leave_time = now() + interval '1 hour',"
                " update_time = now() WHERE id = $1",
                participant_id,
            )
    assert raised.value.constraint_name == "participants_leave_time_once"


async def test_an_update_that_does_not_set_update_time_still_moves_it(
    db: asyncpg.Pool, clean: None
) -> None:
    async with db.acquire() as conn:
        livestream_id, participant_id = str(uuid.uuid4()), str(uuid.uuid4())
        await conn.execute(
            "INSERT INTO livestreams (id, room_name, title, created_by, max_participants,"
            " room_capacity, empty_timeout_s) VALUES ($1, $2, 't', 'alice', 10, 11, 60)",
            livestream_id,
            f"guard-{livestream_id[:8]}",
        )
        before = await conn.fetchval(
            "INSERT INTO participants (id, livestream_id, user_id, display_name, role)"
            " VALUES ($1, $2, 'bob', 'Bob', 'VIEWER') RETURNING update_time",
            participant_id,
            livestream_id,
        )
        after = await conn.fetchval(
            "UPDATE participants SET connected = true WHERE id = $1 RETURNING update_time",
            participant_id,
        )
    assert after > before
