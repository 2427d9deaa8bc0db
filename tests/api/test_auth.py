"""Every RPC but health and reflection demands a valid caller token."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import jwt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from favorited_api.v1 import livestream_service_pb2 as lpb
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from favorited_api.v1 import participant_service_pb2 as ppb
from favorited_api.v1 import participant_service_pb2_grpc as ps_grpc
from tests.api.helpers import fails
from tests.conftest import JWT_SECRET, Metadata

_ID = str(uuid.uuid4())
# (stub attribute, method, request) for every RPC of both services.
RPCS: list[tuple[str, str, Any]] = [
    ("ls", "CreateLivestream", lpb.CreateLivestreamRequest()),
    ("ls", "GetLivestream", lpb.GetLivestreamRequest(livestream_id=_ID)),
    ("ls", "ListLivestreams", lpb.ListLivestreamsRequest()),
    ("ls", "UpdateLivestream", lpb.UpdateLivestreamRequest()),
    ("ls", "DeleteLivestream", lpb.DeleteLivestreamRequest(livestream_id=_ID)),
    ("ls", "WatchLivestream", lpb.WatchLivestreamRequest(livestream_id=_ID)),
    ("ps", "JoinLivestream", ppb.JoinLivestreamRequest(livestream_id=_ID)),
    ("ps", "LeaveLivestream", ppb.LeaveLivestreamRequest(livestream_id=_ID)),
    ("ps", "RemoveParticipant", ppb.RemoveParticipantRequest(livestream_id=_ID)),
    ("ps", "ListParticipants", ppb.ListParticipantsRequest(livestream_id=_ID)),
    ("ps", "WatchParticipants", ppb.WatchParticipantsRequest(livestream_id=_ID)),
]


def _bearer(claims: dict[str, object], secret: str = JWT_SECRET, alg: str = "HS256") -> Metadata:
    return (("authorization", f"Bearer {jwt.encode(claims, secret, algorithm=alg)}"),)


_NOW = datetime.now(UTC)
BAD_CREDENTIALS: dict[str, tuple[Metadata, str]] = {
    "missing": ((), "TOKEN_MISSING"),
    "not bearer": ((("authorization", "Basic dXNlcjpwYXNz"),), "TOKEN_MALFORMED"),
    "garbage": ((("authorization", "Bearer not.a.jwt"),), "TOKEN_INVALID"),
    "expired": (_bearer({"sub": "alice", "exp": _NOW - timedelta(minutes=5)}), "TOKEN_EXPIRED"),
    "no exp": (_bearer({"sub": "alice"}), "TOKEN_INVALID"),
    "no sub": (_bearer({"exp": _NOW + timedelta(hours=1)}), "TOKEN_INVALID"),
    "empty sub": (_bearer({"sub": "", "exp": _NOW + timedelta(hours=1)}), "TOKEN_INVALID"),
    "wrong secret": (
        _bearer({"sub": "alice", "exp": _NOW + timedelta(hours=1)}, "x" * 48),
        "TOKEN_INVALID",
    ),
    "wrong alg": (
        _bearer({"sub": "alice", "exp": _NOW + timedelta(hours=1)}, JWT_SECRET * 2, "HS512"),
        "TOKEN_INVALID",
    ),
    "unsigned": (
        (
            (
                "authorization",
                "Bearer "
                + jwt.encode({"sub": "alice", "exp": _NOW + timedelta(hours=1)}, None, "none"),
            ),
        ),
        "TOKEN_INVALID",
    ),
    # The signature segment with a character outside base64url.
    "bad segment": (
        (("authorization", f"{_bearer({'sub': 'a', 'exp': _NOW + timedelta(hours=1)})[0][1]}+"),),
        "TOKEN_INVALID",
    ),
}


async def _call(
    channel: grpc.aio.Channel, which: str, method: str, request: Any, md: Metadata
) -> None:
    stub: Any = (
        ls_grpc.LivestreamServiceStub(channel)
        if which == "ls"
        else ps_grpc.ParticipantServiceStub(channel)
    )
    call = getattr(stub, method)(request, metadata=md)
    if method.startswith("Watch"):
        async for _ in call:
            pass
    else:
        await call


@pytest.mark.parametrize(("which", "method", "request_"), RPCS, ids=[r[1] for r in RPCS])
@pytest.mark.parametrize("credential", list(BAD_CREDENTIALS))
async def test_every_rpc_rejects_bad_credentials(
    channel: grpc.aio.Channel, which: str, method: str, request_: Any, credential: str
) -> None:
    md, reason = BAD_CREDENTIALS[credential]
    failure = await fails(_call(channel, which, method, request_, md))
    assert failure.code is grpc.StatusCode.UNAUTHENTICATED
    assert failure.reason == reason


async def test_admin_scope_may_be_a_list(
    livestreams: ls_grpc.LivestreamServiceAsyncStub, auth: Callable[..., Metadata], room_name: str
) -> None:
    from tests.api.helpers import create

    ls = await create(livestreams, auth("alice"), room_name)
    operator = _bearer(
        {"sub": "ops", "exp": _NOW + timedelta(hours=1), "scope": ["read", "favorited:admin"]}
    )
    ended = await livestreams.DeleteLivestream(
        lpb.DeleteLivestreamRequest(livestream_id=ls.id), metadata=operator
    )
    assert ended.livestream.status == 3
    not_admin = _bearer(
        {"sub": "ops", "exp": _NOW + timedelta(hours=1), "scope": "favorited:adminx"}
    )
    other = await create(livestreams, auth("alice"), room_name + "-2")
    failure = await fails(
        livestreams.DeleteLivestream(
            lpb.DeleteLivestreamRequest(livestream_id=other.id), metadata=not_admin
        )
    )
    assert failure.code is grpc.StatusCode.PERMISSION_DENIED


async def test_health_and_reflection_need_no_token(channel: grpc.aio.Channel) -> None:
    # The health and reflection stubs are typed for sync channels only.
    health: Any = health_pb2_grpc.HealthStub(channel)
    for service in ("", "favorited.v1.LivestreamService", "favorited.v1.ParticipantService"):
        response = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    reflection: Any = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]

    async def one_request() -> Any:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names: set[str] = set()
    async for response in reflection.ServerReflectionInfo(one_request()):
        names.update(s.name for s in response.list_services_response.service)
    assert {"favorited.v1.LivestreamService", "favorited.v1.ParticipantService"} <= names
