"""Reading what the consumer committed: webhook_inbox rows, found by their event-id prefix.

`apply_time` is the clock_timestamp() of the inbox claim, the first statement of the event's
transaction; COMMIT follows after the effect statements (a few milliseconds). Latencies measured
against it are therefore short of the true commit time by that much, never longer.
"""

from __future__ import annotations

from typing import Any

import asyncpg

_COUNT = "SELECT count(*) FROM webhook_inbox WHERE starts_with(event_id, $1)"
_TIMES = """
SELECT event_id, extract(epoch FROM apply_time)::float8 AS at, outcome FROM webhook_inbox
WHERE starts_with(event_id, $1)
"""


async def applied(db: asyncpg.Pool[Any], prefix: str) -> int:
    return int(await db.fetchval(_COUNT, prefix))


async def apply_times(db: asyncpg.Pool[Any], prefix: str) -> dict[str, tuple[float, str]]:
    """event id → (apply time as epoch seconds, outcome)."""
    rows = await db.fetch(_TIMES, prefix)
    return {r["event_id"]: (r["at"], r["outcome"]) for r in rows}
