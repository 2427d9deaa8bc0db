"""Apply LiveKit webhook events to our state, exactly once and independent of delivery order.

Every effect runs in one transaction together with the event's inbox row, so a redelivered event
is recognised and changes nothing. Sessions are keyed by LiveKit participant sid: a session that
ended is remembered (a late `participant_joined` cannot resurrect it) and a participant is bound to
its newest session (an old sid's late `participant_left` cannot end a newer one). Every effect
locks the livestream row first, like the RPCs do, so effects of one livestream serialise.

The rules run inside PostgreSQL (`apply_webhook_events`, migrations/0004), one call per batch:
per-statement round trips were most of the consumer's cost. This module owns the event shape and
the transaction; the store owns the SQL.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from favorited.domain import models, ports


class EventKind(enum.StrEnum):
    ROOM_STARTED = "room_started"
    ROOM_FINISHED = "room_finished"
    PARTICIPANT_JOINED = "participant_joined"
    PARTICIPANT_LEFT = "participant_left"
    PARTICIPANT_CONNECTION_ABORTED = "participant_connection_aborted"


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"  # valid, but about a room or session we no longer (or never) track
    UNHANDLED = "unhandled"  # an event type we do not act on (tracks, egress, …)


@dataclass(frozen=True, slots=True)
class LiveKitEvent:
    """The fields of a LiveKit WebhookEvent that our effects use."""

    event_id: str
    event: str
    created_at: datetime | None
    room_sid: str = ""
    room_name: str = ""
    participant_sid: str = ""
    identity: str = ""
    name: str = ""
    metadata: models.JsonObject = field(default_factory=dict)
    joined_at_ms: int = 0
    can_publish: bool = False


class LiveKitEventService:
    def __init__(self, *, db: ports.Database, inbox_retention_s: int) -> None:
        self._db = db
        self._retention_s = inbox_retention_s

    async def apply(self, event: LiveKitEvent) -> Outcome:
        return (await self.apply_many([event]))[0]

    async def apply_many(self, events: list[LiveKitEvent]) -> list[Outcome]:
        """Apply events atomically (one commit for all), each with its inbox row.

        A duplicate within the batch is recognised like any other: its id is claimed already.
        """
        # The batch is one statement, atomic by itself: no BEGIN/COMMIT round trips.
        async with self._db.autocommit() as tx:
            return await tx.webhook_effects.apply(events, inbox_ttl_s=self._retention_s)
