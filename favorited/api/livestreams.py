"""LivestreamServicer: proto in, one use case, proto out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from favorited.api import convert
from favorited.api.auth import current_caller
from favorited.api.watch import Watcher
from favorited.domain.livestreams import LivestreamService
from favorited_api.v1 import livestream_service_pb2 as pb
from favorited_api.v1 import livestream_service_pb2_grpc as pb_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class LivestreamServicer(pb_grpc.LivestreamServiceServicer):
    def __init__(self, service: LivestreamService, watcher: Watcher) -> None:
        self._service = service
        self._watcher = watcher

    async def CreateLivestream(
        self, request: pb.CreateLivestreamRequest, context: Context
    ) -> pb.CreateLivestreamResponse:
        new, request_id = convert.new_livestream(request)
        created = await self._service.create_livestream(
            current_caller(), new, request_id=request_id
        )
        return pb.CreateLivestreamResponse(livestream=convert.livestream_to_proto(created))

    async def GetLivestream(
        self, request: pb.GetLivestreamRequest, context: Context
    ) -> pb.GetLivestreamResponse:
        livestream_id = convert.livestream_id("livestream_id", request.livestream_id)
        found = await self._service.get_livestream(livestream_id)
        return pb.GetLivestreamResponse(livestream=convert.livestream_to_proto(found))

    async def ListLivestreams(
        self, request: pb.ListLivestreamsRequest, context: Context
    ) -> pb.ListLivestreamsResponse:
        page = await self._service.list_livestreams(convert.list_livestreams_query(request))
        return pb.ListLivestreamsResponse(
            livestreams=[convert.livestream_to_proto(ls) for ls in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateLivestream(
        self, request: pb.UpdateLivestreamRequest, context: Context
    ) -> pb.UpdateLivestreamResponse:
        livestream_id, changes = convert.livestream_changes(request)
        updated = await self._service.update_livestream(current_caller(), livestream_id, changes)
        return pb.UpdateLivestreamResponse(livestream=convert.livestream_to_proto(updated))

    async def DeleteLivestream(
        self, request: pb.DeleteLivestreamRequest, context: Context
    ) -> pb.DeleteLivestreamResponse:
        livestream_id = convert.livestream_id("livestream_id", request.livestream_id)
        ended = await self._service.delete_livestream(current_caller(), livestream_id)
        return pb.DeleteLivestreamResponse(livestream=convert.livestream_to_proto(ended))

    def WatchLivestream(
        self, request: pb.WatchLivestreamRequest, context: Context
    ) -> AsyncIterator[pb.WatchLivestreamResponse]:
        # The Watcher's stream itself (see ParticipantServicer.WatchParticipants).
        livestream_id = convert.livestream_id("livestream_id", request.livestream_id)
        return self._watcher.watch_livestream(current_caller(), livestream_id)
