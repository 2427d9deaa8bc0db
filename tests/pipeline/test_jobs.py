"""Periodic jobs: one runner cluster-wide, handed over when it goes, purging what expired."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
from livekit import api

from favorited.consumer.jobs import JobRunner
from favorited.domain.reconciliation import Reconciler
from favorited.livekit.gateway import LiveKitRoomGateway
from favorited.livekit_emulator import LiveKitEmulator
from favorited.store.database import PgDatabase
from favorited.store.pool import create_pool
from tests.conftest import LIVEKIT_KEY, LIVEKIT_SECRET, make_settings
from tests.support.waiting import until


@pytest.fixture
async def reconciler(
    database_url: str, emulator: LiveKitEmulator, clean: None
) -> AsyncIterator[Reconciler]:
    pool = await create_pool(database_url, make_settings(database_url, emulator.url))
    async with api.LiveKitAPI(emulator.url, LIVEKIT_KEY, LIVEKIT_SECRET) as lk:
        yield Reconciler(
            db=PgDatabase(pool, acquire_timeout_s=5),
            rooms=LiveKitRoomGateway(lk, timeout_s=2),
            grace_s=60,
        )
    await pool.close()


async def test_one_runner_at_a_time_and_expired_rows_are_purged(
    database_url: str, reconciler: Reconciler, db: asyncpg.Pool
) -> None:
    await db.execute(
        "INSERT INTO webhook_inbox (event_id, event, outcome, expire_time)"
        " SELECT 'EV_old' || g, 'e', 'applied', now() - interval '1 hour'"
        " FROM generate_series(1, 2500) g"
    )
    await db.execute(
        "INSERT INTO webhook_inbox (event_id, event, outcome, expire_time)"
        " VALUES ('EV_fresh', 'e', 'applied', now() + interval '1 hour')"
    )
    stops = [asyncio.Event(), asyncio.Event()]
    runners = [
        JobRunner(
            dsn=database_url,
            reconciler=reconciler,
            reconcile_interval_s=3600,
            event_retention_s=3600,
            stopping=stop,
        )
        for stop in stops
    ]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        await until(lambda: any(r.is_leader for r in runners))
        assert sum(r.is_leader for r in runners) == 1
        remaining = "SELECT array_agg(event_id) FROM webhook_inbox"

        async def purged() -> bool:
            return bool(await db.fetchval(remaining) == ["EV_fresh"])

        await until(purged)  # in batches of 1,000, the live id kept
        leader = next(i for i, r in enumerate(runners) if r.is_leader)
        stops[leader].set()
        await tasks[leader]
        await until(lambda: runners[1 - leader].is_leader)  # handed over
    finally:
        for stop in stops:
            stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
