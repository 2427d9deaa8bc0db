"""Remembering verified caller tokens never accepts what verifying them afresh would refuse."""

from __future__ import annotations

import time

import jwt
import pytest
from jwt.algorithms import HMACAlgorithm

from favorited import errors
from favorited.api.auth import Authenticator

_SECRET = "caller-secret-" + "x" * 32
_LEEWAY_S = 30  # favorited.api.auth's leeway on exp


class _Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _metadata(token: str) -> list[tuple[str, str | bytes]]:
    return [("authorization", f"Bearer {token}")]


def _token(sub: str, exp: float, secret: str = _SECRET) -> str:
    return jwt.encode({"sub": sub, "exp": int(exp)}, secret, algorithm="HS256")


def _reason(auth: Authenticator, token: str) -> str:
    with pytest.raises(errors.UnauthenticatedError) as info:
        auth.authenticate(_metadata(token))
    return info.value.reason


def test_remembered_token_is_refused_once_it_expires() -> None:
    clock = _Clock()
    auth = Authenticator(_SECRET, clock=clock)
    token = _token("alice", clock.now + 60)
    assert auth.authenticate(_metadata(token)).user_id == "alice"
    assert auth.authenticate(_metadata(token)).user_id == "alice"
    assert auth.cached_tokens() == 1

    clock.now += 60 + _LEEWAY_S  # exp == now - leeway: expired, as PyJWT counts it
    assert _reason(auth, token) == "TOKEN_EXPIRED"
    assert auth.cached_tokens() == 0
    assert _reason(auth, token) == "TOKEN_EXPIRED"  # and not remembered again


def test_remembered_token_is_accepted_until_its_expiry_leeway() -> None:
    clock = _Clock()
    auth = Authenticator(_SECRET, clock=clock)
    token = _token("alice", clock.now + 60)
    auth.authenticate(_metadata(token))
    clock.now += 60 + _LEEWAY_S - 1
    assert auth.authenticate(_metadata(token)).user_id == "alice"


def test_other_tokens_are_verified_on_their_own_while_one_is_remembered() -> None:
    clock = _Clock()
    auth = Authenticator(_SECRET, clock=clock)
    token = _token("alice", clock.now + 3600)
    auth.authenticate(_metadata(token))

    header, payload, signature = token.split(".")
    tampered_signature = (
        f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    )
    assert _reason(auth, tampered_signature) == "TOKEN_INVALID"
    forged = _token("alice", clock.now + 3600, secret="another-secret-" + "y" * 32)
    assert _reason(auth, forged) == "TOKEN_INVALID"
    expired = _token("alice", clock.now - 3600)
    assert _reason(auth, expired) == "TOKEN_EXPIRED"
    bob = _token("bob", clock.now + 3600)
    assert auth.authenticate(_metadata(bob)).user_id == "bob"
    assert auth.cached_tokens() == 2


def test_admin_scope_is_remembered_with_the_token() -> None:
    auth = Authenticator(_SECRET)
    admin = jwt.encode(
        {"sub": "ops", "exp": int(time.time()) + 3600, "scope": "favorited:admin"},
        _SECRET,
        algorithm="HS256",
    )
    user = _token("ops", time.time() + 3600)
    for _ in range(2):
        assert auth.authenticate(_metadata(admin)).is_admin
        assert not auth.authenticate(_metadata(user)).is_admin


def test_memory_is_bounded_by_evicting_the_oldest() -> None:
    auth = Authenticator(_SECRET, cache_size=2)
    tokens = [_token(f"user-{i}", time.time() + 3600) for i in range(3)]
    for token in tokens:
        auth.authenticate(_metadata(token))
    assert auth.cached_tokens() == 2
    # Evicted or not, every token still authenticates as itself.
    for i, token in enumerate(tokens):
        assert auth.authenticate(_metadata(token)).user_id == f"user-{i}"


def test_the_secret_is_checked_once_not_per_token(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = [_token(f"user-{i}", time.time() + 3600) for i in range(3)]  # signing checks too
    checked: list[bytes | str] = []
    check = HMACAlgorithm.prepare_key

    def counting(self: HMACAlgorithm, key: str | bytes) -> bytes:
        checked.append(key)
        return check(self, key)

    monkeypatch.setattr(HMACAlgorithm, "prepare_key", counting)
    auth = Authenticator(_SECRET)
    assert [auth.authenticate(_metadata(t)).user_id for t in tokens] == [
        "user-0",
        "user-1",
        "user-2",
    ]
    assert checked == [_SECRET.encode()]


def test_a_secret_that_is_a_key_document_is_refused_when_built() -> None:
    with pytest.raises(jwt.InvalidKeyError):
        Authenticator("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n")
