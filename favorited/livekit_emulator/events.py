"""Domain events the room state emits; the webhook sender and tests subscribe to them."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .ids import SidPrefix, new_sid

if TYPE_CHECKING:
    from livekit.protocol import models


class RoomEventKind(enum.StrEnum):
    """Names match LiveKit's webhook ``event`` values."""

    ROOM_STARTED = "room_started"
    ROOM_FINISHED = "room_finished"
    PARTICIPANT_JOINED = "participant_joined"
    PARTICIPANT_LEFT = "participant_left"
    # Sent instead of joined/left for a participant that never became ACTIVE.
    PARTICIPANT_CONNECTION_ABORTED = "participant_connection_aborted"


@dataclass(frozen=True, slots=True)
class RoomEvent:
    """Something that happened to a room; ``room``/``participant`` are private snapshots."""

    kind: RoomEventKind
    room: models.Room
    created_at: int
    participant: models.ParticipantInfo | None = None
    # Generated once per event, as LiveKit does, so every delivery attempt shares it.
    id: str = field(default_factory=lambda: new_sid(SidPrefix.EVENT))


RoomEventListener = Callable[[RoomEvent], None]
"""Called synchronously, inside the state change; must not block or raise."""
