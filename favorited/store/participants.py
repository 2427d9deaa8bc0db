"""PgParticipantRepository: the participants table."""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from favorited import errors
from favorited.domain import models
from favorited.domain.models import JoinOutcome, JoinResult
from favorited.store.pool import Connection

COLUMNS = """
    id::text, livestream_id::text, user_id, display_name, role::text, status::text, metadata,
    join_time, leave_time, livekit_participant_sid, livekit_room_sid, connected
"""
_INSERT = f"""
INSERT INTO participants (id, livestream_id, user_id, display_name, role, metadata)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING {COLUMNS}
"""
_GET = f"SELECT {COLUMNS} FROM participants WHERE id = $1"
# migrations/0005: lock, checks, request_id claim and insert in one statement (autocommit).
_JOIN = "SELECT * FROM join_livestream($1, $2, $3, $4, $5, $6, $7, $8)"
_JOIN_MANY = "SELECT * FROM join_livestreams($1, $2, $3, $4, $5, $6, $7, $8)"
_FIND_JOINED = f"""
SELECT {COLUMNS} FROM participants
WHERE livestream_id = $1 AND user_id = $2 AND status = 'JOINED'
"""
_LATEST = f"""
SELECT {COLUMNS} FROM participants
WHERE livestream_id = $1 AND user_id = $2
ORDER BY join_time DESC, id DESC LIMIT 1
"""
_MARK_LEFT = f"""
UPDATE participants SET status = 'LEFT', leave_time = clock_timestamp(), connected = false
WHERE id = $1 AND status = 'JOINED'
RETURNING {COLUMNS}
"""
_LIST_JOINED = f"""
SELECT {COLUMNS} FROM participants WHERE livestream_id = $1 AND status = 'JOINED'
ORDER BY join_time, id
"""
_MARK_ABSENT_LEFT = """
UPDATE participants SET status = 'LEFT', leave_time = clock_timestamp(), connected = false
WHERE livestream_id = $1 AND status = 'JOINED' AND NOT (user_id = ANY($2::text[]))
  AND update_time < clock_timestamp() - make_interval(secs => $3)
"""
_LIST = f"""
SELECT {COLUMNS} FROM participants
WHERE livestream_id = $1
  AND ($2::participant_status IS NULL OR status = $2)
  AND ($3::participant_role IS NULL OR role = $3)
  AND ($4::timestamptz IS NULL OR (join_time, id) > ($4, $5::uuid))
ORDER BY join_time, id
LIMIT $6
"""


@dataclass(frozen=True, slots=True)
class PendingJoin:
    """The arguments of one join, as PgParticipantRepository.join takes them."""

    participant_id: str
    livestream_id: str
    user_id: str
    display_name: str
    role: models.Role
    metadata: models.JsonObject
    request_id: str | None
    request_ttl_s: int


def to_join_result(row: asyncpg.Record) -> JoinResult:
    status = row["livestream_status"]
    return JoinResult(
        outcome=JoinOutcome(row["outcome"]),
        livestream_status=models.LivestreamStatus(status) if status is not None else None,
        room_name=row["room_name"],
        max_participants=row["max_participants"],
        participant=to_participant(row) if row["id"] is not None else None,
    )


def to_participant(row: asyncpg.Record) -> models.Participant:
    return models.Participant(
        id=row["id"],
        livestream_id=row["livestream_id"],
        user_id=row["user_id"],
        display_name=row["display_name"],
        role=models.Role(row["role"]),
        status=models.ParticipantStatus(row["status"]),
        metadata=row["metadata"],
        join_time=row["join_time"],
        leave_time=row["leave_time"],
        livekit_participant_sid=row["livekit_participant_sid"],
        livekit_room_sid=row["livekit_room_sid"],
        connected=row["connected"],
    )


class PgParticipantRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def _one(self, sql: str, *args: Any) -> models.Participant | None:
        row = await self._conn.fetchrow(sql, *args)
        return to_participant(row) if row is not None else None

    async def insert(
        self,
        *,
        participant_id: str,
        livestream_id: str,
        user_id: str,
        display_name: str,
        role: models.Role,
        metadata: models.JsonObject,
    ) -> models.Participant:
        try:
            row = await self._conn.fetchrow(
                _INSERT, participant_id, livestream_id, user_id, display_name, role, metadata
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "participants_one_joined_key":
                raise errors.ParticipantAlreadyJoinedError(livestream_id, user_id) from exc
            raise
        assert row is not None
        return to_participant(row)

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
        """Run outside a transaction: the statement is the transaction (one round trip)."""
        try:
            row = await self._conn.fetchrow(
                _JOIN,
                participant_id,
                livestream_id,
                user_id,
                display_name,
                role,
                metadata,
                request_id,
                float(request_ttl_s),
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "participants_one_joined_key":
                raise errors.ParticipantAlreadyJoinedError(livestream_id, user_id) from exc
            raise
        assert row is not None
        return to_join_result(row)

    async def join_many(self, joins: Sequence[PendingJoin]) -> list[JoinResult]:
        """Several joins in one statement (one commit), each seeing those before it.

        Driver errors are not translated: a failed batch is retried join by join by the caller.
        """
        rows = await self._conn.fetch(
            _JOIN_MANY,
            [j.participant_id for j in joins],
            [j.livestream_id for j in joins],
            [j.user_id for j in joins],
            [j.display_name for j in joins],
            [j.role.value for j in joins],
            [json.dumps(j.metadata) for j in joins],
            [j.request_id for j in joins],
            [float(j.request_ttl_s) for j in joins],
        )
        assert len(rows) == len(joins)
        return [to_join_result(row) for row in rows]

    async def get(self, participant_id: str) -> models.Participant | None:
        return await self._one(_GET, participant_id)

    async def find_joined(self, livestream_id: str, user_id: str) -> models.Participant | None:
        return await self._one(_FIND_JOINED, livestream_id, user_id)

    async def latest(self, livestream_id: str, user_id: str) -> models.Participant | None:
        return await self._one(_LATEST, livestream_id, user_id)

    async def mark_left(self, participant_id: str) -> models.Participant | None:
        return await self._one(_MARK_LEFT, participant_id)

    async def list_joined(self, livestream_id: str) -> list[models.Participant]:
        return [to_participant(r) for r in await self._conn.fetch(_LIST_JOINED, livestream_id)]

    async def mark_absent_left(
        self, livestream_id: str, *, present: list[str], grace_s: int
    ) -> int:
        status = await self._conn.execute(_MARK_ABSENT_LEFT, livestream_id, present, float(grace_s))
        return int(status.rsplit(" ", 1)[-1])

    async def list_page(
        self,
        *,
        livestream_id: str,
        status: models.ParticipantStatus | None,
        role: models.Role | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[models.Participant]:
        at, last_id = after if after is not None else (None, None)
        rows = await self._conn.fetch(_LIST, livestream_id, status, role, at, last_id, limit)
        return [to_participant(r) for r in rows]


_LEAD = object()  # a waiting join's future resolves to this when it is handed the next batch


@dataclass(slots=True)
class _Waiting:
    join: PendingJoin
    done: asyncio.Future[object]


@dataclass(slots=True)
class _Lane:
    """The joins of one livestream: at most one batch running, the rest waiting for the next."""

    busy: bool = False
    waiting: collections.deque[_Waiting] = field(default_factory=collections.deque)


class JoinBatcher:
    """Runs the joins of one livestream that arrive together as one statement and one commit.

    Every join commit notifies watchers, and PostgreSQL runs notifying commits one at a time
    (a database-wide lock held through each WAL flush), while the livestream's row lock already
    makes its joins take turns: one join per commit capped joins near 1 / flush time, with the
    API mostly idle. Here each livestream has at most one batch running; its joins that arrive
    meanwhile wait and go together in the next one. A lone join still goes at once, alone.
    Batches never mix livestreams, so a livestream whose row is held (a long end) holds up its
    own joins only, exactly as before.

    No task is spawned per join: the caller whose join starts a batch runs it, and hands the
    next batch to the first join still waiting (each caller runs at most the batch that holds
    its own join). The batch's statement is shielded from that caller's cancellation, so one
    cancelled RPC never fails the others' joins.
    """

    def __init__(
        self,
        run: Callable[[Sequence[PendingJoin]], Awaitable[list[JoinResult]]],
        run_one: Callable[[PendingJoin], Awaitable[JoinResult]],
        *,
        max_batch: int = 64,
    ) -> None:
        self._run = run
        self._run_one = run_one
        self._max_batch = max_batch
        # Only livestreams with a batch running are here: bounded by the joins in flight.
        self._lanes: dict[str, _Lane] = {}
        self._batches: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        """Joins queued for a next batch (cancelled ones included until a batch skips them)."""
        return sum(len(lane.waiting) for lane in self._lanes.values())

    async def join(self, join: PendingJoin) -> JoinResult:
        key = join.livestream_id
        lane = self._lanes.setdefault(key, _Lane())
        me = _Waiting(join, asyncio.get_running_loop().create_future())
        if not lane.busy:
            lane.busy = True
        else:
            lane.waiting.append(me)
            try:
                handed = await me.done
            except asyncio.CancelledError:
                # Cancelled just after being handed the next batch: pass it on, or it is lost.
                if me.done.done() and not me.done.cancelled() and me.done.result() is _LEAD:
                    self._next(key, lane)
                raise
            if handed is not _LEAD:
                assert isinstance(handed, JoinResult)
                return handed
            me = _Waiting(join, asyncio.get_running_loop().create_future())  # for our answer
        batch = [me]
        while lane.waiting and len(batch) < self._max_batch:
            other = lane.waiting.popleft()
            if not other.done.done():  # skip joins whose RPC was cancelled while waiting
                batch.append(other)
        task = asyncio.create_task(self._execute(batch))
        # Kept until done; the lane passes on when the statement ends, even if we are cancelled.
        self._batches.add(task)
        task.add_done_callback(lambda done: self._finished(done, key, lane))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            me.done.cancel()  # the batch goes on for the others; nobody reads our answer
            raise
        result = me.done.result()
        assert isinstance(result, JoinResult)
        return result

    def _finished(self, task: asyncio.Task[None], key: str, lane: _Lane) -> None:
        self._batches.discard(task)
        self._next(key, lane)

    def _next(self, key: str, lane: _Lane) -> None:
        while lane.waiting:
            other = lane.waiting.popleft()
            if not other.done.done():
                other.done.set_result(_LEAD)
                return
        lane.busy = False
        del self._lanes[key]

    async def _execute(self, batch: list[_Waiting]) -> None:
        results: list[JoinResult | BaseException] | None = None
        try:
            results = await self._results(batch)
        except Exception as exc:  # noqa: BLE001 - every join of the batch gets the failure
            results = [exc] * len(batch)
        finally:
            if results is None:  # this task itself was cancelled (the loop is closing)
                for waiting in batch:
                    if not waiting.done.done():
                        waiting.done.cancel()
        for waiting, result in zip(batch, results, strict=True):
            if waiting.done.done():
                continue
            if isinstance(result, BaseException):
                waiting.done.set_exception(result)
            else:
                waiting.done.set_result(result)

    async def _results(self, batch: list[_Waiting]) -> list[JoinResult | BaseException]:
        if len(batch) == 1:
            return [await self._run_one(batch[0].join)]
        try:
            return list(await self._run([w.join for w in batch]))
        except (asyncpg.PostgresError, errors.AbortedError):
            # One join broke the statement (a livestream locked past the batch's lock_timeout,
            # the unique index refusing a duplicate made by another process, a deadlock with a
            # webhook batch): nothing was kept. Each join gets its own answer, concurrently, so
            # the joins of a busy livestream wait for it alone.
            return list(await asyncio.gather(*(self._answer(w.join) for w in batch)))

    async def _answer(self, join: PendingJoin) -> JoinResult | BaseException:
        try:
            return await self._run_one(join)
        except Exception as exc:  # noqa: BLE001 - handed to that join's caller
            return exc
