"""What a webhook request looks like on the wire: protojson body, signed JWT, headers.

Mirrors livekit/protocol ``webhook/resource_url_notifier.go``: the body is ``protojson``
(lowerCamelCase names, int64 as strings, enums as names, defaults omitted) and the
``Authorization`` header carries, without a ``Bearer`` prefix, a 5-minute HS256 token whose
``sha256`` claim is the base64 SHA-256 of exactly the bytes sent.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING

import jwt
from google.protobuf import json_format
from livekit import api

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .events import RoomEvent

CONTENT_TYPE = "application/webhook+json"
USER_AGENT = "LiveKit"
TOKEN_TTL = timedelta(minutes=5)
# Beyond TokenVerifier's 60 s leeway, so EXPIRED and NOT_YET_VALID really fail.
_SKEW = timedelta(minutes=10)


class SignatureFault(enum.StrEnum):
    """Ways to get the signature wrong, for testing that a receiver rejects them."""

    NONE = "none"
    WRONG_SECRET = "wrong_secret"  # jwt.InvalidSignatureError
    OTHER_API_KEY = "other_api_key"  # iss is another key: jwt.InvalidIssuerError
    EXPIRED = "expired"  # jwt.ExpiredSignatureError
    NOT_YET_VALID = "not_yet_valid"  # nbf in the future: jwt.ImmatureSignatureError
    MISSING_SHA256 = "missing_sha256"  # Exception("sha256 was not found in the token")
    TAMPERED_BODY = "tampered_body"  # body changed after signing: Exception("hash mismatch")


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The exact body and headers of one event's POST, reused for every retry."""

    body: bytes
    headers: Mapping[str, str]

    @property
    def authorization(self) -> str:
        """The raw ``Authorization`` header value (a bare JWT)."""
        return self.headers["Authorization"]


def to_webhook_event(event: RoomEvent) -> api.WebhookEvent:
    """The ``livekit.WebhookEvent`` LiveKit would send for this room event."""
    message = api.WebhookEvent(event=event.kind.value, id=event.id, created_at=event.created_at)
    message.room.CopyFrom(event.room)
    if event.participant is not None:
        message.participant.CopyFrom(event.participant)
    return message


def encode(message: api.WebhookEvent) -> bytes:
    """protojson-shaped bytes; compact, so a receiver that re-serializes won't match."""
    fields = json_format.MessageToDict(message)
    # Go's protojson writes raw UTF-8, not \\u escapes.
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()


def body_digest(body: bytes) -> str:
    """The ``sha256`` claim: standard base64 of the body's SHA-256."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def sign(
    message: api.WebhookEvent,
    *,
    api_key: str,
    api_secret: str,
    fault: SignatureFault = SignatureFault.NONE,
) -> SignedRequest:
    """Encode and sign one event; the token is minted now, so sign just before sending."""
    body = encode(message)
    token = api.AccessToken(api_key, api_secret).with_ttl(TOKEN_TTL)
    match fault:
        case SignatureFault.NONE:
            token.with_sha256(body_digest(body))
        case SignatureFault.WRONG_SECRET:
            token = api.AccessToken(api_key, "wrong-" + api_secret).with_sha256(body_digest(body))
        case SignatureFault.OTHER_API_KEY:
            token = api.AccessToken(api_key + "-other", api_secret).with_sha256(body_digest(body))
        case SignatureFault.EXPIRED:
            token.with_ttl(-_SKEW).with_sha256(body_digest(body))
        case SignatureFault.NOT_YET_VALID:
            return _request(body, _future_token(body, api_key, api_secret))
        case SignatureFault.MISSING_SHA256:
            pass
        case SignatureFault.TAMPERED_BODY:
            token.with_sha256(body_digest(body))
            altered = api.WebhookEvent()
            altered.CopyFrom(message)
            altered.created_at += 1
            return _request(encode(altered), token.to_jwt())
    return _request(body, token.to_jwt())


def _future_token(body: bytes, api_key: str, api_secret: str) -> str:
    # AccessToken always sets nbf to now, so this one is built by hand.
    now = int(time.time())
    nbf = now + int(_SKEW.total_seconds())
    claims = {"iss": api_key, "nbf": nbf, "exp": nbf + int(TOKEN_TTL.total_seconds())}
    return jwt.encode({**claims, "sha256": body_digest(body)}, api_secret, algorithm="HS256")


def _request(body: bytes, token: str) -> SignedRequest:
    headers = {
        "Authorization": token,
        "Content-Type": CONTENT_TYPE,
        "User-Agent": USER_AGENT,
    }
    return SignedRequest(body=body, headers=MappingProxyType(headers))
