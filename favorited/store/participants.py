"""PgParticipantRepository: the participants table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from favorited import errors
from favorited.domain import models
from favorited.domain.participants import JoinOutcome, JoinResult
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
_FIND_JOINED = f"""
SELECT {COLUMNS} FROM participants
WHERE livestream_id = $1 AND user_id = $2 AND status = 'JOINED'
"""
_LATEST = f"""
SELECT {COLUMNS} FROM participants
WHERE livestream_id = $1 AND user_id = $2
ORDER BY join_time DESC, id DESC LIMIT 1
"""
_JOIN_STATE = """
SELECT
    EXISTS (SELECT 1 FROM participants
            WHERE livestream_id = $1 AND user_id = $2 AND status = 'JOINED'),
    (SELECT count(*) FROM participants
     WHERE livestream_id = $1 AND role = 'VIEWER' AND status = 'JOINED')
"""
_MARK_LEFT = f"""
UPDATE participants SET status = 'LEFT', leave_time = clock_timestamp(), connected = false
WHERE id = $1 AND status = 'JOINED'
RETURNING {COLUMNS}
"""
_INSERT_FROM_SESSION = f"""
INSERT INTO participants (id, livestream_id, user_id, display_name, role, metadata,
                          livekit_participant_sid, livekit_room_sid, connected, status, leave_time)
VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7, NOT $8,
        CASE WHEN $8 THEN 'LEFT' ELSE 'JOINED' END::participant_status,
        CASE WHEN $8 THEN clock_timestamp() END)
RETURNING {COLUMNS}
"""
_BIND_SESSION = """
UPDATE participants SET livekit_participant_sid = $2, livekit_room_sid = $3, connected = true
WHERE id = $1 AND status = 'JOINED'
"""
_END_SESSION = """
UPDATE participants SET status = 'LEFT', leave_time = clock_timestamp(), connected = false
WHERE livekit_participant_sid = $1 AND status = 'JOINED'
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
        status = row["livestream_status"]
        return JoinResult(
            outcome=JoinOutcome(row["outcome"]),
            livestream_status=models.LivestreamStatus(status) if status is not None else None,
            room_name=row["room_name"],
            max_participants=row["max_participants"],
            participant=to_participant(row) if row["id"] is not None else None,
        )

    async def get(self, participant_id: str) -> models.Participant | None:
        return await self._one(_GET, participant_id)

    async def find_joined(self, livestream_id: str, user_id: str) -> models.Participant | None:
        return await self._one(_FIND_JOINED, livestream_id, user_id)

    async def latest(self, livestream_id: str, user_id: str) -> models.Participant | None:
        return await self._one(_LATEST, livestream_id, user_id)

    async def join_state(self, livestream_id: str, user_id: str) -> tuple[bool, int]:
        row = await self._conn.fetchrow(_JOIN_STATE, livestream_id, user_id)
        assert row is not None
        return bool(row[0]), int(row[1])

    async def mark_left(self, participant_id: str) -> models.Participant | None:
        return await self._one(_MARK_LEFT, participant_id)

    async def insert_from_session(
        self,
        *,
        livestream_id: str,
        user_id: str,
        display_name: str,
        role: models.Role,
        metadata: models.JsonObject,
        sid: str,
        room_sid: str,
        left: bool,
    ) -> models.Participant:
        row = await self._conn.fetchrow(
            _INSERT_FROM_SESSION,
            livestream_id,
            user_id,
            display_name,
            role,
            metadata,
            sid,
            room_sid,
            left,
        )
        assert row is not None
        return to_participant(row)

    async def bind_session(self, participant_id: str, *, sid: str, room_sid: str) -> None:
        await self._conn.execute(_BIND_SESSION, participant_id, sid, room_sid)

    async def end_session(self, sid: str) -> bool:
        return await self._conn.execute(_END_SESSION, sid) != "UPDATE 0"

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
