"""PgParticipantRepository: the participants table."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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
# migrations/0010: the same, but a join whose livestream row another transaction holds comes back
# BUSY (nothing written for it) instead of waiting.
_TRY_JOIN_MANY = "SELECT * FROM try_join_livestreams($1, $2, $3, $4, $5, $6, $7, $8)"
_BUSY = "BUSY"
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
# `AND in_roster`, here and in _MARK_ABSENT_LEFT, is redundant in meaning (migrations/0011) but
# lets the planner read the JOINED rows through the roster key, not every row of the livestream.
_LIST_JOINED = f"""
SELECT {COLUMNS} FROM participants WHERE livestream_id = $1 AND status = 'JOINED' AND in_roster
ORDER BY join_time, id
"""
_MARK_ABSENT_LEFT = """
UPDATE participants SET status = 'LEFT', leave_time = clock_timestamp(), connected = false
WHERE livestream_id = $1 AND status = 'JOINED' AND in_roster AND NOT (user_id = ANY($2::text[]))
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


@contextmanager
def _already_joined(livestream_id: str, user_id: str) -> Iterator[None]:
    """The partial unique index's refusal as the API's error; any other error unchanged."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "participants_one_joined_key":
            raise errors.ParticipantAlreadyJoinedError(livestream_id, user_id) from exc
        raise


def _arrays(joins: Sequence[PendingJoin]) -> tuple[list[Any], ...]:
    """The statement's arguments: one array per column, plain types for the driver to encode."""
    return (
        [j.participant_id for j in joins],
        [j.livestream_id for j in joins],
        [j.user_id for j in joins],
        [j.display_name for j in joins],
        [j.role.value for j in joins],
        [json.dumps(j.metadata) for j in joins],
        [j.request_id for j in joins],
        [float(j.request_ttl_s) for j in joins],
    )


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
        with _already_joined(livestream_id, user_id):
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
        assert row is not None
        return to_join_result(row)

    async def join_many(self, joins: Sequence[PendingJoin]) -> list[JoinResult]:
        """Several joins in one statement (one commit), each seeing those before it.

        Driver errors are not translated: a failed batch is retried join by join by the caller.
        """
        rows = await self._conn.fetch(_JOIN_MANY, *_arrays(joins))
        assert len(rows) == len(joins)
        return [to_join_result(row) for row in rows]

    async def try_join_many(self, joins: Sequence[PendingJoin]) -> list[JoinResult | None]:
        """join_many over any livestreams, never waiting on one: None for a join whose
        livestream row another transaction holds (nothing was written for it).

        Driver errors are not translated: a failed batch is retried join by join by the caller.
        """
        rows = await self._conn.fetch(_TRY_JOIN_MANY, *_arrays(joins))
        assert len(rows) == len(joins)
        return [None if row["outcome"] == _BUSY else to_join_result(row) for row in rows]

    async def try_join(self, join: PendingJoin) -> JoinResult | None:
        """try_join_many of one join, with the errors translated as `join` does."""
        with _already_joined(join.livestream_id, join.user_id):
            (result,) = await self.try_join_many([join])
        return result

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
