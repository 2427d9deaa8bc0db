"""The mutable state of one open room."""

from __future__ import annotations

from dataclasses import dataclass, field

from livekit.protocol import models

from .participants import is_dependent


@dataclass(slots=True)
class ActiveRoom:
    """One open room and who is in it; the registry owns it, nothing else mutates it."""

    info: models.Room
    # Keyed by identity: LiveKit allows one session per identity per room.
    participants: dict[str, models.ParticipantInfo] = field(default_factory=dict)
    # Whole epoch seconds, as LiveKit's CloseIfEmpty compares them; dependent participants
    # (agents, egress) never set them, because they neither open nor keep a room open.
    first_joined_at: int | None = None
    last_left_at: int | None = None

    def counted(self) -> int:
        return sum(not is_dependent(p) for p in self.participants.values())

    def snapshot(self) -> models.Room:
        room = models.Room()
        room.CopyFrom(self.info)
        room.num_participants = self.counted()
        return room

    def expired(self, now_s: int) -> bool:
        """``CloseIfEmpty``: empty_timeout before anyone joined, departure_timeout after."""
        if self.counted():
            return False
        if self.first_joined_at is not None and self.last_left_at is not None:
            return now_s - self.last_left_at >= self.info.departure_timeout
        return now_s - self.info.creation_time >= self.info.empty_timeout
