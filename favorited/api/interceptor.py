"""The server interceptor: authenticate every RPC but health and reflection, map errors, log.

Handlers are wrapped rather than checked up front, so an authentication failure and an error
raised by a servicer go through the same mapping and the same access log line.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, cast

import grpc
from grpc_status import rpc_status

from favorited import errors
from favorited.api import auth, wire
from favorited.api.errors import code_for, internal_status, to_status
from favorited.metrics import Metrics

log = logging.getLogger(__name__)

PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Unary = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
Streaming = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]]


class EdgeInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authenticator: auth.Authenticator, metrics: Metrics) -> None:
        self._auth = authenticator
        self._metrics = metrics
        # grpc.aio asks the interceptor on every call; the wrapped handler of a method never
        # changes, so it is built once. Only methods the server has are kept (bounded).
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(PUBLIC_PREFIXES):
            return handler
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                # In an aio server the behaviors are coroutine (and async-generator) functions.
                self._wrap_unary(method, cast(Unary, handler.unary_unary)),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, cast(Streaming, handler.unary_stream)),
                request_deserializer=handler.request_deserializer,
                # A stream may yield bytes it serialized once for many streams (wire.py).
                response_serializer=wire.passing_bytes(handler.response_serializer),
            )
        return handler

    def _authenticate(self, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        metadata = cast(Sequence[tuple[str, str | bytes]], context.invocation_metadata() or ())
        caller = self._auth.authenticate(metadata)
        auth.bind_caller(caller)
        return caller.user_id

    def _wrap_unary(self, method: str, behavior: Unary) -> Unary:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            user = "-"
            try:
                user = self._authenticate(context)
                response = await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001 - the one boundary where every error is mapped
                await self._abort(context, method, user, started, exc)
            self._observe(method, user, started, grpc.StatusCode.OK)
            return response

        return wrapped

    def _wrap_stream(self, method: str, behavior: Streaming) -> Streaming:
        async def wrapped(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            started = time.perf_counter()
            user = "-"
            try:
                user = self._authenticate(context)
                async for item in behavior(request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001 - the one boundary where every error is mapped
                await self._abort(context, method, user, started, exc)
            self._observe(method, user, started, grpc.StatusCode.OK)

        return wrapped

    async def _abort(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        method: str,
        user: str,
        started: float,
        exc: Exception,
    ) -> None:
        if isinstance(exc, errors.FavoritedError):
            status = to_status(exc)
            self._observe(method, user, started, code_for(exc), reason=exc.reason)
        else:
            reference = uuid.uuid4().hex[:16]
            log.error(
                "unhandled error in RPC",
                exc_info=exc,
                extra={"method": method, "user": user, "reference": reference},
            )
            self._observe(method, user, started, grpc.StatusCode.INTERNAL, reason="INTERNAL")
            status = internal_status(reference)
        rich = rpc_status.to_status(status)
        await context.abort(rich.code, rich.details, rich.trailing_metadata)

    def _observe(
        self, method: str, user: str, started: float, code: grpc.StatusCode, *, reason: str = ""
    ) -> None:
        elapsed = time.perf_counter() - started
        self._metrics.rpcs.labels(method, code.name).inc()
        self._metrics.rpc_seconds.labels(method).observe(elapsed)
        level = logging.DEBUG if code is grpc.StatusCode.OK else logging.INFO
        if not log.isEnabledFor(level):  # skip building the record's fields on the hot path
            return
        log.log(
            level,
            "rpc",
            extra={
                "method": method,
                "user": user,
                "code": code.name,
                "reason": reason,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
