"""What every Python caller of favorited needs on top of the generated stubs.

Hand-written (tools/gen_protos.py never touches this module). Three things:

* ``create_channel()`` / ``create_aio_channel()``: a channel with keepalive pings, automatic
  retries of ``UNAVAILABLE`` on the read-only ``Get*``/``List*`` methods, and the caller's bearer
  token on every call.
* ``FavoritedError``: a failed call as a Python exception, with the ``google.rpc.ErrorInfo``
  reason/domain/metadata and the ``google.rpc.BadRequest`` field violations decoded from the
  ``grpc-status-details-bin`` trailer.
* ``raise_favorited_errors()``: a context manager turning ``grpc.RpcError`` into ``FavoritedError``.

Example (sync; the asyncio version is the same with ``create_aio_channel`` and ``await``)::

    from favorited_api.client import FavoritedError, create_channel, raise_favorited_errors
    from favorited_api.v1 import livestream_service_pb2 as ls
    from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc

    with create_channel("localhost:50051", token=token) as channel:
        livestreams = ls_grpc.LivestreamServiceStub(channel)
        try:
            with raise_favorited_errors():
                livestreams.GetLivestream(ls.GetLivestreamRequest(livestream_id=some_id))
        except FavoritedError as exc:
            if exc.reason != "LIVESTREAM_NOT_FOUND":
                raise

Retries: grpc's own retry machinery (a service config) repeats a call that failed ``UNAVAILABLE``
before any response arrived, with exponential backoff, within the call's deadline. Only the
methods in ``RETRIED_METHODS`` are retried: every ``Get*`` and ``List*`` RPC of the API, which
read and change nothing. ``Create*``/``Join*``/``Update*``/``Delete*``/``Leave*``/``Remove*`` may
have taken effect before the connection failed, so they are never retried automatically: send a
``request_id`` where the RPC has one and retry yourself. Streams (``Watch*``) are resumed by the
caller (``WatchParticipants``' ``after_sequence``), not retried.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from favorited_api.v1 import livestream_service_pb2, participant_service_pb2

if TYPE_CHECKING:
    from google.protobuf import any_pb2

__all__ = [
    "ERROR_DOMAIN",
    "RETRIED_METHODS",
    "FavoritedError",
    "FieldViolation",
    "TokenSource",
    "channel_options",
    "create_aio_channel",
    "create_channel",
    "raise_favorited_errors",
]

#: The ErrorInfo domain of every error favorited itself raises.
ERROR_DOMAIN = "favorited.v1"

#: A caller token (a JWT from ``favorited token``), or a function returning the current one; the
#: function is called once per RPC, so it can hand out refreshed tokens.
TokenSource = str | Callable[[], str]

_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_SERVICES = (
    livestream_service_pb2.DESCRIPTOR.services_by_name["LivestreamService"],
    participant_service_pb2.DESCRIPTOR.services_by_name["ParticipantService"],
)

#: ``(service, method)`` pairs retried on UNAVAILABLE: every unary Get*/List* method of the API,
#: read from the descriptors, so a new read method is covered when the stubs are regenerated.
RETRIED_METHODS: tuple[tuple[str, str], ...] = tuple(
    (service.full_name, method.name)
    for service in _SERVICES
    for method in service.methods
    if method.name.startswith(("Get", "List"))
    and not method.client_streaming
    and not method.server_streaming
)

# Keepalive: find a dead connection within ~40 s, even while a Watch stream is quiet. The server
# accepts data-less pings at most every 10 s (three strikes and it closes the connection), so ping
# every 30 s.
_KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)


def _service_config(max_attempts: int, initial_backoff_s: float, max_backoff_s: float) -> str:
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": [{"service": s, "method": m} for s, m in RETRIED_METHODS],
                    "retryPolicy": {
                        "maxAttempts": max_attempts,
                        "initialBackoff": f"{initial_backoff_s}s",
                        "maxBackoff": f"{max_backoff_s}s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )


def channel_options(
    *,
    retry_attempts: int = 4,
    initial_backoff_s: float = 0.1,
    max_backoff_s: float = 2.0,
) -> list[tuple[str, str | int]]:
    """The channel options ``create_channel`` uses: keepalive, plus retries of UNAVAILABLE on
    ``RETRIED_METHODS`` (``retry_attempts`` in total, including the first; 1 disables retries).

    grpc caps attempts at 5 whatever is asked. Useful when you build a channel yourself.
    """
    options: list[tuple[str, str | int]] = list(_KEEPALIVE_OPTIONS)
    if retry_attempts > 1:
        options += [
            ("grpc.enable_retries", 1),
            (
                "grpc.service_config",
                _service_config(retry_attempts, initial_backoff_s, max_backoff_s),
            ),
        ]
    else:
        options.append(("grpc.enable_retries", 0))
    return options


def _merge(
    ours: Sequence[tuple[str, Any]], theirs: Sequence[tuple[str, Any]]
) -> list[tuple[str, Any]]:
    merged = dict(ours)
    merged.update(theirs)
    return list(merged.items())


def create_channel(
    target: str,
    *,
    token: TokenSource | None = None,
    credentials: grpc.ChannelCredentials | None = None,
    retry_attempts: int = 4,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A sync channel to favorited at ``target`` (``host:port``).

    Plaintext unless ``credentials`` (e.g. ``grpc.ssl_channel_credentials()``) are given. With a
    ``token``, every call carries ``authorization: Bearer <token>`` unless the call passes its own
    ``authorization`` metadata. ``options`` override ours of the same name.
    """
    all_options = _merge(channel_options(retry_attempts=retry_attempts), options)
    channel = (
        grpc.secure_channel(target, credentials, options=all_options)
        if credentials is not None
        else grpc.insecure_channel(target, options=all_options)
    )
    if token is None:
        return channel
    return grpc.intercept_channel(channel, _BearerInterceptor(token))


def create_aio_channel(
    target: str,
    *,
    token: TokenSource | None = None,
    credentials: grpc.ChannelCredentials | None = None,
    retry_attempts: int = 4,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """The asyncio twin of ``create_channel``; use it as ``async with create_aio_channel(...)``."""
    all_options = _merge(channel_options(retry_attempts=retry_attempts), options)
    interceptors: list[grpc.aio.ClientInterceptor] = (
        [] if token is None else list(_aio_bearer_interceptors(token))
    )
    if credentials is not None:
        return grpc.aio.secure_channel(
            target, credentials, options=all_options, interceptors=interceptors
        )
    return grpc.aio.insecure_channel(target, options=all_options, interceptors=interceptors)


# --- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldViolation:
    """One google.rpc.BadRequest.FieldViolation: which request field, and what is wrong with it."""

    field: str
    description: str


class FavoritedError(Exception):
    """A failed favorited call, with its google.rpc.Status details decoded.

    ``reason`` is the stable, documented ErrorInfo reason (``LIVESTREAM_NOT_FOUND``,
    ``LIVESTREAM_FULL``, ...) to branch on; ``message`` is for humans and may change. ``reason``
    and ``domain`` are empty when the error did not come from favorited itself (for example
    UNAVAILABLE raised by grpc when the server cannot be reached).
    """

    code: grpc.StatusCode
    message: str
    reason: str
    domain: str
    metadata: Mapping[str, str]
    field_violations: tuple[FieldViolation, ...]
    details: tuple[any_pb2.Any, ...]

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
        field_violations: Iterable[FieldViolation] = (),
        details: Iterable[any_pb2.Any] = (),
    ) -> None:
        super().__init__(code, message, reason)
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata = MappingProxyType(dict(metadata or {}))
        self.field_violations = tuple(field_violations)
        #: Every google.rpc.Status detail as sent, including kinds not decoded above.
        self.details = tuple(details)

    def __str__(self) -> str:
        head = f"{self.code.name} {self.reason}" if self.reason else self.code.name
        text = f"{head}: {self.message}"
        if self.field_violations:
            text += " (" + "; ".join(f"{v.field}: {v.description}" for v in self.field_violations)
            text += ")"
        return text

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> FavoritedError:
        """Decode a failed call's error, sync (``grpc.RpcError``) or asyncio (``AioRpcError``).

        A malformed or missing ``grpc-status-details-bin`` trailer only means no details; the
        code and message always come from the call itself.
        """
        if not isinstance(error, grpc.Call | grpc.aio.AioRpcError):
            return cls(grpc.StatusCode.UNKNOWN, str(error))
        code, message = error.code(), error.details() or ""
        status = _status_from_trailers(error.trailing_metadata() or ())
        if status is None:
            return cls(code, message)
        reason, domain, metadata, violations = "", "", {}, []
        for detail in status.details:
            info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
            if detail.Unpack(info):  # Unpack is False when the detail is of another type
                reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
            elif detail.Unpack(bad):
                violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
        return cls(
            code,
            message,
            reason=reason,
            domain=domain,
            metadata=metadata,
            field_violations=violations,
            details=status.details,
        )


def _status_from_trailers(trailers: Iterable[tuple[str, str | bytes]]) -> status_pb2.Status | None:
    for key, value in trailers:
        if key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except DecodeError:
                return None
    return None


@contextlib.contextmanager
def raise_favorited_errors() -> Iterator[None]:
    """Re-raise any ``grpc.RpcError`` inside the block as ``FavoritedError`` (chained).

    Works around sync calls and ``await``-ed asyncio calls alike, and around iterating a stream.
    """
    try:
        yield
    except grpc.RpcError as exc:
        raise FavoritedError.from_rpc_error(exc) from exc


# --- bearer token -----------------------------------------------------------------------------


def _token_value(token: TokenSource) -> str:
    return token if isinstance(token, str) else token()


def _with_token(
    metadata: Iterable[tuple[str, str | bytes]] | None, token: TokenSource
) -> list[tuple[str, str | bytes]]:
    items = list(metadata or ())
    if not any(key == "authorization" for key, _ in items):
        items.append(("authorization", f"Bearer {_token_value(token)}"))
    return items


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: tuple[tuple[str, str | bytes], ...] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None = field(default=None)


_Req = TypeVar("_Req")


class _BearerInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call of a sync channel."""

    def __init__(self, token: TokenSource) -> None:
        self._token = token

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _CallDetails(
            method=details.method,
            timeout=details.timeout,
            metadata=tuple(_with_token(details.metadata, self._token)),
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
            compression=getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request_iterator)


def _aio_details(
    details: grpc.aio.ClientCallDetails, token: TokenSource
) -> grpc.aio.ClientCallDetails:
    return grpc.aio.ClientCallDetails(
        details.method,
        details.timeout,
        grpc.aio.Metadata(*_with_token(details.metadata, token)),
        details.credentials,
        details.wait_for_ready,
    )


class _AioBearerUnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, token: TokenSource) -> None:
        self._token = token

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, _Req], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: _Req,
    ) -> Any:
        return await continuation(_aio_details(client_call_details, self._token), request)


class _AioBearerUnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, token: TokenSource) -> None:
        self._token = token

    async def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, _Req], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: _Req,
    ) -> Any:
        return await continuation(_aio_details(client_call_details, self._token), request)


def _aio_bearer_interceptors(token: TokenSource) -> tuple[grpc.aio.ClientInterceptor, ...]:
    # favorited has no client-streaming RPCs, so unary-unary and unary-stream cover every call.
    # (grpc.aio applies an interceptor only to the call kinds whose interface it implements.)
    return (_AioBearerUnaryUnary(token), _AioBearerUnaryStream(token))
