"""PgDeadLetterStore: webhook messages the consumer gave up on, for inspection and replay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

_RECORD = """
INSERT INTO dead_letters (event_id, event, reason, attempts, body) VALUES ($1, $2, $3, $4, $5)
"""
_PENDING = """
SELECT id, event_id, event, reason, attempts, body, create_time FROM dead_letters
WHERE replay_time IS NULL AND ($1::bigint[] IS NULL OR id = ANY($1))
ORDER BY id LIMIT $2
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    event_id: str
    event: str
    reason: str
    attempts: int
    body: bytes
    create_time: datetime


class PgDeadLetterStore:
    """Uses the pool directly: every operation is a single statement."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(
        self, *, event_id: str, event: str, reason: str, attempts: int, body: bytes
    ) -> None:
        await self._pool.execute(_RECORD, event_id, event, reason, attempts, body)

    async def count_pending(self) -> int:
        return int(
            await self._pool.fetchval("SELECT count(*) FROM dead_letters WHERE replay_time IS NULL")
        )

    async def pending(self, *, ids: list[int] | None = None, limit: int = 1000) -> list[DeadLetter]:
        rows = await self._pool.fetch(_PENDING, ids, limit)
        return [DeadLetter(**dict(r)) for r in rows]

    async def mark_replayed(self, dead_letter_id: int) -> None:
        await self._pool.execute(
            "UPDATE dead_letters SET replay_time = clock_timestamp() WHERE id = $1", dead_letter_id
        )
