"""Periodic jobs, one runner cluster-wide.

Every consumer process runs a JobRunner, but only the one holding a PostgreSQL session-level
advisory lock (on a dedicated connection) does the work. If that connection dies the lock is
released with it and another process takes over, so there is never more than one runner and
never none for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg

from favorited import errors
from favorited.consumer.worker import Backoff
from favorited.domain.reconciliation import Reconciler
from favorited.store.inbox import PgInboxRepository

log = logging.getLogger(__name__)

JOBS_LOCK_KEY = 0x6661766A6F6273  # "favjobs"
PURGE_BATCH = 1000
PURGE_INTERVAL_S = 60.0
LEADER_RETRY_S = 5.0


class JobRunner:
    def __init__(
        self,
        *,
        dsn: str,
        reconciler: Reconciler,
        reconcile_interval_s: float,
        event_retention_s: int,
        stopping: asyncio.Event,
    ) -> None:
        self._event_retention_s = event_retention_s
        self._dsn = dsn
        self._reconciler = reconciler
        self._reconcile_interval_s = reconcile_interval_s
        self._stopping = stopping
        self._backoff = Backoff(first_s=0.5, max_s=LEADER_RETRY_S)
        self.is_leader = False

    async def run(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5)
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                log.warning("jobs: database unreachable", extra={"why": repr(exc)})
                await self._backoff.wait(attempt, self._stopping)
                attempt += 1
                continue
            attempt = 0
            try:
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", JOBS_LOCK_KEY):
                    self.is_leader = True
                    log.info("jobs: this process runs the periodic jobs")
                    await self._lead(conn)
                else:
                    await self._wait(LEADER_RETRY_S)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("jobs: lost the database connection", extra={"why": repr(exc)})
            finally:
                self.is_leader = False
                with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await asyncio.wait_for(conn.close(), timeout=2)

    async def _lead(self, conn: asyncpg.Connection[Any]) -> None:
        inbox = PgInboxRepository(conn)
        next_reconcile = time.monotonic()
        while not self._stopping.is_set():
            # A full batch means there may be more: go again until one comes back short.
            while await inbox.purge_expired(PURGE_BATCH) == PURGE_BATCH:
                continue
            while await _purge_events(conn, self._event_retention_s) == PURGE_BATCH:
                continue
            if time.monotonic() >= next_reconcile:
                try:
                    await self._reconciler.run_once()
                except errors.DependencyUnavailableError as exc:
                    log.warning("reconciliation skipped", extra={"why": exc.reason})
                next_reconcile = time.monotonic() + self._reconcile_interval_s
            await self._wait(min(PURGE_INTERVAL_S, max(next_reconcile - time.monotonic(), 0.01)))
            await conn.fetchval("SELECT 1")  # the lock lives with this connection: prove it does

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()


# Bounded batches: short statements, short locks, no WAL bursts.
_PURGE_EVENTS = """
DELETE FROM participant_events WHERE (livestream_id, sequence) IN (
    SELECT livestream_id, sequence FROM participant_events
    WHERE create_time < clock_timestamp() - make_interval(secs => $1) LIMIT $2
)
"""


async def _purge_events(conn: asyncpg.Connection[Any], retention_s: int) -> int:
    """Forget participant events older than the replay window (resumes then need a snapshot)."""
    status = await conn.execute(_PURGE_EVENTS, float(retention_s), PURGE_BATCH)
    return int(status.rsplit(" ", 1)[-1])
