"""RoomService methods: decode, check grants, act on the registry, build the reply."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from google.protobuf.message import Message
from livekit.protocol import models
from livekit.protocol import room as room_pb

from .auth import Credentials, require_room_admin, require_room_create, require_room_list
from .codec import Codec

if TYPE_CHECKING:
    from .rooms import RoomRegistry

RequestT = TypeVar("RequestT", bound=Message)

RoomServiceCall = Callable[[bytes, Codec, Credentials | None], Message]
"""One RoomService method: (request body, codec, credentials) → reply message."""


class _RoomScoped(Protocol):
    @property
    def room(self) -> str: ...


@dataclass(frozen=True, slots=True)
class _Method(Generic[RequestT]):
    request_type: type[RequestT]
    authorize: Callable[[Credentials | None, RequestT], None]
    execute: Callable[[RequestT], Message]

    def __call__(self, body: bytes, codec: Codec, credentials: Credentials | None) -> Message:
        # LiveKit's Twirp server decodes before the handler checks grants, so a malformed
        # body wins over a missing permission.
        request = codec.decode(body, self.request_type)
        self.authorize(credentials, request)
        return self.execute(request)


def _can_create(credentials: Credentials | None, _request: Message) -> None:
    require_room_create(credentials)


def _can_list(credentials: Credentials | None, _request: Message) -> None:
    require_room_list(credentials)


def _is_room_admin(credentials: Credentials | None, request: _RoomScoped) -> None:
    require_room_admin(credentials, request.room)


class _RoomServiceImpl:
    def __init__(self, rooms: RoomRegistry) -> None:
        self._rooms = rooms

    def create_room(self, request: room_pb.CreateRoomRequest) -> models.Room:
        return self._rooms.create_room(
            request.name,
            empty_timeout_s=request.empty_timeout,
            departure_timeout_s=request.departure_timeout,
            max_participants=request.max_participants,
            metadata=request.metadata,
        )

    def delete_room(self, request: room_pb.DeleteRoomRequest) -> room_pb.DeleteRoomResponse:
        self._rooms.delete_room(request.room)
        return room_pb.DeleteRoomResponse()

    def list_rooms(self, request: room_pb.ListRoomsRequest) -> room_pb.ListRoomsResponse:
        return room_pb.ListRoomsResponse(rooms=self._rooms.list_rooms(list(request.names)))

    def list_participants(
        self, request: room_pb.ListParticipantsRequest
    ) -> room_pb.ListParticipantsResponse:
        participants = self._rooms.list_participants(request.room)
        return room_pb.ListParticipantsResponse(participants=participants)

    def get_participant(self, request: room_pb.RoomParticipantIdentity) -> models.ParticipantInfo:
        return self._rooms.get_participant(request.room, request.identity)

    def remove_participant(
        self, request: room_pb.RoomParticipantIdentity
    ) -> room_pb.RemoveParticipantResponse:
        self._rooms.remove_participant(request.room, request.identity)
        return room_pb.RemoveParticipantResponse()

    def update_participant(
        self, request: room_pb.UpdateParticipantRequest
    ) -> models.ParticipantInfo:
        return self._rooms.update_participant(
            request.room,
            request.identity,
            name=request.name,
            metadata=request.metadata,
            permission=request.permission if request.HasField("permission") else None,
            attributes=dict(request.attributes),
        )

    def update_room_metadata(self, request: room_pb.UpdateRoomMetadataRequest) -> models.Room:
        return self._rooms.update_room_metadata(request.room, request.metadata)


def room_service_methods(rooms: RoomRegistry) -> Mapping[str, RoomServiceCall]:
    """Twirp method name → implementation, for ``livekit.RoomService``."""
    impl = _RoomServiceImpl(rooms)
    return MappingProxyType(
        {
            "CreateRoom": _Method(room_pb.CreateRoomRequest, _can_create, impl.create_room),
            "DeleteRoom": _Method(room_pb.DeleteRoomRequest, _can_create, impl.delete_room),
            "ListRooms": _Method(room_pb.ListRoomsRequest, _can_list, impl.list_rooms),
            "ListParticipants": _Method(
                room_pb.ListParticipantsRequest, _is_room_admin, impl.list_participants
            ),
            "GetParticipant": _Method(
                room_pb.RoomParticipantIdentity, _is_room_admin, impl.get_participant
            ),
            "RemoveParticipant": _Method(
                room_pb.RoomParticipantIdentity, _is_room_admin, impl.remove_participant
            ),
            "UpdateParticipant": _Method(
                room_pb.UpdateParticipantRequest, _is_room_admin, impl.update_participant
            ),
            "UpdateRoomMetadata": _Method(
                room_pb.UpdateRoomMetadataRequest, _is_room_admin, impl.update_room_metadata
            ),
        }
    )
