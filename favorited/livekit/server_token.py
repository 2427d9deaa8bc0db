"""LiveKit's room-agnostic calls under one pre-signed token, renewed at half its life."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import aiohttp
from livekit import api

# What CreateRoom, DeleteRoom and ListRooms check (LiveKit's RoomService, and the emulator).
SERVER_GRANTS = api.VideoGrants(room_create=True, room_list=True)
SERVER_TOKEN_TTL = timedelta(minutes=10)


class ServerToken:
    """A LiveKitAPI whose every call carries one token with SERVER_GRANTS.

    livekit-api signs a new JWT for every call made with a key and secret (its grants as a
    dataclass, then PyJWT): 7 % of the API process's CPU under the `create` benchmark, for the
    same token every time within a second. The room-agnostic calls take this client instead; it
    is rebuilt with a new token once half of the current one's life has gone, so a token in use
    always has minutes left (LiveKit also allows a minute of clock skew). The renewal follows
    the wall clock, as the token's `exp` does: a monotonic clock stops while the host sleeps.
    Room-scoped calls (roomAdmin for one room) keep the per-call signing. Clients share one
    aiohttp session, which their owner closes.
    """

    def __init__(
        self,
        *,
        url: str,
        api_key: str,
        api_secret: str,
        session: aiohttp.ClientSession,
        ttl: timedelta = SERVER_TOKEN_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = url
        self._api_key = api_key
        self._api_secret = api_secret
        self._session = session
        self._ttl = ttl
        self._clock = clock
        self._client: api.LiveKitAPI | None = None
        self._renew_at = 0.0

    def client(self) -> api.LiveKitAPI:
        now = self._clock()
        if self._client is None or now >= self._renew_at:
            token = (
                api.AccessToken(self._api_key, self._api_secret)
                .with_grants(SERVER_GRANTS)
                .with_ttl(self._ttl)
                .to_jwt()
            )
            # Nothing to close: the session is shared and owned elsewhere.
            self._client = api.LiveKitAPI.with_token(token, self._url, session=self._session)
            self._renew_at = now + self._ttl.total_seconds() / 2
        return self._client
