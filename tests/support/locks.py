"""Row locks held from a test, and seeing a statement wait for one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from favorited.store.pool import Connection


@asynccontextmanager
async def held(db: asyncpg.Pool, sql: str, *args: object) -> AsyncIterator[Connection]:
    """Run `sql` in a transaction that stays open, its locks held, until the block ends; then
    roll it back."""
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(sql, *args)
            yield conn
        finally:
            await tx.rollback()


async def blocked_on_a_lock(db: asyncpg.Pool, query_part: str) -> bool:
    """Whether a statement of this database containing `query_part` waits for a lock."""
    waiting: int = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database() AND query LIKE '%' || $1 || '%'",
        query_part,
    )
    return waiting > 0
