"""Small call helpers shared by the API tests (they only build requests and unwrap failures)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import grpc
import pytest

from favorited_api.v1 import livestream_pb2, livestream_service_pb2, participant_service_pb2
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from favorited_api.v1 import participant_service_pb2_grpc as ps_grpc
from tests.conftest import Metadata
from tests.support.grpc_errors import RpcFailure, failure

T = TypeVar("T")


async def fails(call: Awaitable[Any]) -> RpcFailure:
    """Await a call that must fail; return its status, reason and field violations."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return failure(info.value)


async def create(
    stub: ls_grpc.LivestreamServiceAsyncStub,
    md: Metadata,
    room_name: str,
    *,
    title: str = "A title",
    request_id: str = "",
    **fields: Any,
) -> livestream_pb2.Livestream:
    response = await stub.CreateLivestream(
        livestream_service_pb2.CreateLivestreamRequest(
            livestream=livestream_pb2.Livestream(room_name=room_name, title=title, **fields),
            request_id=request_id,
        ),
        metadata=md,
    )
    return response.livestream


async def join(
    stub: ps_grpc.ParticipantServiceAsyncStub,
    md: Metadata,
    livestream_id: str,
    *,
    display_name: str = "Viewer",
    **fields: Any,
) -> participant_service_pb2.JoinLivestreamResponse:
    response: participant_service_pb2.JoinLivestreamResponse = await stub.JoinLivestream(
        participant_service_pb2.JoinLivestreamRequest(
            livestream_id=livestream_id, display_name=display_name, **fields
        ),
        metadata=md,
    )
    return response
