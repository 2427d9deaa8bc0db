"""Rows written straight into PostgreSQL for the tests that drive a Watch feed below the API: a
LIVE livestream, and JOINED viewers whose triggers log the participant events the feed reads."""

from __future__ import annotations

import uuid

import asyncpg

_LIVESTREAM = """
INSERT INTO livestreams (id, room_name, title, created_by, max_participants, room_capacity,
                         empty_timeout_s, status, start_time)
VALUES ($1, $2, 't', 'host', 10, 11, 60, 'LIVE', now())
"""
_JOIN = """
INSERT INTO participants (id, livestream_id, user_id, display_name, role)
VALUES (gen_random_uuid(), $1, $2, 'P', 'VIEWER')
"""


async def live_livestream(db: asyncpg.Pool, prefix: str) -> str:
    """A new LIVE livestream's id (its room named after `prefix`)."""
    livestream_id = str(uuid.uuid4())
    await db.execute(_LIVESTREAM, livestream_id, f"{prefix}-{livestream_id[:8]}")
    return livestream_id


async def join(db: asyncpg.Pool, livestream_id: str, user: str) -> None:
    """`user` JOINED as a viewer (one participant event)."""
    await db.execute(_JOIN, livestream_id, user)
