"""aiohttp application serving ``livekit.RoomService`` over Twirp."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .codec import codec_for
from .errors import HeaderAuthError, RoomServiceError, TwirpCode

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from .auth import ApiKeyAuthenticator, Credentials
    from .faults import FaultInjector
    from .roomservice import RoomServiceCall

ROOM_SERVICE_PREFIX = "/twirp/livekit.RoomService/"
# Room metadata alone may be 512 KiB; leave room for the rest of the request.
MAX_REQUEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One HTTP request as the emulator saw it.

    ``method`` is the Twirp method name (or the raw path for anything else); ``claims`` are the
    verified JWT claims, or None when no valid token was presented.
    """

    method: str
    claims: Mapping[str, Any] | None
    status: int


def twirp_error_response(error: RoomServiceError) -> web.Response:
    """Twirp's wire form of an error: JSON body, status from the code."""
    return web.Response(
        status=error.status,
        body=json.dumps(error.to_json()).encode(),
        headers={"Content-Type": "application/json"},
    )


def _bad_route(msg: str, request: web.Request) -> RoomServiceError:
    return RoomServiceError(
        TwirpCode.BAD_ROUTE,
        msg,
        {"twirp_invalid_route": f"{request.method} {request.path}"},
    )


class _TwirpHandler:
    def __init__(
        self,
        *,
        methods: Mapping[str, RoomServiceCall],
        authenticator: ApiKeyAuthenticator,
        faults: FaultInjector,
        record: Callable[[RecordedRequest], None],
    ) -> None:
        self._methods = methods
        self._authenticator = authenticator
        self._faults = faults
        self._record = record

    async def handle(self, request: web.Request) -> web.StreamResponse:
        credentials: Credentials | None = None
        try:
            # LiveKit's auth middleware wraps every route, so it answers before Twirp routing.
            credentials = self._authenticator.authenticate_header(
                request.headers.get("Authorization")
            )
        except HeaderAuthError as exc:
            response = web.Response(status=401, text=exc.message)
        else:
            try:
                response = await self._dispatch(request, credentials)
            except RoomServiceError as exc:
                response = twirp_error_response(exc)
        self._record(
            RecordedRequest(
                method=request.path.removeprefix(ROOM_SERVICE_PREFIX),
                claims=credentials.raw if credentials else None,
                status=response.status,
            )
        )
        return response

    async def _dispatch(
        self, request: web.Request, credentials: Credentials | None
    ) -> web.Response:
        if request.method != "POST":
            raise _bad_route(
                f'unsupported method "{request.method}" (only POST is allowed)', request
            )
        call = None
        if request.path.startswith(ROOM_SERVICE_PREFIX):
            call = self._methods.get(request.path.removeprefix(ROOM_SERVICE_PREFIX))
        if call is None:
            raise _bad_route(f'no handler for path "{request.path}"', request)
        content_type = request.headers.get("Content-Type", "")
        codec = codec_for(content_type)
        if codec is None:
            raise _bad_route(f'unexpected Content-Type: "{content_type}"', request)
        await self._faults.check()
        reply = call(await request.read(), codec, credentials)
        return web.Response(body=codec.encode(reply), headers={"Content-Type": codec.content_type})


def create_app(
    *,
    methods: Mapping[str, RoomServiceCall],
    authenticator: ApiKeyAuthenticator,
    faults: FaultInjector,
    record: Callable[[RecordedRequest], None],
    extra_routes: Callable[[web.Application], None] | None = None,
) -> web.Application:
    """Build the Twirp application; every other path goes through one handler so unknown routes
    still get Twirp's ``bad_route`` (and the auth middleware) rather than aiohttp's 404/405."""
    handler = _TwirpHandler(
        methods=methods, authenticator=authenticator, faults=faults, record=record
    )
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    if extra_routes is not None:
        extra_routes(app)  # registered first: the catch-all below would shadow them
    app.router.add_route("*", "/{path:.*}", handler.handle)
    return app


async def serve_app(
    app: web.Application, host: str, port: int, shutdown_timeout_s: float
) -> web.AppRunner:
    """Bind ``app`` to ``host:port`` and start serving; nothing is left open on failure."""
    # No aiohttp access log: every call is recorded (and inspectable) already, and formatting a
    # log line per request was a tenth of the emulator's CPU under the bench's create load.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout_s)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
