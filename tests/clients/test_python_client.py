"""favorited_api.client: channels with token, retries and keepalive; FavoritedError decoding.

Against the real server (asyncio channel) for what the server says, and against small scripted
servers on 127.0.0.1 for what only a misbehaving server can show (UNAVAILABLE, broken details).
The sync channel against the real server is exercised by test_fresh_venv.py, in another process.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import uuid
from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
import pytest

from favorited_api.client import (
    ERROR_DOMAIN,
    RETRIED_METHODS,
    FavoritedError,
    FieldViolation,
    channel_options,
    create_aio_channel,
    create_channel,
    raise_favorited_errors,
)
from favorited_api.v1 import livestream_pb2
from favorited_api.v1 import livestream_service_pb2 as ls
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from tests.clients._support import env, run

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from favorited.app import ApiApp
    from tests.conftest import Metadata

SERVICE = "favorited.v1.LivestreamService"


def _token(auth: Callable[..., Metadata], user: str) -> str:
    return str(auth(user)[0][1]).removeprefix("Bearer ")


def _create(room: str, title: str = "Client test") -> ls.CreateLivestreamRequest:
    return ls.CreateLivestreamRequest(
        livestream=livestream_pb2.Livestream(room_name=room, title=title)
    )


@pytest.fixture
async def alice_stub(
    api: ApiApp, auth: Callable[..., Metadata]
) -> AsyncIterator[ls_grpc.LivestreamServiceAsyncStub]:
    async with create_aio_channel(f"127.0.0.1:{api.port}", token=_token(auth, "alice")) as ch:
        yield ls_grpc.LivestreamServiceStub(ch)


# --- against the real server ------------------------------------------------------------------


async def test_token_is_sent_and_calls_succeed(
    alice_stub: ls_grpc.LivestreamServiceAsyncStub, room_name: str
) -> None:
    created = await alice_stub.CreateLivestream(_create(room_name), timeout=10)
    assert created.livestream.created_by == "alice"
    listed = await alice_stub.ListLivestreams(
        ls.ListLivestreamsRequest(created_by="alice", page_size=100), timeout=10
    )
    assert created.livestream.id in [s.id for s in listed.livestreams]


async def test_not_found_decodes_error_info(alice_stub: ls_grpc.LivestreamServiceAsyncStub) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(FavoritedError) as caught, raise_favorited_errors():
        await alice_stub.GetLivestream(ls.GetLivestreamRequest(livestream_id=missing), timeout=10)
    err = caught.value
    assert err.code == grpc.StatusCode.NOT_FOUND
    assert err.reason == "LIVESTREAM_NOT_FOUND"
    assert err.domain == ERROR_DOMAIN
    assert dict(err.metadata) == {"livestream": missing}
    assert err.field_violations == ()
    assert err.message
    assert str(err) == f"NOT_FOUND LIVESTREAM_NOT_FOUND: {err.message}"
    assert isinstance(err.__cause__, grpc.aio.AioRpcError)


async def test_invalid_argument_decodes_field_violations(
    alice_stub: ls_grpc.LivestreamServiceAsyncStub, room_name: str
) -> None:
    with pytest.raises(FavoritedError) as caught, raise_favorited_errors():
        await alice_stub.CreateLivestream(_create(room_name, title=""), timeout=10)
    err = caught.value
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.domain == ERROR_DOMAIN
    assert [v.field for v in err.field_violations] == ["livestream.title"]
    assert isinstance(err.field_violations[0], FieldViolation)
    assert "livestream.title" in str(err)
    assert len(err.details) == 2  # ErrorInfo and BadRequest, as sent


async def test_without_token_is_unauthenticated(api: ApiApp) -> None:
    async with create_aio_channel(f"127.0.0.1:{api.port}") as ch:
        with pytest.raises(FavoritedError) as caught, raise_favorited_errors():
            await ls_grpc.LivestreamServiceStub(ch).ListLivestreams(
                ls.ListLivestreamsRequest(), timeout=10
            )
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.reason == "TOKEN_MISSING"


async def test_call_metadata_authorization_wins_over_channel_token(
    alice_stub: ls_grpc.LivestreamServiceAsyncStub, auth: Callable[..., Metadata], room_name: str
) -> None:
    created = await alice_stub.CreateLivestream(
        _create(room_name), metadata=auth("bob"), timeout=10
    )
    assert created.livestream.created_by == "bob"


async def test_token_function_is_asked_on_every_call(
    api: ApiApp, auth: Callable[..., Metadata], room_name: str
) -> None:
    users = iter(["carol", "dave"])
    async with create_aio_channel(
        f"127.0.0.1:{api.port}", token=lambda: _token(auth, next(users))
    ) as ch:
        stub = ls_grpc.LivestreamServiceStub(ch)
        first = await stub.CreateLivestream(_create(f"{room_name}-1"), timeout=10)
        second = await stub.CreateLivestream(_create(f"{room_name}-2"), timeout=10)
    assert (first.livestream.created_by, second.livestream.created_by) == ("carol", "dave")


@pytest.mark.timeout(90)
async def test_python_example_runs_against_the_server(
    api: ApiApp, auth: Callable[..., Metadata]
) -> None:
    result = await run(
        [sys.executable, "clients/python/examples/quickstart.py"],
        environ=env(
            FAVORITED_ADDRESS=f"127.0.0.1:{api.port}", FAVORITED_TOKEN=_token(auth, "alice")
        ),
    )
    assert result.returncode == 0, result
    assert "LIVESTREAM_STATUS_LIVE" in result.stdout, result
    assert "joined as PARTICIPANT_ROLE_HOST" in result.stdout, result
    assert "NOT_FOUND LIVESTREAM_NOT_FOUND" in result.stdout, result
    assert "ended: LIVESTREAM_STATUS_ENDED" in result.stdout, result


# --- retries, metadata and odd errors, against scripted servers -----------------------------


def test_only_get_and_list_methods_are_retried() -> None:
    assert set(RETRIED_METHODS) == {
        ("favorited.v1.LivestreamService", "GetLivestream"),
        ("favorited.v1.LivestreamService", "ListLivestreams"),
        ("favorited.v1.ParticipantService", "ListParticipants"),
    }
    config = json.loads(dict(channel_options())["grpc.service_config"])  # type: ignore[arg-type]
    (method_config,) = config["methodConfig"]
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert {(n["service"], n["method"]) for n in method_config["name"]} == set(RETRIED_METHODS)
    assert dict(channel_options(retry_attempts=1))["grpc.enable_retries"] == 0


class Script:
    """A LivestreamService that fails UNAVAILABLE `failures` times, recording every attempt."""

    def __init__(self) -> None:
        self.failures = 0
        self.attempts: list[tuple[str, str | bytes | None]] = []
        self.trailers: tuple[tuple[str, str | bytes], ...] = ()
        self._lock = threading.Lock()

    def attempt(self, method: str, context: Any) -> bool:
        metadata = dict(context.invocation_metadata())
        with self._lock:
            self.attempts.append((method, metadata.get("authorization")))
            fail = self.failures > 0
            self.failures -= 1 if fail else 0
        return fail

    def get(self, request: ls.GetLivestreamRequest, context: Any) -> ls.GetLivestreamResponse:
        if self.attempt("GetLivestream", context):
            context.set_trailing_metadata(self.trailers)
            context.abort(grpc.StatusCode.UNAVAILABLE, "database unreachable")
        return ls.GetLivestreamResponse(
            livestream=livestream_pb2.Livestream(id=request.livestream_id)
        )

    def create(
        self, request: ls.CreateLivestreamRequest, context: Any
    ) -> ls.CreateLivestreamResponse:
        if self.attempt("CreateLivestream", context):
            context.abort(grpc.StatusCode.UNAVAILABLE, "livekit unreachable")
        return ls.CreateLivestreamResponse()

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "GetLivestream": grpc.unary_unary_rpc_method_handler(
                    self.get,
                    request_deserializer=ls.GetLivestreamRequest.FromString,
                    response_serializer=ls.GetLivestreamResponse.SerializeToString,
                ),
                "CreateLivestream": grpc.unary_unary_rpc_method_handler(
                    self.create,
                    request_deserializer=ls.CreateLivestreamRequest.FromString,
                    response_serializer=ls.CreateLivestreamResponse.SerializeToString,
                ),
            },
        )


@pytest.fixture
def scripted() -> Iterator[tuple[Script, str]]:
    script = Script()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((script.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield script, f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def test_sync_get_is_retried_on_unavailable_with_the_token(scripted: tuple[Script, str]) -> None:
    script, target = scripted
    script.failures = 2
    with create_channel(target, token="t0ken") as ch:
        reply = ls_grpc.LivestreamServiceStub(ch).GetLivestream(
            ls.GetLivestreamRequest(livestream_id="abc"), timeout=10
        )
    assert reply.livestream.id == "abc"
    assert script.attempts == [("GetLivestream", "Bearer t0ken")] * 3


def test_sync_retries_give_up_after_the_attempts(scripted: tuple[Script, str]) -> None:
    script, target = scripted
    script.failures = 10
    with (
        create_channel(target, token="t0ken", retry_attempts=3) as ch,
        pytest.raises(FavoritedError) as caught,
        raise_favorited_errors(),
    ):
        ls_grpc.LivestreamServiceStub(ch).GetLivestream(
            ls.GetLivestreamRequest(livestream_id="abc"), timeout=10
        )
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert caught.value.message == "database unreachable"
    assert len(script.attempts) == 3


def test_sync_create_is_never_retried(scripted: tuple[Script, str]) -> None:
    script, target = scripted
    script.failures = 1
    with create_channel(target, token="t0ken") as ch, pytest.raises(grpc.RpcError):
        ls_grpc.LivestreamServiceStub(ch).CreateLivestream(_create("r"), timeout=10)
    assert script.attempts == [("CreateLivestream", "Bearer t0ken")]


def test_sync_retries_can_be_disabled(scripted: tuple[Script, str]) -> None:
    script, target = scripted
    script.failures = 1
    with create_channel(target, retry_attempts=1) as ch, pytest.raises(grpc.RpcError):
        ls_grpc.LivestreamServiceStub(ch).GetLivestream(ls.GetLivestreamRequest(), timeout=10)
    assert script.attempts == [("GetLivestream", None)]


def test_caller_options_override_ours(scripted: tuple[Script, str]) -> None:
    script, target = scripted
    script.failures = 1
    with (
        create_channel(target, options=[("grpc.enable_retries", 0)]) as ch,
        pytest.raises(grpc.RpcError),
    ):
        ls_grpc.LivestreamServiceStub(ch).GetLivestream(ls.GetLivestreamRequest(), timeout=10)
    assert len(script.attempts) == 1


def test_broken_status_details_still_give_code_and_message(scripted: tuple[Script, str]) -> None:
    script, target = scripted
    script.failures = 1
    script.trailers = (("grpc-status-details-bin", b"\xff not a google.rpc.Status"),)
    with (
        create_channel(target, retry_attempts=1) as ch,
        pytest.raises(FavoritedError) as caught,
        raise_favorited_errors(),
    ):
        ls_grpc.LivestreamServiceStub(ch).GetLivestream(ls.GetLivestreamRequest(), timeout=10)
    err = caught.value
    assert (err.code, err.message, err.reason, err.details) == (
        grpc.StatusCode.UNAVAILABLE,
        "database unreachable",
        "",
        (),
    )


async def test_aio_get_is_retried_on_unavailable_with_the_token() -> None:
    script = Script()

    async def get(request: ls.GetLivestreamRequest, context: Any) -> ls.GetLivestreamResponse:
        if script.attempt("GetLivestream", context):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "database unreachable")
        return ls.GetLivestreamResponse(
            livestream=livestream_pb2.Livestream(id=request.livestream_id)
        )

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "GetLivestream": grpc.unary_unary_rpc_method_handler(
                        get,
                        request_deserializer=ls.GetLivestreamRequest.FromString,
                        response_serializer=ls.GetLivestreamResponse.SerializeToString,
                    )
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        script.failures = 2
        async with create_aio_channel(f"127.0.0.1:{port}", token="t0ken") as ch:
            reply = await ls_grpc.LivestreamServiceStub(ch).GetLivestream(
                ls.GetLivestreamRequest(livestream_id="abc"), timeout=10
            )
    finally:
        await server.stop(None)
    assert reply.livestream.id == "abc"
    assert script.attempts == [("GetLivestream", "Bearer t0ken")] * 3


async def test_unreachable_server_is_unavailable_without_reason() -> None:
    with socket.socket() as sock:  # a port nobody listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with create_aio_channel(f"127.0.0.1:{port}", retry_attempts=1) as ch:
        with pytest.raises(FavoritedError) as caught, raise_favorited_errors():
            await ls_grpc.LivestreamServiceStub(ch).GetLivestream(
                ls.GetLivestreamRequest(), timeout=10
            )
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert (caught.value.reason, caught.value.domain) == ("", "")


def test_an_rpc_error_that_is_not_a_call_is_unknown() -> None:
    err = FavoritedError.from_rpc_error(grpc.RpcError("odd"))
    assert (err.code, err.message) == (grpc.StatusCode.UNKNOWN, "odd")
