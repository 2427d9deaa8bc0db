"""One LISTEN connection per process, re-established after loss.

A notification may be lost while the connection is down; after reconnecting, every feed is woken
to re-read from its cursor, so nothing is missed (the log, not the notification, carries data).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from favorited.tasks import cancel_and_wait

log = logging.getLogger(__name__)

PARTICIPANT_EVENTS = "favorited_participant_events"
LIVESTREAM_CHANGES = "favorited_livestream_changes"


class PgNotifier:
    def __init__(
        self,
        dsn: str,
        *,
        on_notify: Callable[[str, str], None],
        on_reconnect: Callable[[], None],
        retry_s: float = 1.0,
    ) -> None:
        self._dsn = dsn
        self._on_notify = on_notify
        self._on_reconnect = on_reconnect
        self._retry_s = retry_s
        self._lost = asyncio.Event()
        self._closed = asyncio.Event()
        self._conn: asyncpg.Connection[Any] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._maintain(), name="pg-notifier")

    async def close(self) -> None:
        self._closed.set()
        if self._task is not None:
            await cancel_and_wait(self._task)
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close(timeout=2)

    def _dispatch(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self._on_notify(channel, str(payload))

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._dsn, timeout=5)
        conn.add_termination_listener(lambda _conn: self._lost.set())
        for channel in (PARTICIPANT_EVENTS, LIVESTREAM_CHANGES):
            await conn.add_listener(channel, self._dispatch)
        self._conn = conn
        self._lost.clear()

    async def _maintain(self) -> None:
        while not self._closed.is_set():
            await self._lost.wait()
            log.warning("LISTEN connection lost; reconnecting")
            while not self._closed.is_set():
                try:
                    await self._connect()
                except (TimeoutError, OSError, asyncpg.PostgresError):
                    await asyncio.sleep(self._retry_s)  # a periodic retry, not synchronisation
                    continue
                self._on_reconnect()
                break
