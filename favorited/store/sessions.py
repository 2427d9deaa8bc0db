"""PgSessionRepository: LiveKit sessions (participant sids) the consumer has seen."""

from __future__ import annotations

from favorited.store.pool import Connection

_RECORD_JOINED = """
INSERT INTO livekit_sessions (sid, livestream_id, identity, joined_at_ms)
VALUES ($1, $2, $3, $4)
ON CONFLICT (sid) DO UPDATE
    SET joined_at_ms = COALESCE(livekit_sessions.joined_at_ms, EXCLUDED.joined_at_ms),
        update_time = clock_timestamp()
RETURNING ended
"""
_RECORD_ENDED = """
INSERT INTO livekit_sessions (sid, livestream_id, identity, ended) VALUES ($1, $2, $3, true)
ON CONFLICT (sid) DO UPDATE SET ended = true, update_time = clock_timestamp()
"""
_JOINED_AT = "SELECT joined_at_ms FROM livekit_sessions WHERE sid = $1"


class PgSessionRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def record_joined(
        self, *, sid: str, livestream_id: str, identity: str, joined_at_ms: int
    ) -> bool:
        ended = await self._conn.fetchval(
            _RECORD_JOINED, sid, livestream_id, identity, joined_at_ms
        )
        return bool(ended)

    async def record_ended(self, *, sid: str, livestream_id: str, identity: str) -> None:
        await self._conn.execute(_RECORD_ENDED, sid, livestream_id, identity)

    async def joined_at_ms(self, sid: str) -> int | None:
        value = await self._conn.fetchval(_JOINED_AT, sid)
        return int(value) if value is not None else None
