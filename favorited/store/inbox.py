"""PgInboxRepository: ids of applied webhook events (the consumer's exactly-once record).

Events are claimed and recorded by apply_webhook_events (store/webhook_effects.py); this is the
expiry of old ids.
"""

from __future__ import annotations

from favorited.store.pool import Connection

_PURGE = """
DELETE FROM webhook_inbox WHERE event_id IN (
    SELECT event_id FROM webhook_inbox WHERE expire_time < clock_timestamp() LIMIT $1
)
"""


class PgInboxRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def purge_expired(self, batch: int) -> int:
        """Delete at most `batch` expired ids; short statements keep locks and WAL bursts small."""
        status = await self._conn.execute(_PURGE, batch)
        return int(status.rsplit(" ", 1)[-1])
