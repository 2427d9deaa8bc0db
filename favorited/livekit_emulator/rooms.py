"""In-memory rooms and participants, with LiveKit's RoomService semantics."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from livekit.protocol import models

from .active_room import ActiveRoom
from .errors import EmulatorJoinError, JoinFailure, RoomServiceError, TwirpCode
from .events import RoomEvent, RoomEventKind
from .ids import SidPrefix, new_sid
from .limits import check_attributes, check_metadata, check_name, check_room_name
from .participants import copy_of, is_dependent, participant_from_claims

if TYPE_CHECKING:
    from livekit.api.access_token import Claims

Clock = Callable[[], float]
"""Returns the current time as epoch seconds."""

DEFAULT_EMPTY_TIMEOUT_S = 300
DEFAULT_DEPARTURE_TIMEOUT_S = 20

ROOM_NOT_FOUND = "requested room does not exist"
PARTICIPANT_NOT_FOUND = "participant does not exist"


class RoomRegistry:
    """Every active room on the emulated node. Not thread-safe; use from one event loop."""

    def __init__(self, *, clock: Clock, on_event: Callable[[RoomEvent], None]) -> None:
        self._clock = clock
        self._on_event = on_event
        self._rooms: dict[str, ActiveRoom] = {}

    def create_room(
        self,
        name: str,
        *,
        empty_timeout_s: int = 0,
        departure_timeout_s: int = 0,
        max_participants: int = 0,
        metadata: str = "",
    ) -> models.Room:
        """Get-or-create: an existing room comes back unchanged, whatever the arguments."""
        check_room_name(name)
        check_metadata(metadata)
        existing = self._rooms.get(name)
        if existing is not None:
            return existing.snapshot()
        now = self._clock()
        active = ActiveRoom(
            info=models.Room(
                sid=new_sid(SidPrefix.ROOM),
                name=name,
                # 0 means "server default", never "immediately".
                empty_timeout=empty_timeout_s or DEFAULT_EMPTY_TIMEOUT_S,
                departure_timeout=departure_timeout_s or DEFAULT_DEPARTURE_TIMEOUT_S,
                max_participants=max_participants,
                creation_time=int(now),
                creation_time_ms=int(now * 1000),
                metadata=metadata,
            )
        )
        self._rooms[name] = active
        self._emit(RoomEventKind.ROOM_STARTED, active)
        return active.snapshot()

    def delete_room(self, name: str) -> None:
        """Disconnect everyone (ROOM_DELETED), then close the room."""
        self._close(self._get(name), models.DisconnectReason.ROOM_DELETED)

    def close_expired_rooms(self) -> list[str]:
        """Close every room past its empty or departure timeout, as LiveKit's 1 s check does.

        Returns:
            The names of the rooms closed, in creation order.
        """
        now_s = int(self._clock())
        expired = [active for active in self._rooms.values() if active.expired(now_s)]
        for active in expired:
            # Only dependent participants (agents, egress) can still be inside.
            self._close(active, models.DisconnectReason.ROOM_CLOSED)
        return [active.info.name for active in expired]

    def list_rooms(self, names: Sequence[str] = ()) -> list[models.Room]:
        """All rooms, or the named ones in the order asked; unknown names are skipped."""
        if not names:
            return [active.snapshot() for active in self._rooms.values()]
        return [self._rooms[n].snapshot() for n in names if n in self._rooms]

    def snapshot(self) -> dict[str, models.Room]:
        """Room name → detached copy of the room."""
        return {name: active.snapshot() for name, active in self._rooms.items()}

    def update_room_metadata(self, name: str, metadata: str) -> models.Room:
        """Replace the room's metadata."""
        check_metadata(metadata)
        active = self._get(name)
        active.info.metadata = metadata
        return active.snapshot()

    def list_participants(self, room: str) -> list[models.ParticipantInfo]:
        """Participants in join order; an unknown room has none (no error, as in LiveKit)."""
        active = self._rooms.get(room)
        if active is None:
            return []
        return [copy_of(p) for p in active.participants.values()]

    def get_participant(self, room: str, identity: str) -> models.ParticipantInfo:
        """One participant, or not_found."""
        return copy_of(self._participant(room, identity))

    def remove_participant(
        self,
        room: str,
        identity: str,
        reason: models.DisconnectReason = models.DisconnectReason.PARTICIPANT_REMOVED,
    ) -> models.ParticipantInfo:
        """Disconnect a participant; returns its final (DISCONNECTED) info."""
        self._participant(room, identity)
        return self._remove(self._rooms[room], identity, reason)

    def update_participant(
        self,
        room: str,
        identity: str,
        *,
        name: str = "",
        metadata: str = "",
        permission: models.ParticipantPermission | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> models.ParticipantInfo:
        """Empty name/metadata mean "unchanged"; an attribute set to "" is deleted."""
        check_name(name)
        check_metadata(metadata)
        attributes = attributes or {}
        check_attributes(attributes)
        participant = self._participant(room, identity)
        if name:
            participant.name = name
        if metadata:
            participant.metadata = metadata
        if permission is not None:
            participant.permission.CopyFrom(permission)
        for key, value in attributes.items():
            if value:
                participant.attributes[key] = value
            elif key in participant.attributes:
                del participant.attributes[key]
        return copy_of(participant)

    def join(self, claims: Claims) -> models.ParticipantInfo:
        """A client holding a verified join token connects and becomes ACTIVE.

        Raises:
            EmulatorJoinError: room missing or full.
        """
        active, participant = self._admit(claims)
        active.participants[participant.identity] = participant
        if active.first_joined_at is None and not is_dependent(participant):
            active.first_joined_at = participant.joined_at
        self._emit(RoomEventKind.PARTICIPANT_JOINED, active, participant)
        return copy_of(participant)

    def abort(
        self,
        claims: Claims,
        reason: models.DisconnectReason = models.DisconnectReason.JOIN_FAILURE,
    ) -> models.ParticipantInfo:
        """A client signals in but never becomes ACTIVE (e.g. ICE never connects).

        LiveKit then sends ``participant_connection_aborted`` instead of joined/left. The
        attempt still counts as a join and a departure for the room's timeouts, since LiveKit
        records both when the session is added and removed.

        Raises:
            EmulatorJoinError: room missing or full.
        """
        active, participant = self._admit(claims)
        participant.state = models.ParticipantInfo.DISCONNECTED
        participant.disconnect_reason = reason
        if not is_dependent(participant):
            now_s = int(self._clock())
            if active.first_joined_at is None:
                active.first_joined_at = now_s
            active.last_left_at = now_s
        self._emit(RoomEventKind.PARTICIPANT_CONNECTION_ABORTED, active, participant)
        return copy_of(participant)

    def _admit(self, claims: Claims) -> tuple[ActiveRoom, models.ParticipantInfo]:
        room = claims.video.room if claims.video else ""
        active = self._rooms.get(room)
        if active is None:
            raise EmulatorJoinError(JoinFailure.ROOM_NOT_FOUND, ROOM_NOT_FOUND)
        participant = participant_from_claims(
            claims, sid=new_sid(SidPrefix.PARTICIPANT), now_s=self._clock()
        )
        # LiveKit evicts the previous session before the newcomer joins, so a reconnect
        # never trips the capacity check on its own old session.
        if participant.identity in active.participants:
            self._remove(active, participant.identity, models.DisconnectReason.DUPLICATE_IDENTITY)
        limit = active.info.max_participants
        if limit and not is_dependent(participant) and active.counted() >= limit:
            raise EmulatorJoinError(JoinFailure.ROOM_FULL, "room has exceeded its max participants")
        return active, participant

    def _get(self, name: str) -> ActiveRoom:
        active = self._rooms.get(name)
        if active is None:
            raise RoomServiceError(TwirpCode.NOT_FOUND, ROOM_NOT_FOUND)
        return active

    def _participant(self, room: str, identity: str) -> models.ParticipantInfo:
        active = self._rooms.get(room)
        participant = active.participants.get(identity) if active else None
        if participant is None:
            raise RoomServiceError(TwirpCode.NOT_FOUND, PARTICIPANT_NOT_FOUND)
        return participant

    def _remove(
        self,
        active: ActiveRoom,
        identity: str,
        reason: models.DisconnectReason,
    ) -> models.ParticipantInfo:
        participant = active.participants.pop(identity)
        participant.state = models.ParticipantInfo.DISCONNECTED
        participant.disconnect_reason = reason
        if not is_dependent(participant):
            active.last_left_at = int(self._clock())
        self._emit(RoomEventKind.PARTICIPANT_LEFT, active, participant)
        return copy_of(participant)

    def _close(self, active: ActiveRoom, reason: models.DisconnectReason) -> None:
        # participant_left for everyone still inside comes before room_finished, as in
        # LiveKit's Room.Close.
        for identity in list(active.participants):
            self._remove(active, identity, reason)
        del self._rooms[active.info.name]
        self._emit(RoomEventKind.ROOM_FINISHED, active)

    def _emit(
        self,
        kind: RoomEventKind,
        active: ActiveRoom,
        participant: models.ParticipantInfo | None = None,
    ) -> None:
        event = RoomEvent(
            kind=kind,
            room=active.snapshot(),
            created_at=int(self._clock()),
            participant=copy_of(participant) if participant is not None else None,
        )
        self._on_event(event)
