"""Decode a queued webhook body (LiveKit's JSON, verified by the shim) into a domain event."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from google.protobuf import json_format
from livekit import api

from favorited.domain.livekit_events import LiveKitEvent


class UndecodableMessageError(Exception):
    """The body is not a LiveKit webhook event; retrying cannot help."""


def decode(body: bytes) -> LiveKitEvent:
    try:
        event = json_format.Parse(
            body.decode("utf-8"), api.WebhookEvent(), ignore_unknown_fields=True
        )
    except (UnicodeDecodeError, json_format.ParseError) as exc:
        raise UndecodableMessageError(str(exc)) from exc
    if not event.id:
        raise UndecodableMessageError("event has no id")
    participant = event.participant
    return LiveKitEvent(
        event_id=event.id,
        event=event.event,
        created_at=datetime.fromtimestamp(event.created_at, UTC) if event.created_at else None,
        room_sid=event.room.sid,
        room_name=event.room.name,
        participant_sid=participant.sid,
        identity=participant.identity,
        name=participant.name,
        metadata=_metadata(participant.metadata),
        joined_at_ms=participant.joined_at_ms or participant.joined_at * 1000,
        can_publish=participant.permission.can_publish,
    )


def _metadata(raw: str) -> dict[str, object]:
    # Participant metadata is free text in LiveKit; keep it only when it is a JSON object.
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) and "\\u0000" not in raw else {}
