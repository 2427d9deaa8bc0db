"""ParticipantServicer: proto in, one use case, proto out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from favorited.api import convert
from favorited.api.auth import current_caller
from favorited.api.watch import Watcher
from favorited.domain.participants import ParticipantService
from favorited_api.v1 import participant_service_pb2 as pb
from favorited_api.v1 import participant_service_pb2_grpc as pb_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class ParticipantServicer(pb_grpc.ParticipantServiceServicer):
    def __init__(self, service: ParticipantService, watcher: Watcher) -> None:
        self._service = service
        self._watcher = watcher

    async def JoinLivestream(
        self, request: pb.JoinLivestreamRequest, context: Context
    ) -> pb.JoinLivestreamResponse:
        grant = await self._service.join_livestream(current_caller(), convert.join_request(request))
        response = pb.JoinLivestreamResponse(
            participant=convert.participant_to_proto(grant.participant),
            token=grant.token,
            url=grant.url,
        )
        response.expire_time.FromDatetime(grant.expire_time)
        return response

    async def LeaveLivestream(
        self, request: pb.LeaveLivestreamRequest, context: Context
    ) -> pb.LeaveLivestreamResponse:
        livestream_id = convert.livestream_id("livestream_id", request.livestream_id)
        left = await self._service.leave_livestream(current_caller(), livestream_id)
        return pb.LeaveLivestreamResponse(participant=convert.participant_to_proto(left))

    async def RemoveParticipant(
        self, request: pb.RemoveParticipantRequest, context: Context
    ) -> pb.RemoveParticipantResponse:
        livestream_id, participant_id = convert.remove_request(request)
        removed = await self._service.remove_participant(
            current_caller(), livestream_id, participant_id
        )
        return pb.RemoveParticipantResponse(participant=convert.participant_to_proto(removed))

    async def ListParticipants(
        self, request: pb.ListParticipantsRequest, context: Context
    ) -> pb.ListParticipantsResponse:
        page = await self._service.list_participants(convert.list_participants_query(request))
        return pb.ListParticipantsResponse(
            participants=[convert.participant_to_proto(p) for p in page.items],
            next_page_token=page.next_page_token,
        )

    def WatchParticipants(  # type: ignore[override]  # bytes: see below
        self, request: pb.WatchParticipantsRequest, context: Context
    ) -> AsyncIterator[pb.WatchParticipantsResponse | bytes]:
        # The Watcher's stream itself, not one re-yielded: a stream lives for hours, and a
        # generator layer more is a frame per stream and a hop per message (the interceptor
        # iterates it, with the caller already bound, and maps what this call raises). Change
        # batches come as the bytes of a message serialized once for every watcher; the
        # interceptor's serializer sends them as they are (wire.py).
        livestream_id = convert.livestream_id("livestream_id", request.livestream_id)
        return self._watcher.watch_participants(
            current_caller(),
            livestream_id,
            request.after_sequence,
            batch=request.batch_changes,
        )
