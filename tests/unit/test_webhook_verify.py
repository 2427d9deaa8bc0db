"""The shim's signature check: what livekit-api's TokenVerifier accepts and refuses, and no more."""

from __future__ import annotations

import base64
import hashlib
import time
import warnings
from typing import Any

import jwt
import pytest
from jwt.algorithms import HMACAlgorithm
from jwt.warnings import InsecureKeyLengthWarning
from livekit import api

from favorited.webhooks.verify import MalformedEventError, SignatureError, WebhookVerifier
from tests.conftest import LIVEKIT_KEY, LIVEKIT_SECRET
from tests.support.livekit_webhooks import event_body, sid, sign

BODY = event_body("room_started", room_sid=sid("RM_"), room_name="r")[1]


def _digest(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def _token(
    secret: str = LIVEKIT_SECRET,
    algorithm: str = "HS256",
    omit: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    now = int(time.time())
    payload = {"iss": LIVEKIT_KEY, "nbf": now, "exp": now + 300, "sha256": _digest(BODY), **claims}
    for name in omit:
        payload.pop(name)
    if algorithm == "none":
        return jwt.encode(payload, None, algorithm="none")
    # PyJWT warns about the test secret's length for HS512; the refusal is what is under test.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(payload, secret, algorithm=algorithm)


@pytest.fixture
def verifier() -> WebhookVerifier:
    return WebhookVerifier(LIVEKIT_KEY, LIVEKIT_SECRET)


def test_accepts_what_livekit_signs(verifier: WebhookVerifier) -> None:
    verified = verifier.verify(BODY, sign(BODY, LIVEKIT_KEY, LIVEKIT_SECRET))
    assert (verified.event, verified.body) == ("room_started", BODY)


@pytest.mark.parametrize(
    ("why", "token"),
    [
        ("wrong secret", lambda: _token(secret="x" * 40)),
        ("other issuer", lambda: _token(iss="APIother")),
        ("no issuer", lambda: _token(omit=("iss",))),
        ("no exp", lambda: _token(omit=("exp",))),
        ("expired beyond the leeway", lambda: _token(exp=int(time.time()) - 61)),
        ("not yet valid beyond the leeway", lambda: _token(nbf=int(time.time()) + 61)),
        ("HS512", lambda: _token(algorithm="HS512")),
        ("unsigned", lambda: _token(algorithm="none")),
        ("no sha256", lambda: _token(omit=("sha256",))),
        ("sha256 not base64", lambda: _token(sha256="!!not base64!!")),
        ("sha256 of other bytes", lambda: _token(sha256=_digest(BODY + b" "))),
        ("garbage", lambda: "not.a.jwt"),
    ],
)
def test_refuses(verifier: WebhookVerifier, why: str, token: Any) -> None:
    with pytest.raises(SignatureError):
        verifier.verify(BODY, token())


def test_allows_livekits_leeway_for_clock_skew(verifier: WebhookVerifier) -> None:
    now = int(time.time())
    verifier.verify(BODY, _token(exp=now - 50))
    verifier.verify(BODY, _token(nbf=now + 50))


@pytest.mark.parametrize(
    "token",
    [
        lambda: _token(exp=int(time.time()) - 50),
        lambda: _token(nbf=int(time.time()) + 50),
        lambda: _token(iss="APIother"),
        lambda: _token(omit=("exp",)),
        lambda: _token(algorithm="HS512"),
    ],
)
def test_agrees_with_livekit_token_verifier(verifier: WebhookVerifier, token: Any) -> None:
    jwt_text = token()
    try:
        api.TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET).verify(jwt_text)
    except jwt.PyJWTError:
        with pytest.raises(SignatureError):
            verifier.verify(BODY, jwt_text)
    else:
        verifier.verify(BODY, jwt_text)


def test_correctly_signed_non_event_is_malformed(verifier: WebhookVerifier) -> None:
    body = b'{"event": "room_started"}'
    with pytest.raises(MalformedEventError):
        verifier.verify(body, sign(body, LIVEKIT_KEY, LIVEKIT_SECRET))


def test_segments_outside_the_alphabet_are_refused(verifier: WebhookVerifier) -> None:
    header, payload, signature = _token().split(".")
    for forged in (f"{header}.{payload}!.{signature}", f"{header}.{payload}.{signature}+"):
        with pytest.raises(SignatureError):
            verifier.verify(BODY, forged)


def test_the_secret_is_checked_once_not_per_token(monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[bytes | str] = []
    check = HMACAlgorithm.prepare_key

    def counting(self: HMACAlgorithm, key: str | bytes) -> bytes:
        checked.append(key)
        return check(self, key)

    tokens = [_token(jti=str(i)) for i in range(3)]  # signing prepares the key too
    monkeypatch.setattr(HMACAlgorithm, "prepare_key", counting)
    verifier = WebhookVerifier(LIVEKIT_KEY, LIVEKIT_SECRET)
    for token in tokens:
        assert verifier.verify(BODY, token).event == "room_started"
    assert checked == [LIVEKIT_SECRET.encode()]


_PEM = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"


def test_a_secret_that_is_a_key_document_is_refused_when_built() -> None:
    with pytest.raises(jwt.InvalidKeyError):
        WebhookVerifier(LIVEKIT_KEY, _PEM)
