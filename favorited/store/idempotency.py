"""PgIdempotencyRepository: request_id keys (AIP-155)."""

from __future__ import annotations

from favorited.store.pool import Connection

# An expired key is overwritten in place; a live one is kept and reported. Concurrent claims of
# one key wait on its primary key, so the loser sees the winner's committed binding.
_CLAIM = """
INSERT INTO idempotency_keys (caller, method, request_id, resource_id, expire_time)
VALUES ($1, $2, $3, $4, clock_timestamp() + make_interval(secs => $5))
ON CONFLICT (caller, method, request_id) DO UPDATE
    SET resource_id = EXCLUDED.resource_id, expire_time = EXCLUDED.expire_time,
        create_time = clock_timestamp()
    WHERE idempotency_keys.expire_time <= clock_timestamp()
RETURNING resource_id::text
"""
_OWNER = """
SELECT resource_id::text FROM idempotency_keys WHERE caller = $1 AND method = $2 AND request_id = $3
"""


class PgIdempotencyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def claim(
        self, *, caller: str, method: str, request_id: str, resource_id: str, ttl_s: int
    ) -> str:
        claimed = await self._conn.fetchval(
            _CLAIM, caller, method, request_id, resource_id, float(ttl_s)
        )
        if claimed is not None:
            return str(claimed)
        owner = await self._conn.fetchval(_OWNER, caller, method, request_id)
        return str(owner)
