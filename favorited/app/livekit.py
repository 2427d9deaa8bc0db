"""The LiveKit client every process that calls LiveKit shares the construction of."""

from __future__ import annotations

import aiohttp
from livekit import api

from favorited.config import Settings


def open_livekit(settings: Settings) -> api.LiveKitAPI:
    """Must be called inside the running loop: livekit-api builds its aiohttp session there."""
    settings.require("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
    assert settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret
    return api.LiveKitAPI(
        settings.livekit_url,
        settings.livekit_api_key,
        settings.livekit_api_secret,
        # Also enforced per call by LiveKitRoomGateway (livekit-api drops this on requests).
        timeout=aiohttp.ClientTimeout(total=settings.livekit_timeout_s),
    )
