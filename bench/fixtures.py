"""Bulk state written straight into PostgreSQL: livestreams and participants by the thousand.

Set-based INSERTs go through the same triggers as the service's own writes (event log, live
figures), so the state is what the service would have built, only faster to make.
"""

from __future__ import annotations

from dataclasses import dataclass

from favorited.store.pool import Connection

HOST_USER = "bench-host"

_LIVESTREAMS = """
INSERT INTO livestreams (id, room_name, title, created_by, max_participants, room_capacity,
                         empty_timeout_s, status, start_time, livekit_room_sid)
SELECT gen_random_uuid(), $1 || '-' || g, 'Bench livestream', $2, $3, $3 + 1, 600, 'LIVE',
       clock_timestamp(), 'RM_' || $1 || '_' || g
FROM generate_series(1, $4) g
RETURNING id::text, room_name, livekit_room_sid
"""
_PARTICIPANTS = """
INSERT INTO participants (id, livestream_id, user_id, display_name, role, connected,
                          livekit_participant_sid, livekit_room_sid)
SELECT gen_random_uuid(), $1, $2 || g, 'Viewer ' || g, 'VIEWER', $5,
       CASE WHEN $5 THEN 'PA_' || $2 || g END, CASE WHEN $5 THEN $6 END
FROM generate_series($3::int, $4::int) g
"""
_BIND_SIDS = """
UPDATE participants SET connected = true, livekit_participant_sid = 'PA_' || user_id,
                        livekit_room_sid = $2
WHERE livestream_id = $1 AND user_id = ANY($3::text[])
"""
_CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class Stream:
    id: str
    room_name: str
    room_sid: str


async def live_livestreams(
    conn: Connection, count: int, *, prefix: str, max_participants: int = 10_000
) -> list[Stream]:
    """`count` LIVE livestreams with room sids (`prefix` must be lowercase [a-z0-9_-])."""
    rows = await conn.fetch(_LIVESTREAMS, prefix, HOST_USER, max_participants, count)
    return [Stream(r["id"], r["room_name"], r["livekit_room_sid"]) for r in rows]


async def joined_participants(
    conn: Connection,
    stream: Stream,
    count: int,
    *,
    user_prefix: str,
    connected: bool,
) -> None:
    """`count` JOINED viewers, in statements of at most 20,000 rows (bounded trigger arrays)."""
    for start in range(1, count + 1, _CHUNK):
        end = min(start + _CHUNK - 1, count)
        await conn.execute(
            _PARTICIPANTS, stream.id, user_prefix, start, end, connected, stream.room_sid
        )


async def bind_sids(conn: Connection, stream: Stream, count: int, *, user_prefix: str) -> None:
    """Mark `joined_participants`' (unconnected) viewers connected, with their LiveKit sids, in
    a second pass, as participant_joined webhooks do after JoinLivestream: the rows grow and
    their first versions stay on the pages, as in production (migrations/0011 says why that
    matters to the end)."""
    for start in range(1, count + 1, _CHUNK):
        users = [f"{user_prefix}{g}" for g in range(start, min(start + _CHUNK - 1, count) + 1)]
        await conn.execute(_BIND_SIDS, stream.id, stream.room_sid, users)
