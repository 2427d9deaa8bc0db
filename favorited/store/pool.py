"""The asyncpg pool: timeouts and per-connection codecs."""

from __future__ import annotations

import json
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from favorited.config import Settings

# What repositories run statements on: a plain connection or one borrowed from the pool.
Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    # jsonb ↔ Python objects, so repositories never hand-encode JSON.
    await conn.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog", format="text"
    )


async def _keep_session(conn: asyncpg.Connection[Any]) -> None:
    """Reset nothing on release beyond asyncpg's rollback of an open transaction.

    asyncpg's default reset (advisory unlock, CLOSE ALL, UNLISTEN *, RESET ALL) is one more round
    trip per pooled use: on the webhook path it was a quarter of the database calls. favorited
    leaves no session state on pooled connections: settings are SET LOCAL, and LISTEN, the jobs'
    advisory lock and the migrations' lock live on dedicated connections.
    """


async def create_pool(dsn: str, settings: Settings) -> asyncpg.Pool[Any]:
    """A pool whose every wait is bounded: connect, acquire (by callers) and each statement."""
    timeout_s = settings.db_timeout_s
    pool = await asyncpg.create_pool(
        dsn,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        timeout=timeout_s,
        command_timeout=timeout_s,
        init=_init_connection,
        reset=_keep_session,
        server_settings={
            "application_name": "favorited",
            # The server-side guard behind command_timeout, for statements a client stops awaiting.
            "statement_timeout": str(int(timeout_s * 1000)),
            "idle_in_transaction_session_timeout": str(int(timeout_s * 4000)),
        },
    )
    assert pool is not None
    return pool
