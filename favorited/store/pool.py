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
    # asyncpg's default reset runs `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    # RESET ALL` on every release: a round trip per RPC (~5 % of the API's CPU under load). Pool
    # connections never hold session state: advisory locks (jobs, migrations) and LISTEN live on
    # connections of their own, SET is only ever SET LOCAL, cursors only inside transactions. An
    # open transaction is still rolled back by asyncpg before this hook runs.
    return None


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
