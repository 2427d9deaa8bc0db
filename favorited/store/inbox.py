"""PgInboxRepository: ids of applied webhook events (the consumer's exactly-once record)."""

from __future__ import annotations

from favorited.store.pool import Connection

# A concurrent duplicate blocks on the primary key until the first transaction ends, then sees
# the conflict (if it committed) or claims the id itself (if it rolled back).
_CLAIM = """
INSERT INTO webhook_inbox (event_id, event, outcome, expire_time)
VALUES ($1, $2, 'pending', clock_timestamp() + make_interval(secs => $3))
ON CONFLICT (event_id) DO NOTHING
RETURNING true
"""
_OUTCOME = "UPDATE webhook_inbox SET outcome = $2 WHERE event_id = $1"
_PURGE = """
DELETE FROM webhook_inbox WHERE event_id IN (
    SELECT event_id FROM webhook_inbox WHERE expire_time < clock_timestamp() LIMIT $1
)
"""


class PgInboxRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def claim(self, event_id: str, event: str, *, ttl_s: int) -> bool:
        return bool(await self._conn.fetchval(_CLAIM, event_id, event, float(ttl_s)))

    async def record_outcome(self, event_id: str, outcome: str) -> None:
        await self._conn.execute(_OUTCOME, event_id, outcome)

    async def purge_expired(self, batch: int) -> int:
        """Delete at most `batch` expired ids; short statements keep locks and WAL bursts small."""
        status = await self._conn.execute(_PURGE, batch)
        return int(status.rsplit(" ", 1)[-1])
