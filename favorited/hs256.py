"""HS256 JWT verification for one secret, prepared once: caller tokens (api/auth.py) and LiveKit's
webhook signatures (webhooks/verify.py).

PyJWT's module-level `jwt.decode` prepares the key on every call (checks that the secret is not
a PEM, SSH, DER or JWK document: ~20 µs) and checks that each segment is canonical base64url
with a Python loop over every character (about a quarter of a verification). Here the secret's
checks run once, when the decoder is built, and each segment is checked with PyJWT's own rules by
a regular expression and a round trip through the (C) base64 codec; HS256 is the only algorithm
the decoder knows, whatever a token's header claims (RFC 8725 §2.1).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm
from jwt.types import Options

_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")


class SegmentCheckingJWS(jwt.PyJWS):
    """PyJWS with its segment decoding, same rules, done without a per-character Python loop."""

    @staticmethod
    def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
        # PyJWT's rules (2.15): at most two '=' and only in a whole 4-character group, nothing
        # outside the base64url alphabet, and the canonical encoding only (no stray low bits).
        stripped = segment.rstrip(b"=")
        padding = len(segment) - len(stripped)
        if (
            padding > 2
            or (padding and len(segment) % 4)
            or len(stripped) % 4 == 1
            or not _BASE64URL.fullmatch(stripped)
        ):
            raise jwt.DecodeError(f"Invalid {name} padding")
        try:
            decoded = base64.urlsafe_b64decode(stripped + b"=" * (-len(stripped) % 4))
        except binascii.Error as exc:
            raise jwt.DecodeError(f"Invalid {name} padding") from exc
        if base64.urlsafe_b64encode(decoded).rstrip(b"=") != stripped:
            raise jwt.DecodeError(f"Invalid {name} padding")
        return decoded


class PreparedHS256(HMACAlgorithm):
    """HS256 for one secret, checked once. PyJWT prepares the key it is given on every decode;
    given this object's own `secret`, nothing is left to check."""

    def __init__(self, secret: bytes) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self.secret = super().prepare_key(secret)

    def prepare_key(self, key: str | bytes) -> bytes:
        if key is self.secret:
            return self.secret
        return super().prepare_key(key)


class HS256Decoder:
    """Decodes and verifies HS256 tokens signed with `secret` (raises jwt.InvalidKeyError at once
    if the secret is a key document). `options` are PyJWT's (`require`, `verify_exp`, ...)."""

    def __init__(self, secret: bytes, *, options: Options) -> None:
        hs256 = PreparedHS256(secret)
        self._key = hs256.secret
        self._jwt = jwt.PyJWT(options=options)
        # PyJWT has no public hook for its JWS decoder (pinned <3); a unit test checks that this
        # one decodes every segment exactly as PyJWT's own does.
        jws = SegmentCheckingJWS(algorithms=["HS256"], options=self._jwt._get_sig_options())
        jws.unregister_algorithm("HS256")
        jws.register_algorithm("HS256", hs256)
        self._jwt._jws = jws

    def decode(self, token: str, *, leeway: float, issuer: str | None = None) -> dict[str, Any]:
        """The token's claims; raises a jwt.PyJWTError subclass if it does not verify."""
        claims: dict[str, Any] = self._jwt.decode(
            token, key=self._key, algorithms=["HS256"], issuer=issuer, leeway=leeway
        )
        return claims
