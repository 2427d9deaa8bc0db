"""Both of LiveKit's auth layers (``pkg/service/auth.go``).

1. The API-key middleware reads ``Authorization: Bearer <jwt>``. A missing header means "no
   grants" and the request carries on; anything malformed is a plain-text 401.
2. Each RoomService method then checks the grants it needs, failing with the Twirp
   ``unauthenticated`` error (401, "permissions denied"), not ``permission_denied``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
from google.protobuf import json_format
from livekit import api

from .errors import (
    EmulatorJoinError,
    HeaderAuthError,
    JoinFailure,
    RoomServiceError,
    TwirpCode,
)

if TYPE_CHECKING:
    from livekit.api.access_token import Claims

BEARER_PREFIX = "Bearer "
MAX_IDENTITY_LENGTH = 256
# PyJWT warns about shorter HMAC keys, and a real LiveKit server refuses them outside dev mode.
MIN_SECRET_BYTES = 32
# TokenVerifier's leeway (livekit-api's DEFAULT_LEEWAY), applied again to remembered tokens.
LEEWAY_S = 60
# Verified tokens remembered by their exact text; when full, the oldest goes.
VERIFIED_CACHE_SIZE = 1024


def validate_credentials(api_key: str, api_secret: str) -> None:
    """Raise ValueError for credentials the emulator (and a real LiveKit) would refuse."""
    if not api_key:
        raise ValueError("api_key must not be empty")
    if len(api_secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"api_secret must be at least {MIN_SECRET_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class Credentials:
    """A verified token: the SDK's parsed view plus the raw claims for recording."""

    claims: Claims
    raw: dict[str, Any]


class ApiKeyAuthenticator:
    """Verifies tokens signed with the emulator's single API key/secret pair.

    A token that verified is remembered by its exact text, and on its next use only its time
    claims are checked again (PyJWT's rules, same leeway): the same bytes under the same secret
    verify to the same claims. livekit-api signs a token per call, but with whole-second `nbf`
    and `exp`, so a second's calls with the same grants send the same text; verifying it again
    each time was a quarter of the emulator's CPU under the `create` benchmark, on the cores the
    service under test shares (a real LiveKit runs elsewhere).
    """

    def __init__(self, api_key: str, api_secret: str) -> None:
        self._api_key = api_key
        # TokenVerifier checks against the wall clock, not the emulator clock: that is what
        # the service's own token minting uses too.
        self._verifier = api.TokenVerifier(api_key, api_secret)
        self._verified: dict[str, Credentials] = {}

    def authenticate_header(self, header: str | None) -> Credentials | None:
        """Apply the middleware to an ``Authorization`` header value.

        Returns:
            The verified credentials, or None when no token was sent.

        Raises:
            HeaderAuthError: the header or token is unacceptable.
        """
        if not header:
            return None
        if not header.startswith(BEARER_PREFIX):
            raise HeaderAuthError(f"invalid authorization header. Must start with {BEARER_PREFIX}")
        token = header[len(BEARER_PREFIX) :]
        # LiveKit treats "Bearer " with nothing after it like a missing header.
        if not token:
            return None
        return self.verify_token(token)

    def verify_token(self, token: str) -> Credentials:
        """Verify a JWT the way LiveKit does (HS256, issuer = API key, exp required, 60 s leeway).

        Raises:
            HeaderAuthError: with the middleware's message for this failure.
        """
        remembered = self._verified.get(token)
        if remembered is not None:
            if _in_time(remembered.raw, time.time()):
                return remembered
            del self._verified[token]  # verified again below, for the failure's own message
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise HeaderAuthError("invalid authorization token") from exc
        # The issuer picks the secret, so an unknown one is reported before the signature.
        if unverified.get("iss") != self._api_key:
            raise HeaderAuthError("invalid API key")
        try:
            claims = self._verifier.verify(token)
        except jwt.PyJWTError as exc:
            raise HeaderAuthError(f"invalid authorization token: {exc}") from exc
        except (TypeError, ValueError, AttributeError, json_format.ParseError) as exc:
            # Signed, but the grant claims have the wrong shape for LiveKit's claim structs.
            raise HeaderAuthError(f"invalid authorization token: {exc}") from exc
        credentials = Credentials(claims=claims, raw=dict(unverified))
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = credentials
        return credentials

    def verify_join_token(self, token: str) -> Claims:
        """Check a participant token like the signal endpoint (``ValidateConnectRequest``).

        Raises:
            EmulatorJoinError: token invalid, no roomJoin grant, no identity or no room.
        """
        try:
            claims = self.verify_token(token).claims
        except HeaderAuthError as exc:
            raise EmulatorJoinError(JoinFailure.INVALID_TOKEN, exc.message) from exc
        video = claims.video
        if video is None or not video.room_join:
            raise EmulatorJoinError(JoinFailure.PERMISSION_DENIED, "permissions denied")
        if not claims.identity:
            raise EmulatorJoinError(JoinFailure.IDENTITY_EMPTY, "identity cannot be empty")
        if len(claims.identity.encode()) > MAX_IDENTITY_LENGTH:
            raise EmulatorJoinError(
                JoinFailure.IDENTITY_TOO_LONG,
                f"participant identity length exceeds limits: max length {MAX_IDENTITY_LENGTH}",
            )
        if not video.room:
            raise EmulatorJoinError(JoinFailure.NO_ROOM_NAME, "no room name")
        return claims


def _in_time(claims: dict[str, Any], now: float) -> bool:
    """PyJWT's time checks with the verifier's leeway; a verified token's are int()-able."""
    if int(claims["exp"]) <= now - LEEWAY_S:
        return False
    return all(int(claims[name]) <= now + LEEWAY_S for name in ("nbf", "iat") if name in claims)


def _permission_denied() -> RoomServiceError:
    return RoomServiceError(TwirpCode.UNAUTHENTICATED, "permissions denied")


def require_room_create(credentials: Credentials | None) -> None:
    """Grant check of CreateRoom and DeleteRoom."""
    video = credentials.claims.video if credentials else None
    if video is None or not video.room_create:
        raise _permission_denied()


def require_room_list(credentials: Credentials | None) -> None:
    """Grant check of ListRooms."""
    video = credentials.claims.video if credentials else None
    if video is None or not video.room_list:
        raise _permission_denied()


def require_room_admin(credentials: Credentials | None, room: str) -> None:
    """Grant check of participant and room-admin methods: roomAdmin for exactly this room."""
    video = credentials.claims.video if credentials else None
    if video is None or not video.room_admin or video.room != room:
        raise _permission_denied()
