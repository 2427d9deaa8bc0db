"""The LiveKit clients every process that calls LiveKit shares the construction of."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from livekit import api

from favorited.config import Settings
from favorited.livekit.gateway import LiveKitRoomGateway
from favorited.livekit.server_token import ServerToken


@dataclass(frozen=True, slots=True)
class LiveKitClients:
    """The key/secret client, the pre-signed one for room-agnostic calls, and their session."""

    client: api.LiveKitAPI
    server: ServerToken
    session: aiohttp.ClientSession
    timeout_s: float

    def gateway(self) -> LiveKitRoomGateway:
        return LiveKitRoomGateway(self.client, server=self.server.client, timeout_s=self.timeout_s)

    async def aclose(self) -> None:
        await self.session.close()


def open_livekit(settings: Settings) -> LiveKitClients:
    """Must be called inside the running loop: the aiohttp session is built there."""
    settings.require("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
    assert settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret
    # Also enforced per call by LiveKitRoomGateway (livekit-api drops this on requests).
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.livekit_timeout_s))
    client = api.LiveKitAPI(
        settings.livekit_url,
        settings.livekit_api_key,
        settings.livekit_api_secret,
        session=session,
    )
    server = ServerToken(
        url=settings.livekit_url,
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret,
        session=session,
    )
    return LiveKitClients(client, server, session, settings.livekit_timeout_s)
