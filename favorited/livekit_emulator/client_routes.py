"""HTTP stand-ins for WebRTC clients, so a person (or a script) can "connect" to the emulator.

    POST /_emulator/connect     body: a LiveKit access token   → 200 {"sid", "identity", "name"}
    POST /_emulator/disconnect  body: {"room": …, "identity": …} → 200 {"sid", …}

Real LiveKit clients join over its signalling WebSocket with the same token; these routes cause
the same room state and webhooks (`participant_joined` / `participant_left`). They exist only on
the emulator, for `favorited dev` and manual tests; the service never calls them.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web
from livekit.protocol import models

from .errors import EmulatorJoinError, RoomServiceError

PREFIX = "/_emulator"


def add_client_routes(
    app: web.Application,
    *,
    connect: Callable[[str], models.ParticipantInfo],
    disconnect: Callable[[str, str], models.ParticipantInfo],
) -> None:
    async def connect_route(request: web.Request) -> web.Response:
        token = (await request.text()).strip()
        try:
            info = connect(token)
        except EmulatorJoinError as exc:
            return web.json_response(
                {"reason": str(exc.reason), "message": exc.message}, status=403
            )
        return web.json_response(_describe(info))

    async def disconnect_route(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.text())
            room, identity = str(body["room"]), str(body["identity"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"message": 'expected {"room": …, "identity": …}'}, status=400)
        try:
            info = disconnect(room, identity)
        except RoomServiceError as exc:
            return web.json_response({"reason": exc.code, "message": exc.msg}, status=404)
        return web.json_response(_describe(info))

    app.router.add_post(f"{PREFIX}/connect", connect_route)
    app.router.add_post(f"{PREFIX}/disconnect", disconnect_route)


def _describe(info: models.ParticipantInfo) -> dict[str, str]:
    return {"sid": info.sid, "identity": info.identity, "name": info.name}
