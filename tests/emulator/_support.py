"""Shared helpers for the emulator tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import jwt
from livekit import api

if TYPE_CHECKING:
    import aiohttp

API_KEY = "APItestkey"
# >= 32 bytes: PyJWT warns on shorter HMAC keys and warnings are errors here.
API_SECRET = "emulator-test-secret-0123456789abcdef"
OTHER_SECRET = "some-other-secret-0123456789abcdefgh"
START_TIME_S = 1_700_000_000.0


class FakeClock:
    """Epoch seconds that only move when a test says so."""

    def __init__(self, now_s: float = START_TIME_S) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


def mint(
    grants: api.VideoGrants | None = None,
    *,
    identity: str = "",
    ttl: timedelta = timedelta(minutes=10),
    api_key: str = API_KEY,
    api_secret: str = API_SECRET,
    name: str = "",
    metadata: str = "",
    kind: api.AccessToken.ParticipantKind | None = None,
    attributes: dict[str, str] | None = None,
) -> str:
    """An access token signed like the service (or a client) would sign it."""
    token = api.AccessToken(api_key, api_secret).with_identity(identity).with_ttl(ttl)
    if grants is not None:
        token.with_grants(grants)
    if name:
        token.with_name(name)
    if metadata:
        token.with_metadata(metadata)
    if kind is not None:
        token.with_kind(kind)
    if attributes is not None:
        token.with_attributes(attributes)
    return token.to_jwt()


def hand_signed(claims: dict[str, Any], *, ttl: timedelta = timedelta(minutes=10)) -> str:
    """A token the SDK's AccessToken refuses to build (e.g. roomJoin without identity)."""
    now = int(time.time())
    payload = {"iss": API_KEY, "nbf": now, "exp": now + int(ttl.total_seconds()), **claims}
    return jwt.encode(payload, API_SECRET, algorithm="HS256")


def join_token(room: str, identity: str, **kwargs: Any) -> str:
    """A participant token for ``room``."""
    return mint(api.VideoGrants(room_join=True, room=room), identity=identity, **kwargs)


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    content_type: str
    body: bytes

    def json(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.body)
        return decoded

    @property
    def text(self) -> str:
        return self.body.decode()


async def raw_call(
    http: aiohttp.ClientSession,
    url: str,
    path: str,
    body: bytes = b"",
    *,
    method: str = "POST",
    content_type: str | None = "application/protobuf",
    authorization: str | None = None,
) -> RawResponse:
    """One hand-built HTTP request, for wire details the SDK never produces."""
    headers: dict[str, str] = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if authorization is not None:
        headers["Authorization"] = authorization
    async with http.request(method, url + path, data=body, headers=headers) as response:
        return RawResponse(
            status=response.status,
            content_type=response.headers.get("Content-Type", ""),
            body=await response.read(),
        )


def bearer(grants: api.VideoGrants, **kwargs: Any) -> str:
    return f"Bearer {mint(grants, **kwargs)}"
