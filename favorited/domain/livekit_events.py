"""Apply LiveKit webhook events to our state, exactly once and independent of delivery order.

Every effect runs in one transaction together with the event's inbox row, so a redelivered event
is recognised and changes nothing. Sessions are keyed by LiveKit participant sid: a session that
ended is remembered (a late `participant_joined` cannot resurrect it) and a participant is bound to
its newest session (an old sid's late `participant_left` cannot end a newer one). Every effect
locks the livestream row first, like the RPCs do, so effects of one livestream serialise.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from favorited.domain import models, ports

log = logging.getLogger(__name__)


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
        """Apply events in one transaction (one commit for all), each with its inbox row.

        A duplicate within the batch is recognised like any other: its id is claimed already.
        """
        outcomes: list[Outcome] = []
        async with self._db.transaction() as tx:
            for event in events:
                if not await tx.inbox.claim(event.event_id, event.event, ttl_s=self._retention_s):
                    outcomes.append(Outcome.DUPLICATE)
                    continue
                outcome = await self._effect(tx, event)
                await tx.inbox.record_outcome(event.event_id, outcome.value)
                outcomes.append(outcome)
        return outcomes

    async def _effect(self, tx: ports.UnitOfWork, event: LiveKitEvent) -> Outcome:
        match event.event:
            case EventKind.ROOM_STARTED:
                found = await tx.livestreams.record_room_sid(event.room_name, event.room_sid)
                return Outcome.APPLIED if found else Outcome.IGNORED
            case EventKind.ROOM_FINISHED:
                ended = await tx.livestreams.end_by_room_sid(event.room_sid)
                return Outcome.APPLIED if ended else Outcome.IGNORED
            case EventKind.PARTICIPANT_JOINED:
                return await self._joined(tx, event)
            case EventKind.PARTICIPANT_LEFT | EventKind.PARTICIPANT_CONNECTION_ABORTED:
                return await self._left(tx, event)
            case _:
                return Outcome.UNHANDLED

    async def _joined(self, tx: ports.UnitOfWork, event: LiveKitEvent) -> Outcome:
        livestream = await tx.livestreams.get_by_room_sid(event.room_sid, lock=True)
        if livestream is None:
            return Outcome.IGNORED
        if livestream.status is not models.LivestreamStatus.LIVE:
            # The room finished before this (reordered) event was applied. Record what in-order
            # delivery would have left behind: the viewer counted, and a LEFT participant.
            await self._record_late_session(tx, livestream, event)
            return Outcome.IGNORED
        ended = await tx.sessions.record_joined(
            sid=event.participant_sid,
            livestream_id=livestream.id,
            identity=event.identity,
            joined_at_ms=event.joined_at_ms,
        )
        current = await tx.participants.find_joined(livestream.id, event.identity)
        if current is None:
            # A valid token holder connected without a JOINED row (never called Join, or left
            # and came back with the same token): LiveKit admitted them, so record them.
            await tx.participants.insert_from_session(
                **self._new_participant(livestream, event), left=False
            )
        elif current.livekit_participant_sid not in (None, event.participant_sid):
            bound_at = await tx.sessions.joined_at_ms(current.livekit_participant_sid)
            if bound_at is not None and bound_at > event.joined_at_ms:
                return Outcome.IGNORED  # an older session, reported late
            await tx.participants.bind_session(
                current.id, sid=event.participant_sid, room_sid=event.room_sid
            )
        else:
            await tx.participants.bind_session(
                current.id, sid=event.participant_sid, room_sid=event.room_sid
            )
        if ended:
            # This session's left/aborted was applied first: apply joined-then-left, as in order.
            await tx.participants.end_session(event.participant_sid)
        return Outcome.APPLIED

    async def _record_late_session(
        self, tx: ports.UnitOfWork, livestream: models.Livestream, event: LiveKitEvent
    ) -> None:
        if not _is_host(livestream, event):
            await tx.livestreams.add_unique_viewer(livestream.id, event.identity)
        if await tx.participants.latest(livestream.id, event.identity) is None:
            await tx.participants.insert_from_session(
                **self._new_participant(livestream, event), left=True
            )

    @staticmethod
    def _new_participant(livestream: models.Livestream, event: LiveKitEvent) -> dict[str, Any]:
        return {
            "livestream_id": livestream.id,
            "user_id": event.identity,
            "display_name": (event.name or event.identity)[:128],
            "role": models.Role.HOST if _is_host(livestream, event) else models.Role.VIEWER,
            "metadata": event.metadata,
            "sid": event.participant_sid,
            "room_sid": event.room_sid,
        }

    async def _left(self, tx: ports.UnitOfWork, event: LiveKitEvent) -> Outcome:
        livestream = await tx.livestreams.get_by_room_sid(event.room_sid, lock=True)
        if livestream is None:
            return Outcome.IGNORED
        await tx.sessions.record_ended(
            sid=event.participant_sid, livestream_id=livestream.id, identity=event.identity
        )
        left = await tx.participants.end_session(event.participant_sid)
        return Outcome.APPLIED if left else Outcome.IGNORED


def _is_host(livestream: models.Livestream, event: LiveKitEvent) -> bool:
    return event.identity == livestream.created_by and event.can_publish
