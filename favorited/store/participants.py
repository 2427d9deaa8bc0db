"""PgParticipantRepository: the participants table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from favorited import errors
from favorited.domain import models

_COLUMNS = """
    id::text, livestream_id::text, user_id, display_name, role::text, status::text, metadata,
    join_time, leave_time, livekit_participant_sid, livekit_room_sid, connected
"""
_INSERT = f"""
INSERT INTO participants (id, livestream_id, user_id, display_name, role, metadata)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING {_COLUMNS}
"""
_GET = f"SELECT {_COLUMNS} FROM participants WHERE id = $1"
_FIND_JOINED = f"""
SELECT {_COLUMNS} FROM participants
WHERE livestream_id = $1 AND user_id = $2 AND status = 'JOINED'
"""
_LATEST = f"""
SELECT {_COLUMNS} FROM participants
WHERE livestream_id = $1 AND user_id = $2
ORDER BY join_time DESC, id DESC LIMIT 1
"""
_COUNT_JOINED = """
SELECT count(*) FROM participants WHERE livestream_id = $1 AND role = $2 AND status = 'JOINED'
"""
_MARK_LEFT = f"""
UPDATE participants SET status = 'LEFT', leave_time = clock_timestamp(), connected = false
WHERE id = $1 AND status = 'JOINED'
RETURNING {_COLUMNS}
"""
_LEAVE_ALL = """
UPDATE participants SET status = 'LEFT', leave_time = clock_timestamp(), connected = false
WHERE livestream_id = $1 AND status = 'JOINED'
"""
_LIST = f"""
SELECT {_COLUMNS} FROM participants
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
    def __init__(self, conn: asyncpg.Connection) -> None:
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

    async def get(self, participant_id: str) -> models.Participant | None:
        return await self._one(_GET, participant_id)

    async def find_joined(self, livestream_id: str, user_id: str) -> models.Participant | None:
        return await self._one(_FIND_JOINED, livestream_id, user_id)

    async def latest(self, livestream_id: str, user_id: str) -> models.Participant | None:
        return await self._one(_LATEST, livestream_id, user_id)

    async def count_joined(self, livestream_id: str, role: models.Role) -> int:
        count = await self._conn.fetchval(_COUNT_JOINED, livestream_id, role)
        return int(count)

    async def mark_left(self, participant_id: str) -> models.Participant | None:
        return await self._one(_MARK_LEFT, participant_id)

    async def leave_all(self, livestream_id: str) -> int:
        status = await self._conn.execute(_LEAVE_ALL, livestream_id)
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
