"""Livestream use cases: create, get, list, update, delete."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from favorited import errors
from favorited.domain import models, ports, rules
from favorited.domain.pagination import PageTokens

log = logging.getLogger(__name__)

_CREATE = "CreateLivestream"


@dataclass(frozen=True, slots=True)
class ListLivestreamsQuery:
    page_size: int
    page_token: str
    status: models.LivestreamStatus | None
    created_by: str | None


class LivestreamService:
    """The livestream lifecycle. LiveKit and PostgreSQL are reached only through the ports."""

    def __init__(
        self, *, db: ports.LivestreamDatabase, rooms: ports.RoomGateway, page_tokens: PageTokens
    ) -> None:
        self._db = db
        self._rooms = rooms
        self._page_tokens = page_tokens

    async def create_livestream(
        self, caller: models.Caller, new: models.NewLivestream, *, request_id: str | None
    ) -> models.Livestream:
        """Write SCHEDULED, create the LiveKit room, then move to LIVE (or ERROR).

        Raises:
            RoomNameTakenError: a SCHEDULED or LIVE livestream has the room name.
            DependencyUnavailableError: LiveKit failed; the livestream is left in ERROR.
        """
        livestream_id = str(uuid.uuid4())
        if request_id is None:
            # One statement, shared with concurrent creates (the hot path).
            created = await self._db.insert_livestream(
                livestream_id=livestream_id,
                new=new,
                created_by=caller.user_id,
                room_capacity=_room_capacity(new),
            )
        else:
            async with self._db.transaction() as tx:
                # The key and the row are written together, or neither is.
                owner = await tx.idempotency.claim(
                    caller=caller.user_id,
                    method=_CREATE,
                    request_id=request_id,
                    resource_id=livestream_id,
                    ttl_s=rules.IDEMPOTENCY_TTL_S,
                )
                if owner != livestream_id:
                    replayed = await tx.livestreams.get(owner)
                    if replayed is not None:
                        return replayed
                created = await self._insert(tx, livestream_id, caller, new)
        try:
            room_sid = await self._rooms.create_room(
                name=created.room_name,
                empty_timeout_s=created.empty_timeout_s,
                max_participants=created.room_capacity,
                metadata=rules.metadata_json(created.metadata),
            )
        except errors.DependencyUnavailableError:
            await self._fail_creation(created)
            raise
        try:
            live = await self._db.mark_live(created.id, room_sid=room_sid)
        except errors.DependencyUnavailableError:
            # The room exists but we could not record it: take it down so nothing leaks.
            await self._delete_room_quietly(created.room_name)
            raise
        if live is None:
            await self._delete_room_quietly(created.room_name)
            raise errors.AbortedError(
                "The livestream changed while its room was being created.",
                livestream=created.id,
            )
        return live

    @staticmethod
    async def _insert(
        uow: ports.UnitOfWork, livestream_id: str, caller: models.Caller, new: models.NewLivestream
    ) -> models.Livestream:
        return await uow.livestreams.insert(
            livestream_id=livestream_id,
            new=new,
            created_by=caller.user_id,
            room_capacity=_room_capacity(new),
        )

    async def _fail_creation(self, created: models.Livestream) -> None:
        # The room may exist although the call failed (a lost response). Delete it while this
        # livestream still holds the name, before ERROR frees it for a new livestream.
        await self._delete_room_quietly(created.room_name)
        async with self._db.autocommit() as uow:  # one statement: it commits on its own
            await uow.livestreams.mark_error(created.id)
        log.warning(
            "livestream creation failed: LiveKit unavailable",
            extra={"livestream": created.id, "room_name": created.room_name},
        )

    async def _delete_room_quietly(self, name: str) -> None:
        try:
            await self._rooms.delete_room(name)
        except errors.DependencyUnavailableError:
            log.warning("could not delete LiveKit room", extra={"room_name": name})

    async def get_livestream(self, livestream_id: str) -> models.Livestream:
        async with self._db.reader() as uow:
            livestream = await uow.livestreams.get(livestream_id)
        if livestream is None:
            raise errors.LivestreamNotFoundError(livestream_id)
        return livestream

    async def list_livestreams(self, query: ListLivestreamsQuery) -> models.Page[models.Livestream]:
        filters = {"status": query.status or "", "created_by": query.created_by or ""}
        after = self._page_tokens.decode(query.page_token, "livestreams", filters)
        async with self._db.reader() as uow:
            rows = await uow.livestreams.list_page(
                status=query.status,
                created_by=query.created_by,
                after=after,
                limit=query.page_size + 1,
            )
        return self._page_tokens.page(
            rows, query.page_size, "livestreams", filters, lambda ls: (ls.create_time, ls.id)
        )

    async def update_livestream(
        self, caller: models.Caller, livestream_id: str, changes: models.LivestreamChanges
    ) -> models.Livestream:
        current = await self._get_managed(caller, livestream_id)
        _ensure_not_terminal(current)
        if (
            changes.max_participants is not None
            and changes.max_participants >= current.room_capacity
        ):
            raise errors.InvalidArgumentError.single(
                "livestream.max_participants",
                f"must be at most {current.room_capacity - 1}, the viewer seats of the LiveKit "
                "room created for this livestream",
                reason="ROOM_CAPACITY_FIXED",
            )
        if changes.metadata is not None and current.status is models.LivestreamStatus.LIVE:
            # LiveKit first: if it fails nothing has changed and the caller can simply retry.
            await self._rooms.update_room_metadata(
                current.room_name, rules.metadata_json(changes.metadata)
            )
        async with self._db.transaction() as tx:
            updated = await tx.livestreams.update(livestream_id, changes)
            if updated is None:
                latest = await tx.livestreams.get(livestream_id)
        if updated is None:
            raise _terminated(latest or current)
        return updated

    async def delete_livestream(
        self, caller: models.Caller, livestream_id: str
    ) -> models.Livestream:
        """End the livestream; idempotent for ENDED and ERROR, authorization always checked."""
        current = await self._get_managed(caller, livestream_id)
        if current.status.terminal:
            return current
        if current.status is models.LivestreamStatus.SCHEDULED:
            raise errors.FailedPreconditionError(
                "The livestream's room is still being created; retry shortly.",
                reason="LIVESTREAM_NOT_READY",
                livestream=livestream_id,
            )
        # Room first: if LiveKit fails nothing changed; if PostgreSQL then fails the room is gone
        # and reconciliation ends the LIVE row, whereas the reverse order would leak a live room.
        await self._rooms.delete_room(current.room_name)
        async with self._db.transaction() as tx:
            await tx.livestreams.end(livestream_id)
            ended = await tx.livestreams.get(livestream_id)
        if ended is None:  # rows are never deleted; only a bug gets here
            raise errors.LivestreamNotFoundError(livestream_id)
        return ended

    async def _get_managed(self, caller: models.Caller, livestream_id: str) -> models.Livestream:
        livestream = await self.get_livestream(livestream_id)
        if not caller.may_manage(livestream):
            raise errors.PermissionDeniedError(
                "Only the livestream's creator or an admin may do this.",
                reason="NOT_LIVESTREAM_OWNER",
                livestream=livestream_id,
            )
        return livestream


def _ensure_not_terminal(livestream: models.Livestream) -> None:
    if livestream.status.terminal:
        raise _terminated(livestream)


def _terminated(livestream: models.Livestream) -> errors.FailedPreconditionError:
    return errors.FailedPreconditionError(
        f"The livestream is {livestream.status.value} and can no longer change.",
        reason="LIVESTREAM_TERMINATED",
        livestream=livestream.id,
    )


def _room_capacity(new: models.NewLivestream) -> int:
    # The host's seat comes on top of the viewers'; LiveKit cannot raise it later.
    return new.max_participants + 1
