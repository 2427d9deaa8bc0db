"""Verify a LiveKit webhook against the raw body bytes.

The same checks as livekit-api's WebhookReceiver (which this module does not call, because it
raises bare `Exception`s that cannot be told apart from bugs): the Authorization header is the bare
JWT (no "Bearer "), verified as livekit-api's TokenVerifier does (HS256 with the API secret,
issuer = API key, exp required, exp/nbf/iat with its one-minute leeway); its `sha256` claim must
equal base64(sha256(body)) of the bytes received, compared in constant time; only then is the body
read (just its id and event name; the consumer decodes the rest).

The token goes to PyJWT directly through favorited/hs256.py, with the key, algorithm and options
built once (TokenVerifier makes the same `jwt.decode` call, then builds grant dataclasses a
webhook never carries): the secret's own checks run once, not per token (20 of ~55 µs per
verification), and the segments' base64url check is one regular expression (that loop alone was
about a quarter of the verification).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

import jwt
from livekit.api.access_token import DEFAULT_LEEWAY

from favorited.hs256 import HS256Decoder


class SignatureError(Exception):
    """Missing, forged, expired or wrong-key signature, or a body that does not match it → 401."""


class MalformedEventError(Exception):
    """Correctly signed, but not a LiveKit webhook event → 400."""


@dataclass(frozen=True, slots=True)
class VerifiedEvent:
    event_id: str
    event: str
    body: bytes


class WebhookVerifier:
    def __init__(self, api_key: str, api_secret: str) -> None:
        self._api_key = api_key
        self._decoder = HS256Decoder(api_secret.encode(), options={"require": ["exp"]})
        self._leeway_s = DEFAULT_LEEWAY.total_seconds()

    def verify(self, body: bytes, authorization: str | None) -> VerifiedEvent:
        if not authorization:
            raise SignatureError("missing Authorization header")
        try:
            claims = self._decoder.decode(
                authorization, issuer=self._api_key, leeway=self._leeway_s
            )
        except jwt.PyJWTError as exc:
            raise SignatureError(f"invalid token: {type(exc).__name__}") from None
        digest = claims.get("sha256")
        if not isinstance(digest, str) or not digest:
            raise SignatureError("token has no sha256 claim")
        try:
            expected = base64.b64decode(digest, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("sha256 claim is not base64") from None
        if not hmac.compare_digest(hashlib.sha256(body).digest(), expected):
            raise SignatureError("body does not match the signed hash")
        # The shim needs only the id and the event name; the consumer decodes the rest. A plain
        # JSON read is a tenth of the cost of a full protobuf parse on this hot path.
        try:
            event = json.loads(body)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise MalformedEventError(f"not JSON: {type(exc).__name__}") from None
        event_id = event.get("id") if isinstance(event, dict) else None
        name = event.get("event") if isinstance(event, dict) else None
        if not isinstance(event_id, str) or not event_id or not isinstance(name, str) or not name:
            raise MalformedEventError("event id or name missing")
        return VerifiedEvent(event_id=event_id, event=name, body=body)
