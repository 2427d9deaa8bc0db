"""PgEventLog: reads of the participant event log and the snapshots that start a watch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from favorited.domain import models
from favorited.store.database import translate_errors
from favorited.store.livestreams import COLUMNS as LIVESTREAM_COLUMNS
from favorited.store.livestreams import to_livestream
from favorited.store.participants import PgParticipantRepository

_EVENTS_AFTER = """
SELECT sequence, type::text, participant, details, create_time FROM participant_events
WHERE livestream_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3
"""
_FIRST_SEQUENCE = "SELECT min(sequence) FROM participant_events WHERE livestream_id = $1"
_LIVESTREAM = f"SELECT {LIVESTREAM_COLUMNS} FROM livestreams WHERE id = $1"


@dataclass(frozen=True, slots=True)
class ParticipantChange:
    livestream_id: str
    sequence: int
    type: str  # JOINED | LEFT | CONNECTED | DISCONNECTED | LIVESTREAM_ENDED
    participant: models.Participant | None  # None for LIVESTREAM_ENDED
    details: dict[str, Any]
    create_time: datetime


@dataclass(frozen=True, slots=True)
class Snapshot:
    livestream: models.Livestream
    participants: list[models.Participant]
    sequence: int


def _from_json(row: dict[str, Any]) -> models.Participant:
    """A participant from its to_jsonb() image in the event log."""

    def at(key: str) -> datetime | None:
        value = row.get(key)
        return datetime.fromisoformat(value) if value else None

    join_time = at("join_time")
    assert join_time is not None
    return models.Participant(
        id=row["id"],
        livestream_id=row["livestream_id"],
        user_id=row["user_id"],
        display_name=row["display_name"],
        role=models.Role(row["role"]),
        status=models.ParticipantStatus(row["status"]),
        metadata=row.get("metadata") or {},
        join_time=join_time,
        leave_time=at("leave_time"),
        livekit_participant_sid=row.get("livekit_participant_sid"),
        livekit_room_sid=row.get("livekit_room_sid"),
        connected=bool(row.get("connected")),
    )


class PgEventLog:
    def __init__(self, pool: asyncpg.Pool[Any], *, timeout_s: float) -> None:
        self._pool = pool
        self._timeout_s = timeout_s

    async def livestream(self, livestream_id: str) -> models.Livestream | None:
        with translate_errors():
            row = await self._pool.fetchrow(_LIVESTREAM, livestream_id)
        return to_livestream(row) if row is not None else None

    async def snapshot(self, livestream_id: str) -> Snapshot | None:
        """The livestream, its JOINED participants and the sequence they are consistent with."""
        # One REPEATABLE READ snapshot: the rows and last_event_sequence agree exactly.
        with translate_errors():
            return await self._snapshot(livestream_id)

    async def _snapshot(self, livestream_id: str) -> Snapshot | None:
        async with (
            self._pool.acquire(timeout=self._timeout_s) as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            row = await conn.fetchrow(_LIVESTREAM, livestream_id)
            if row is None:
                return None
            livestream = to_livestream(row)
            # An ended livestream has no JOINED participant (its end left them all, and it takes
            # no joins), while the roster key still holds every one its end left (0011): not
            # read for nothing.
            participants = (
                []
                if livestream.status is models.LivestreamStatus.ENDED
                else await PgParticipantRepository(conn).list_joined(livestream_id)
            )
        return Snapshot(
            livestream=livestream,
            participants=participants,
            sequence=row["last_event_sequence"],
        )

    async def after(self, livestream_id: str, sequence: int, limit: int) -> list[ParticipantChange]:
        with translate_errors():
            rows = await self._pool.fetch(_EVENTS_AFTER, livestream_id, sequence, limit)
        return [
            ParticipantChange(
                livestream_id=livestream_id,
                sequence=r["sequence"],
                type=r["type"],
                participant=_from_json(r["participant"]) if r["participant"] is not None else None,
                details=r["details"],
                create_time=r["create_time"],
            )
            for r in rows
        ]

    async def first_sequence(self, livestream_id: str) -> int | None:
        with translate_errors():
            value = await self._pool.fetchval(_FIRST_SEQUENCE, livestream_id)
        return int(value) if value is not None else None
