"""LiveKitRoomGateway: RoomService calls through livekit-api, with errors translated here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
from livekit import api

from favorited import errors

log = logging.getLogger(__name__)


class LiveKitRoomGateway:
    """Implements favorited.domain.ports.RoomGateway.

    The LiveKitAPI client is passed in (it must be built inside the running event loop), so this
    class owns no connection lifecycle. Every call is bounded by `timeout_s` here: livekit-api
    1.2.2 passes `timeout=None` per request to aiohttp, which disables the session's timeout, so
    a LiveKit that accepts the connection and never answers would otherwise hang us forever.
    `server`, when given, supplies the client for the room-agnostic calls (CreateRoom,
    DeleteRoom, ListRooms): one whose pre-signed token carries their grants (server_token.py).
    """

    def __init__(
        self,
        client: api.LiveKitAPI,
        *,
        timeout_s: float,
        server: Callable[[], api.LiveKitAPI] | None = None,
    ) -> None:
        self._client = client
        self._server = server if server is not None else lambda: client
        self._timeout_s = timeout_s

    async def create_room(
        self, *, name: str, empty_timeout_s: int, max_participants: int, metadata: str
    ) -> str:
        async with _translated("CreateRoom", self._timeout_s):
            room = await self._server().room.create_room(
                api.CreateRoomRequest(
                    name=name,
                    empty_timeout=empty_timeout_s,
                    max_participants=max_participants,
                    metadata=metadata,
                )
            )
        return room.sid

    async def delete_room(self, name: str) -> None:
        async with _translated("DeleteRoom", self._timeout_s, missing_ok=True):
            await self._server().room.delete_room(api.DeleteRoomRequest(room=name))

    async def update_room_metadata(self, name: str, metadata: str) -> None:
        async with _translated("UpdateRoomMetadata", self._timeout_s):
            await self._client.room.update_room_metadata(
                api.UpdateRoomMetadataRequest(room=name, metadata=metadata)
            )

    async def remove_participant(self, room: str, identity: str) -> None:
        async with _translated("RemoveParticipant", self._timeout_s, missing_ok=True):
            await self._client.room.remove_participant(
                api.RoomParticipantIdentity(room=room, identity=identity)
            )

    async def list_rooms(self, names: list[str]) -> dict[str, str]:
        async with _translated("ListRooms", self._timeout_s):
            response = await self._server().room.list_rooms(api.ListRoomsRequest(names=names))
        return {room.name: room.sid for room in response.rooms}

    async def list_participants(self, room: str) -> list[str]:
        async with _translated("ListParticipants", self._timeout_s):
            response = await self._client.room.list_participants(
                api.ListParticipantsRequest(room=room)
            )
        return [p.identity for p in response.participants]


@asynccontextmanager
async def _translated(
    method: str, timeout_s: float, *, missing_ok: bool = False
) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except api.TwirpError as exc:
        if missing_ok and exc.code == api.TwirpErrorCode.NOT_FOUND:
            return
        # Any other answer is LiveKit refusing or failing; callers can only retry or give up.
        log.warning(
            "LiveKit call failed",
            extra={"method": method, "twirp_code": exc.code, "http_status": exc.status},
        )
        raise _unavailable(method) from exc
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.warning("LiveKit unreachable", extra={"method": method, "error": repr(exc)})
        raise _unavailable(method) from exc


def _unavailable(method: str) -> errors.DependencyUnavailableError:
    return errors.DependencyUnavailableError(
        "LiveKit is unavailable; retry later.", reason="LIVEKIT_UNAVAILABLE", livekit_method=method
    )
