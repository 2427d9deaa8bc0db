"""PgLivestreamRepository: the livestreams table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from favorited import errors
from favorited.domain import models
from favorited.store.pool import Connection

# How long a statement shared by concurrent writes may wait for another transaction's lock before
# it fails (lock_not_available) and its writes are retried one by one (migrations/0010 for joins).
BATCH_LOCK_TIMEOUT = "100ms"

COLUMNS = """
    id::text, room_name, title, description, status::text, created_by, max_participants,
    room_capacity, empty_timeout_s, metadata, create_time, update_time, start_time, end_time,
    viewer_count, peak_viewer_count, unique_viewer_count, livekit_room_sid, last_event_sequence
"""

_INSERT = f"""
INSERT INTO livestreams
    (id, room_name, title, description, created_by, max_participants, room_capacity,
     empty_timeout_s, metadata)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING {COLUMNS}
"""
# Several at once (concurrent creates share a commit). A row whose room name an active livestream
# holds, or one inserted earlier in the same statement, is left out (ON CONFLICT DO NOTHING): the
# caller then runs _INSERT for it, which raises the refusal. A name another transaction is still
# writing makes ON CONFLICT wait; `brief` bounds that wait (lock_timeout for this statement's own
# transaction, set before any row is inserted), so one create cannot hold up the batch for long.
_INSERT_MANY = f"""
INSERT INTO livestreams
    (id, room_name, title, description, created_by, max_participants, room_capacity,
     empty_timeout_s, metadata)
SELECT id, room_name, title, description, created_by, max_participants, room_capacity,
       empty_timeout_s, metadata::jsonb
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[],
            $8::int[], $9::text[])
    AS n(id, room_name, title, description, created_by, max_participants, room_capacity,
         empty_timeout_s, metadata)
    CROSS JOIN (SELECT set_config('lock_timeout', '{BATCH_LOCK_TIMEOUT}', true)) AS brief
ON CONFLICT DO NOTHING
RETURNING {COLUMNS}
"""
_GET = f"SELECT {COLUMNS} FROM livestreams WHERE id = $1"
# NO KEY UPDATE: serialises joins of one livestream without blocking participants' FK checks.
_GET_LOCKED = _GET + " FOR NO KEY UPDATE"
_LIST = f"""
SELECT {COLUMNS} FROM livestreams
WHERE ($1::livestream_status IS NULL OR status = $1)
  AND ($2::text IS NULL OR created_by = $2)
  AND ($3::timestamptz IS NULL OR (create_time, id) < ($3, $4::uuid))
ORDER BY create_time DESC, id DESC
LIMIT $5
"""
_MARK_LIVE = f"""
UPDATE livestreams SET status = 'LIVE', start_time = clock_timestamp(), livekit_room_sid = $2
WHERE id = $1 AND status = 'SCHEDULED'
RETURNING {COLUMNS}
"""
# Several at once (concurrent creates share a commit), never waiting on a row lock: a livestream
# held by another transaction is left out, as is one no longer SCHEDULED (the caller then runs
# _MARK_LIVE for it, which waits, and tells the two apart). The room sid's unique index can still
# wait on another transaction writing the same sid; `brief` bounds that wait, as in _INSERT_MANY.
_MARK_LIVE_MANY = f"""
WITH ready AS (
    SELECT l.id AS ready_id, w.want_sid
    FROM livestreams l JOIN unnest($1::uuid[], $2::text[]) AS w(want_id, want_sid)
        ON l.id = w.want_id
        CROSS JOIN (SELECT set_config('lock_timeout', '{BATCH_LOCK_TIMEOUT}', true)) AS brief
    WHERE l.status = 'SCHEDULED'
    FOR NO KEY UPDATE OF l SKIP LOCKED
)
UPDATE livestreams SET status = 'LIVE', start_time = clock_timestamp(), livekit_room_sid = want_sid
FROM ready WHERE livestreams.id = ready.ready_id
RETURNING {COLUMNS}
"""
_MARK_ERROR = f"""
UPDATE livestreams SET status = 'ERROR' WHERE id = $1 AND status = 'SCHEDULED'
RETURNING {COLUMNS}
"""
# Ending is one statement (end_livestream, migrations/0007): the livestream and all of its JOINED
# participants, however many, and one LIVESTREAM_ENDED event.
_END = "SELECT end_livestream($1)"
# Ending a livestream of 100,000 participants is one statement, but a long one (100,000 new row
# versions, heap-only where their pages have room: migrations/0011): it gets its own, longer,
# timeout instead of DATABASE_TIMEOUT_SECONDS.
END_TIMEOUT_S = 120.0
END_TIMEOUT = f"SET LOCAL statement_timeout = '{int(END_TIMEOUT_S * 1000)}ms'"
_LIST_LIVE = f"""
SELECT {COLUMNS} FROM livestreams
WHERE status = 'LIVE' AND ($1::uuid IS NULL OR id > $1)
ORDER BY id LIMIT $2
"""
_LIST_STUCK_SCHEDULED = f"""
SELECT {COLUMNS} FROM livestreams
WHERE status = 'SCHEDULED' AND create_time < clock_timestamp() - make_interval(secs => $1)
ORDER BY create_time LIMIT 100
"""
_UPDATE = f"""
UPDATE livestreams SET
    title = COALESCE($2, title),
    description = COALESCE($3, description),
    metadata = COALESCE($4, metadata),
    max_participants = COALESCE($5, max_participants),
    empty_timeout_s = COALESCE($6, empty_timeout_s)
WHERE id = $1 AND status IN ('SCHEDULED', 'LIVE')
RETURNING {COLUMNS}
"""


@dataclass(frozen=True, slots=True)
class PendingLivestream:
    """The arguments of one insert, as PgLivestreamRepository.insert takes them."""

    livestream_id: str
    new: models.NewLivestream
    created_by: str
    room_capacity: int


def to_livestream(row: asyncpg.Record) -> models.Livestream:
    return models.Livestream(
        id=row["id"],
        room_name=row["room_name"],
        title=row["title"],
        description=row["description"],
        status=models.LivestreamStatus(row["status"]),
        created_by=row["created_by"],
        max_participants=row["max_participants"],
        room_capacity=row["room_capacity"],
        empty_timeout_s=row["empty_timeout_s"],
        metadata=row["metadata"],
        create_time=row["create_time"],
        update_time=row["update_time"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        viewer_count=row["viewer_count"],
        peak_viewer_count=row["peak_viewer_count"],
        unique_viewer_count=row["unique_viewer_count"],
        livekit_room_sid=row["livekit_room_sid"],
        last_event_sequence=row["last_event_sequence"],
    )


class PgLivestreamRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def _one(self, sql: str, *args: Any) -> models.Livestream | None:
        row = await self._conn.fetchrow(sql, *args)
        return to_livestream(row) if row is not None else None

    async def insert(
        self, *, livestream_id: str, new: models.NewLivestream, created_by: str, room_capacity: int
    ) -> models.Livestream:
        try:
            row = await self._conn.fetchrow(
                _INSERT,
                livestream_id,
                new.room_name,
                new.title,
                new.description,
                created_by,
                new.max_participants,
                room_capacity,
                new.empty_timeout_s,
                new.metadata,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "livestreams_active_room_name_key":
                raise errors.RoomNameTakenError(new.room_name) from exc
            raise
        assert row is not None
        return to_livestream(row)

    async def try_insert_many(
        self, rows: Sequence[PendingLivestream]
    ) -> dict[str, models.Livestream]:
        """SCHEDULED livestreams inserted in one statement, by id; one left out has a room name
        an active livestream (or an earlier row of the batch) holds, and nothing was written for
        it."""
        inserted = await self._conn.fetch(
            _INSERT_MANY,
            [r.livestream_id for r in rows],
            [r.new.room_name for r in rows],
            [r.new.title for r in rows],
            [r.new.description for r in rows],
            [r.created_by for r in rows],
            [r.new.max_participants for r in rows],
            [r.room_capacity for r in rows],
            [r.new.empty_timeout_s for r in rows],
            [json.dumps(r.new.metadata) for r in rows],
        )
        return {row["id"]: to_livestream(row) for row in inserted}

    async def get(self, livestream_id: str, *, lock: bool = False) -> models.Livestream | None:
        return await self._one(_GET_LOCKED if lock else _GET, livestream_id)

    async def list_page(
        self,
        *,
        status: models.LivestreamStatus | None,
        created_by: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[models.Livestream]:
        at, last_id = after if after is not None else (None, None)
        rows = await self._conn.fetch(_LIST, status, created_by, at, last_id, limit)
        return [to_livestream(r) for r in rows]

    async def mark_live(self, livestream_id: str, *, room_sid: str) -> models.Livestream | None:
        return await self._one(_MARK_LIVE, livestream_id, room_sid or None)

    async def try_mark_live_many(
        self, rooms: Sequence[tuple[str, str]]
    ) -> dict[str, models.Livestream]:
        """(livestream id, room sid) pairs: those marked LIVE, by id. One left out was not
        SCHEDULED or was held by another transaction; nothing was written for it."""
        rows = await self._conn.fetch(
            _MARK_LIVE_MANY, [i for i, _ in rooms], [sid or None for _, sid in rooms]
        )
        return {row["id"]: to_livestream(row) for row in rows}

    async def mark_error(self, livestream_id: str) -> models.Livestream | None:
        return await self._one(_MARK_ERROR, livestream_id)

    async def end(self, livestream_id: str) -> bool:
        # Callers run this inside their transaction, so SET LOCAL lasts until its end only.
        await self._conn.execute(END_TIMEOUT)
        return bool(await self._conn.fetchval(_END, livestream_id, timeout=END_TIMEOUT_S))

    async def list_live(self, *, after_id: str | None, limit: int) -> list[models.Livestream]:
        return [to_livestream(r) for r in await self._conn.fetch(_LIST_LIVE, after_id, limit)]

    async def list_stuck_scheduled(self, *, older_than_s: int) -> list[models.Livestream]:
        rows = await self._conn.fetch(_LIST_STUCK_SCHEDULED, float(older_than_s))
        return [to_livestream(r) for r in rows]

    async def update(
        self, livestream_id: str, changes: models.LivestreamChanges
    ) -> models.Livestream | None:
        return await self._one(
            _UPDATE,
            livestream_id,
            changes.title,
            changes.description,
            changes.metadata,
            changes.max_participants,
            changes.empty_timeout_s,
        )
