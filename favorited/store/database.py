"""Unit of work over an asyncpg pool, and the translation of driver errors at this boundary."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg

from favorited import errors
from favorited.domain import models
from favorited.domain.models import JoinResult
from favorited.store.batcher import StatementBatcher
from favorited.store.idempotency import PgIdempotencyRepository
from favorited.store.livestreams import PendingLivestream, PgLivestreamRepository
from favorited.store.participants import PendingJoin, PgParticipantRepository
from favorited.store.pool import Connection
from favorited.store.webhook_effects import PgWebhookEffects

# Errors that mean "the database is not reachable right now", not "the request is wrong".
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.InterfaceError,
)
# Concurrency conflicts that a retry resolves.
_ABORTED: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
)


# A shared statement's lock wait ran out (BATCH_LOCK_TIMEOUT, migrations/0010): a write that
# meets it alone counts as held, and is redone by the one-row statement, which waits, outside the
# lane (a whole batch that meets it is answered write by write by StatementBatcher first).
_LOCK_WAIT_RAN_OUT = asyncpg.exceptions.LockNotAvailableError

_PING_ERRORS: tuple[type[BaseException], ...] = (*_UNAVAILABLE, asyncpg.PostgresError)


class PgUnitOfWork:
    """The repositories of one connection (and, inside `transaction`, one transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.livestreams = PgLivestreamRepository(conn)
        self.participants = PgParticipantRepository(conn)
        self.idempotency = PgIdempotencyRepository(conn)
        self.webhook_effects = PgWebhookEffects(conn)


def _one_lane(item: object) -> str:
    """Every item in the same lane: batches over all livestreams (see PgDatabase.__init__)."""
    return ""


def _by_livestream(join: PendingJoin) -> str:
    return join.livestream_id


class PgDatabase:
    """Implements favorited.domain.ports.Database over an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool[Any], *, acquire_timeout_s: float) -> None:
        self._pool = pool
        self._acquire_timeout_s = acquire_timeout_s
        # Joins go first into one batch at a time for the whole process, over every livestream,
        # by statements that never wait on a livestream row and wait on any other lock for
        # BATCH_LOCK_TIMEOUT at most (migrations/0010): joins spread over many livestreams
        # share commits. A join whose livestream is held by another transaction (a long end,
        # another process's join batch) comes back None and then waits in its livestream's own
        # lane, so a held livestream holds up its own joins only. Concurrent joins have no order:
        # a later join may take the last seat while an earlier one waits for its row.
        self._joins: StatementBatcher[PendingJoin, JoinResult | None] = StatementBatcher(
            self._try_join_many, self._try_join_one, lane=_one_lane
        )
        self._held_joins: StatementBatcher[PendingJoin, JoinResult] = StatementBatcher(
            self._join_many, self._join_one, lane=_by_livestream
        )
        # Creates share statements the same way, for their SCHEDULED insert and their LIVE update
        # (a conflicting or held row is left out and redone alone; a shared statement waits on
        # another transaction for BATCH_LOCK_TIMEOUT at most).
        self._inserts: StatementBatcher[PendingLivestream, models.Livestream | None] = (
            StatementBatcher(self._try_insert_many, self._try_insert_one, lane=_one_lane)
        )
        self._going_live: StatementBatcher[tuple[str, str], models.Livestream | None] = (
            StatementBatcher(self._try_mark_live_many, self._try_mark_live_one, lane=_one_lane)
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgUnitOfWork]:
        with translate_errors():
            async with (
                self._pool.acquire(timeout=self._acquire_timeout_s) as conn,
                conn.transaction(),
            ):
                yield PgUnitOfWork(conn)

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[PgUnitOfWork]:
        with translate_errors():
            async with self._pool.acquire(timeout=self._acquire_timeout_s) as conn:
                yield PgUnitOfWork(conn)

    reader = autocommit

    async def join(
        self,
        *,
        participant_id: str,
        livestream_id: str,
        user_id: str,
        display_name: str,
        role: models.Role,
        metadata: models.JsonObject,
        request_id: str | None,
        request_ttl_s: int,
    ) -> JoinResult:
        """One statement, no explicit transaction; joins arriving together share it."""
        pending = PendingJoin(
            participant_id=participant_id,
            livestream_id=livestream_id,
            user_id=user_id,
            display_name=display_name,
            role=role,
            metadata=metadata,
            request_id=request_id,
            request_ttl_s=request_ttl_s,
        )
        result = await self._joins.submit(pending)
        if result is None:  # its livestream's row was held: nothing was written, wait for it
            result = await self._held_joins.submit(pending)
        return result

    @property
    def writes_waiting(self) -> int:
        """Writes queued behind a running batch: joins (in either kind of lane), creates'
        inserts and LIVE updates."""
        batchers = (self._joins, self._held_joins, self._inserts, self._going_live)
        return sum(batcher.waiting for batcher in batchers)

    async def insert_livestream(
        self, *, livestream_id: str, new: models.NewLivestream, created_by: str, room_capacity: int
    ) -> models.Livestream:
        """A SCHEDULED livestream, in one statement shared with concurrent creates.

        Raises:
            RoomNameTakenError: an active livestream has the room name.
        """
        created = await self._inserts.submit(
            PendingLivestream(livestream_id, new, created_by, room_capacity)
        )
        if created is None:  # its room name was taken: the one-row insert raises the refusal
            async with self.autocommit() as uow:
                created = await uow.livestreams.insert(
                    livestream_id=livestream_id,
                    new=new,
                    created_by=created_by,
                    room_capacity=room_capacity,
                )
        return created

    async def _try_insert_many(
        self, rows: Sequence[PendingLivestream]
    ) -> list[models.Livestream | None]:
        # As _join_many: only unavailability is translated.
        with translate_errors():
            async with self._pool.acquire(timeout=self._acquire_timeout_s) as conn:
                inserted = await PgLivestreamRepository(conn).try_insert_many(rows)
        return [inserted.get(row.livestream_id) for row in rows]

    async def _try_insert_one(self, row: PendingLivestream) -> models.Livestream | None:
        try:
            (created,) = await self._try_insert_many([row])
        except _LOCK_WAIT_RAN_OUT:
            return None  # counts as held: the caller redoes it with the waiting statement
        return created

    async def mark_live(self, livestream_id: str, *, room_sid: str) -> models.Livestream | None:
        """SCHEDULED → LIVE in one statement, shared with concurrent creates; None when the
        livestream was no longer SCHEDULED."""
        live = await self._going_live.submit((livestream_id, room_sid))
        if live is None:  # held by another transaction, or no longer SCHEDULED: wait and see
            async with self.autocommit() as uow:
                live = await uow.livestreams.mark_live(livestream_id, room_sid=room_sid)
        return live

    async def _try_mark_live_many(
        self, rooms: Sequence[tuple[str, str]]
    ) -> list[models.Livestream | None]:
        # As _join_many: only unavailability is translated.
        with translate_errors():
            async with self._pool.acquire(timeout=self._acquire_timeout_s) as conn:
                marked = await PgLivestreamRepository(conn).try_mark_live_many(rooms)
        return [marked.get(livestream_id) for livestream_id, _ in rooms]

    async def _try_mark_live_one(self, room: tuple[str, str]) -> models.Livestream | None:
        try:
            (live,) = await self._try_mark_live_many([room])
        except _LOCK_WAIT_RAN_OUT:
            return None  # counts as held: the caller redoes it with the waiting statement
        return live

    async def _join_one(self, join: PendingJoin) -> JoinResult:
        with translate_errors():
            async with self._pool.acquire(timeout=self._acquire_timeout_s) as conn:
                return await PgParticipantRepository(conn).join(
                    participant_id=join.participant_id,
                    livestream_id=join.livestream_id,
                    user_id=join.user_id,
                    display_name=join.display_name,
                    role=join.role,
                    metadata=join.metadata,
                    request_id=join.request_id,
                    request_ttl_s=join.request_ttl_s,
                )

    async def _try_join_one(self, join: PendingJoin) -> JoinResult | None:
        try:
            with translate_errors():
                async with self._pool.acquire(timeout=self._acquire_timeout_s) as conn:
                    return await PgParticipantRepository(conn).try_join(join)
        except _LOCK_WAIT_RAN_OUT:
            return None  # counts as held: the join then waits in its livestream's own lane

    async def _try_join_many(self, joins: Sequence[PendingJoin]) -> list[JoinResult | None]:
        # As _join_many: only unavailability is translated.
        with translate_errors():
            async with self._pool.acquire(timeout=self._acquire_timeout_s) as conn:
                return await PgParticipantRepository(conn).try_join_many(joins)

    async def _join_many(self, joins: Sequence[PendingJoin]) -> list[JoinResult]:
        # Unavailability is translated here; any other driver error reaches the batcher raw,
        # which then answers each join on its own.
        with translate_errors():
            async with self._pool.acquire(timeout=self._acquire_timeout_s) as conn:
                return await PgParticipantRepository(conn).join_many(joins)

    async def ping(self, timeout_s: float) -> bool:
        """True when a connection answers `SELECT 1` within the timeout."""
        try:
            async with asyncio.timeout(timeout_s), self._pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        except _PING_ERRORS:
            return False
        return True


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn driver-level failures into domain errors; let everything else through unchanged."""
    try:
        yield
    except errors.FavoritedError:
        raise
    except _ABORTED as exc:
        raise errors.AbortedError(
            "A concurrent change conflicted with this request; retry it.",
            reason="CONCURRENT_MODIFICATION",
        ) from exc
    except _UNAVAILABLE as exc:
        raise errors.DependencyUnavailableError(
            "The database is unavailable; retry later.", reason="DATABASE_UNAVAILABLE"
        ) from exc
