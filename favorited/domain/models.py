"""Domain values: frozen dataclasses and enums, free of transport and storage types."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

JsonObject = dict[str, Any]
T = TypeVar("T")


class LivestreamStatus(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    LIVE = "LIVE"
    ENDED = "ENDED"
    ERROR = "ERROR"

    @property
    def terminal(self) -> bool:
        return self in (LivestreamStatus.ENDED, LivestreamStatus.ERROR)


class Role(enum.StrEnum):
    HOST = "HOST"
    VIEWER = "VIEWER"


class ParticipantStatus(enum.StrEnum):
    JOINED = "JOINED"
    LEFT = "LEFT"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, from the verified bearer token only (never from request bodies)."""

    user_id: str
    is_admin: bool = False

    def may_manage(self, livestream: Livestream) -> bool:
        return self.is_admin or livestream.created_by == self.user_id


@dataclass(frozen=True, slots=True)
class Livestream:
    id: str
    room_name: str
    title: str
    description: str
    status: LivestreamStatus
    created_by: str
    max_participants: int
    room_capacity: int
    empty_timeout_s: int
    metadata: JsonObject
    create_time: datetime
    update_time: datetime
    start_time: datetime | None
    end_time: datetime | None
    viewer_count: int
    peak_viewer_count: int
    unique_viewer_count: int
    livekit_room_sid: str | None
    last_event_sequence: int  # the latest WatchParticipants sequence of this livestream


@dataclass(frozen=True, slots=True)
class Participant:
    id: str
    livestream_id: str
    user_id: str
    display_name: str
    role: Role
    status: ParticipantStatus
    metadata: JsonObject
    join_time: datetime
    leave_time: datetime | None
    livekit_participant_sid: str | None
    livekit_room_sid: str | None
    connected: bool


@dataclass(frozen=True, slots=True)
class NewLivestream:
    """A validated CreateLivestream input."""

    room_name: str
    title: str
    description: str
    max_participants: int
    empty_timeout_s: int
    metadata: JsonObject


@dataclass(frozen=True, slots=True)
class LivestreamChanges:
    """A validated UpdateLivestream input: only the fields that are not None change."""

    title: str | None = None
    description: str | None = None
    metadata: JsonObject | None = None
    max_participants: int | None = None
    empty_timeout_s: int | None = None

    def is_empty(self) -> bool:
        return all(
            v is None
            for v in (
                self.title,
                self.description,
                self.metadata,
                self.max_participants,
                self.empty_timeout_s,
            )
        )


@dataclass(frozen=True, slots=True)
class JoinGrant:
    """What JoinLivestream returns besides the participant."""

    participant: Participant
    token: str
    url: str
    expire_time: datetime


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str


class JoinOutcome(enum.StrEnum):
    """What the one join statement decided (migrations/0005, `join_livestream`)."""

    JOINED = "JOINED"
    REPLAYED = "REPLAYED"  # a live request_id binding: its participant, still to be checked
    NOT_FOUND = "NOT_FOUND"
    NOT_LIVE = "NOT_LIVE"
    HOST_RESERVED = "HOST_RESERVED"
    ALREADY_JOINED = "ALREADY_JOINED"
    FULL = "FULL"


@dataclass(frozen=True, slots=True)
class JoinResult:
    outcome: JoinOutcome
    livestream_status: LivestreamStatus | None  # None when the livestream does not exist
    room_name: str | None
    max_participants: int | None
    participant: Participant | None  # the one joined or replayed
