"""Ports: what the use cases need from the outside world, as Protocols.

`favorited.store` implements the repositories over asyncpg and `favorited.livekit` implements the
room gateway and token minter over livekit-api. The use cases see only these shapes.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from favorited.domain import models

if TYPE_CHECKING:
    from collections.abc import Sequence

    from favorited.domain.livekit_events import LiveKitEvent, Outcome


class LivestreamRepository(Protocol):
    async def insert(
        self, *, livestream_id: str, new: models.NewLivestream, created_by: str, room_capacity: int
    ) -> models.Livestream:
        """Insert a SCHEDULED livestream. Raises RoomNameTakenError."""
        ...

    async def get(self, livestream_id: str, *, lock: bool = False) -> models.Livestream | None: ...

    async def list_page(
        self,
        *,
        status: models.LivestreamStatus | None,
        created_by: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[models.Livestream]:
        """Newest first, strictly after the (create_time, id) keyset cursor."""
        ...

    async def mark_live(self, livestream_id: str, *, room_sid: str) -> models.Livestream | None:
        """SCHEDULED → LIVE; None when the livestream was no longer SCHEDULED."""
        ...

    async def mark_error(self, livestream_id: str) -> models.Livestream | None:
        """SCHEDULED → ERROR; None when the livestream was no longer SCHEDULED."""
        ...

    async def end(self, livestream_id: str) -> bool:
        """LIVE → ENDED and every JOINED participant LEFT, in one statement; False if not LIVE."""
        ...

    async def list_live(self, *, after_id: str | None, limit: int) -> list[models.Livestream]:
        """LIVE livestreams in id order, for reconciliation."""
        ...

    async def list_stuck_scheduled(self, *, older_than_s: int) -> list[models.Livestream]: ...

    async def update(
        self, livestream_id: str, changes: models.LivestreamChanges
    ) -> models.Livestream | None:
        """Apply changes unless terminal; None when the livestream is ENDED or ERROR."""
        ...


class ParticipantRepository(Protocol):
    async def insert(
        self,
        *,
        participant_id: str,
        livestream_id: str,
        user_id: str,
        display_name: str,
        role: models.Role,
        metadata: models.JsonObject,
    ) -> models.Participant:
        """Insert a JOINED participant. Raises ParticipantAlreadyJoinedError."""
        ...

    async def get(self, participant_id: str) -> models.Participant | None: ...

    async def find_joined(self, livestream_id: str, user_id: str) -> models.Participant | None: ...

    async def latest(self, livestream_id: str, user_id: str) -> models.Participant | None:
        """The user's most recent participant in the livestream, JOINED or LEFT."""
        ...

    async def mark_left(self, participant_id: str) -> models.Participant | None:
        """JOINED → LEFT with leave_time; None when it had already left."""
        ...

    async def mark_absent_left(
        self, livestream_id: str, *, present: list[str], grace_s: int
    ) -> int:
        """JOINED participants whose identity is not in `present` and who have not changed for
        `grace_s` seconds → LEFT, in one statement."""
        ...

    async def list_page(
        self,
        *,
        livestream_id: str,
        status: models.ParticipantStatus | None,
        role: models.Role | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[models.Participant]:
        """Join order, strictly after the (join_time, id) keyset cursor."""
        ...


class IdempotencyRepository(Protocol):
    async def claim(
        self, *, caller: str, method: str, request_id: str, resource_id: str, ttl_s: int
    ) -> str:
        """Bind the key to resource_id unless a live binding exists; return the bound resource id.

        Concurrent claims of one key serialise on its primary key, so exactly one wins.
        """
        ...


class UnitOfWork(Protocol):
    @property
    def livestreams(self) -> LivestreamRepository: ...
    @property
    def participants(self) -> ParticipantRepository: ...
    @property
    def idempotency(self) -> IdempotencyRepository: ...
    @property
    def webhook_effects(self) -> WebhookEffectRepository: ...


class WebhookEffectRepository(Protocol):
    async def apply(self, events: Sequence[LiveKitEvent], *, inbox_ttl_s: int) -> list[Outcome]:
        """Claim each event's inbox id and apply its effect, in order; one outcome per event.

        Atomic on its own (one statement, or its own transaction where it needs more), so it may
        run in autocommit."""
        ...


class Database(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """One transaction: committed when the block exits normally, rolled back otherwise."""
        ...

    def reader(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """One connection for reads outside an explicit transaction."""
        ...

    def autocommit(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """One connection outside an explicit transaction: each statement commits on its own
        (for writes that are a single statement, which saves the BEGIN and COMMIT round trips)."""
        ...


class RoomGateway(Protocol):
    async def create_room(
        self, *, name: str, empty_timeout_s: int, max_participants: int, metadata: str
    ) -> str:
        """Create (or get) the room; return its sid. Raises DependencyUnavailableError."""
        ...

    async def delete_room(self, name: str) -> None:
        """Delete the room; a room that does not exist is fine."""
        ...

    async def update_room_metadata(self, name: str, metadata: str) -> None: ...

    async def remove_participant(self, room: str, identity: str) -> None:
        """Disconnect the identity from the room; absent room or identity is fine."""
        ...

    async def list_rooms(self, names: list[str]) -> dict[str, str]:
        """Room name → sid, for those of `names` that exist."""
        ...

    async def list_participants(self, room: str) -> list[str]:
        """Identities connected to the room (empty when the room does not exist)."""
        ...


class TokenMinter(Protocol):
    @property
    def client_url(self) -> str:
        """The LiveKit URL that token holders connect to."""
        ...

    def mint(
        self, *, room_name: str, identity: str, name: str, metadata: str, role: models.Role
    ) -> tuple[str, datetime]:
        """A LiveKit access token for the room and its expiry time."""
        ...


class LivestreamDatabase(Database, Protocol):
    """The Database port plus the two statements of a create without a request_id.

    Creates are a hot path too: concurrent ones share these statements and their commits.
    """

    async def insert_livestream(
        self, *, livestream_id: str, new: models.NewLivestream, created_by: str, room_capacity: int
    ) -> models.Livestream:
        """A SCHEDULED livestream.

        Raises:
            RoomNameTakenError: an active livestream has the room name.
        """
        ...

    async def mark_live(self, livestream_id: str, *, room_sid: str) -> models.Livestream | None:
        """SCHEDULED → LIVE with the room's sid; None when it was no longer SCHEDULED."""
        ...


class ParticipantDatabase(Database, Protocol):
    """The Database port plus the one-statement join.

    Joining is the hot path: doing its checks in the store, in the statement that inserts, takes
    it from five round trips to one (docs/performance.md).
    """

    async def join(
        self,
        *,
        participant_id: str,
        livestream_id: str,
        user_id: str,
        display_name: str,
        role: models.Role,
        metadata: models.JsonObject,
        request_id: str | None,
        request_ttl_s: int,
    ) -> models.JoinResult:
        """Lock the livestream, check in SPEC order, claim request_id and insert, atomically.

        Raises:
            ParticipantAlreadyJoinedError: the unique index refused a concurrent duplicate.
        """
        ...
