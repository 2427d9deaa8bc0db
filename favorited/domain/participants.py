"""Participant use cases: join, leave, remove, list."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from favorited import errors
from favorited.domain import models, ports, rules
from favorited.domain.pagination import PageTokens

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JoinRequest:
    livestream_id: str
    display_name: str
    role: models.Role
    metadata: models.JsonObject
    request_id: str | None


@dataclass(frozen=True, slots=True)
class ListParticipantsQuery:
    livestream_id: str
    page_size: int
    page_token: str
    status: models.ParticipantStatus | None
    role: models.Role | None


class ParticipantService:
    """Who is in which livestream, and their LiveKit access tokens."""

    def __init__(
        self,
        *,
        db: ports.ParticipantDatabase,
        rooms: ports.RoomGateway,
        tokens: ports.TokenMinter,
        page_tokens: PageTokens,
    ) -> None:
        self._db = db
        self._rooms = rooms
        self._tokens = tokens
        self._page_tokens = page_tokens

    async def join_livestream(self, caller: models.Caller, req: JoinRequest) -> models.JoinGrant:
        """Join the caller; checks in SPEC order: exists, LIVE, HOST reserved, joined, capacity.

        The store locks the livestream row, checks, claims the request_id and inserts in one
        atomic statement (one round trip); a refusal writes nothing.
        """
        # The id as PostgreSQL spells it (the API accepts any spelling of a UUID), so that a
        # replayed participant's livestream compares equal and joins of one livestream batch.
        livestream_id = str(uuid.UUID(req.livestream_id))
        result = await self._db.join(
            participant_id=str(uuid.uuid4()),
            livestream_id=livestream_id,
            user_id=caller.user_id,
            display_name=req.display_name,
            role=req.role,
            metadata=req.metadata,
            request_id=req.request_id,
            request_ttl_s=rules.IDEMPOTENCY_TTL_S,
        )
        participant = _joined(result, livestream_id, caller.user_id)
        assert result.room_name is not None  # every outcome with a participant found the row
        return self._grant(result.room_name, participant)

    def _grant(self, room_name: str, participant: models.Participant) -> models.JoinGrant:
        token, expire_time = self._tokens.mint(
            room_name=room_name,
            identity=participant.user_id,
            name=participant.display_name,
            metadata=rules.metadata_json(participant.metadata),
            role=participant.role,
        )
        return models.JoinGrant(
            participant=participant,
            token=token,
            url=self._tokens.client_url,
            expire_time=expire_time,
        )

    async def leave_livestream(
        self, caller: models.Caller, livestream_id: str
    ) -> models.Participant:
        """The caller leaves; idempotent, and fine for participants LiveKit never saw connect."""
        async with self._db.transaction() as tx:
            # Lock order everywhere: the livestream row before its participants (no deadlocks
            # with DeleteLivestream or the webhook consumer).
            livestream = await _get_livestream(tx, livestream_id, lock=True)
            joined = await tx.participants.find_joined(livestream_id, caller.user_id)
            left = await tx.participants.mark_left(joined.id) if joined is not None else None
            if left is None:
                left = await tx.participants.latest(livestream_id, caller.user_id)
        if left is None:
            raise errors.ParticipantNotFoundError(livestream_id, user=caller.user_id)
        if joined is not None:
            await self._disconnect(livestream, left)
        return left

    async def remove_participant(
        self, caller: models.Caller, livestream_id: str, participant_id: str
    ) -> models.Participant:
        async with self._db.transaction() as tx:
            livestream = await _get_livestream(tx, livestream_id, lock=True)
            if not caller.may_manage(livestream):
                raise errors.PermissionDeniedError(
                    "Only the livestream's creator or an admin may remove participants.",
                    reason="NOT_LIVESTREAM_OWNER",
                    livestream=livestream_id,
                )
            current = await tx.participants.get(participant_id)
            if current is None or current.livestream_id != livestream_id:
                raise errors.ParticipantNotFoundError(livestream_id, participant=participant_id)
            left = await tx.participants.mark_left(participant_id)
        if left is None:
            return current
        await self._disconnect(livestream, left)
        return left

    async def _disconnect(self, livestream: models.Livestream, left: models.Participant) -> None:
        # The participant may be connected even if LiveKit's webhook has not told us yet, so ask
        # LiveKit by identity whenever the room exists. Failure is logged, not fatal: the database
        # already says LEFT and reconciliation will see the stray connection.
        if livestream.status is not models.LivestreamStatus.LIVE:
            return
        try:
            await self._rooms.remove_participant(livestream.room_name, left.user_id)
        except errors.DependencyUnavailableError:
            log.warning(
                "could not remove participant from LiveKit room",
                extra={"livestream": livestream.id, "participant": left.id},
            )

    async def list_participants(
        self, query: ListParticipantsQuery
    ) -> models.Page[models.Participant]:
        filters = {
            "livestream": query.livestream_id,
            "status": query.status or "",
            "role": query.role or "",
        }
        after = self._page_tokens.decode(query.page_token, "participants", filters)
        async with self._db.reader() as uow:
            await _get_livestream(uow, query.livestream_id)
            rows = await uow.participants.list_page(
                livestream_id=query.livestream_id,
                status=query.status,
                role=query.role,
                after=after,
                limit=query.page_size + 1,
            )
        return self._page_tokens.page(
            rows, query.page_size, "participants", filters, lambda p: (p.join_time, p.id)
        )


def _joined(result: models.JoinResult, livestream_id: str, user_id: str) -> models.Participant:
    """The participant of a join that went through, or the error the SPEC orders for it."""
    match result.outcome:
        case models.JoinOutcome.NOT_FOUND:
            raise errors.LivestreamNotFoundError(livestream_id)
        case models.JoinOutcome.NOT_LIVE:
            status = result.livestream_status
            raise errors.FailedPreconditionError(
                f"The livestream is {status.value if status else 'not found'}, not LIVE.",
                reason="LIVESTREAM_NOT_LIVE",
                livestream=livestream_id,
            )
        case models.JoinOutcome.HOST_RESERVED:
            raise errors.PermissionDeniedError(
                "Only the livestream's creator may join as HOST.",
                reason="HOST_ROLE_RESERVED",
                livestream=livestream_id,
            )
        case models.JoinOutcome.ALREADY_JOINED:
            raise errors.ParticipantAlreadyJoinedError(livestream_id, user_id)
        case models.JoinOutcome.FULL:
            raise errors.ResourceExhaustedError(
                "The livestream has no free viewer seats.",
                reason="LIVESTREAM_FULL",
                livestream=livestream_id,
                max_participants=str(result.max_participants),
            )
        case models.JoinOutcome.REPLAYED:
            return _replayed(result.participant, livestream_id)
        case models.JoinOutcome.JOINED:
            assert result.participant is not None
            return result.participant


def _replayed(participant: models.Participant | None, livestream_id: str) -> models.Participant:
    if participant is None or participant.livestream_id != livestream_id:
        raise errors.FailedPreconditionError(
            "This request_id was used for another livestream; use a new request_id.",
            reason="REQUEST_ID_REUSED",
            livestream=livestream_id,
        )
    if participant.status is not models.ParticipantStatus.JOINED:
        raise errors.FailedPreconditionError(
            "The participant joined with this request_id has left; join with a new request_id.",
            reason="REQUEST_ID_REUSED",
            livestream=livestream_id,
            participant=participant.id,
        )
    return participant


async def _get_livestream(
    uow: ports.UnitOfWork, livestream_id: str, *, lock: bool = False
) -> models.Livestream:
    livestream = await uow.livestreams.get(livestream_id, lock=lock)
    if livestream is None:
        raise errors.LivestreamNotFoundError(livestream_id)
    return livestream
