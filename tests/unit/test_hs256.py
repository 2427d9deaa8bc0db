"""HS256 tokens for one prepared secret (favorited/hs256.py): PyJWT's rules, checked once."""

from __future__ import annotations

import base64
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jwt.algorithms import HMACAlgorithm

from favorited.hs256 import HS256Decoder, PreparedHS256, SegmentCheckingJWS

_SECRET = "hs256-secret-" + "x" * 32
_PEM = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"


_SEGMENT_CHARS = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" + "=+/!. \n\x00é"
)


@given(
    st.one_of(
        st.binary(max_size=24).map(base64.urlsafe_b64encode),  # padded, canonical
        st.binary(max_size=24).map(lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")),
        st.text(alphabet=_SEGMENT_CHARS, max_size=24).map(str.encode),  # anything, junk included
    )
)
def test_segment_decoding_is_pyjwts(segment: bytes) -> None:
    def outcome(decode: Any) -> bytes | str:
        try:
            return bytes(decode(segment, "payload"))
        except jwt.DecodeError:
            return "refused"

    assert outcome(SegmentCheckingJWS._decode_base64url_segment) == outcome(
        jwt.PyJWS._decode_base64url_segment
    )


def test_a_decoder_refuses_every_algorithm_but_hs256_whatever_the_header_says() -> None:
    decoder = HS256Decoder(_SECRET.encode(), options={"require": ["exp"]})
    claims = {"sub": "a", "exp": 2_000_000_000}
    assert decoder.decode(jwt.encode(claims, _SECRET, algorithm="HS256"), leeway=0) == claims
    for token in (
        jwt.encode(claims, _SECRET * 2, algorithm="HS512"),
        jwt.encode(claims, None, algorithm="none"),
    ):
        with pytest.raises(jwt.InvalidAlgorithmError):
            decoder.decode(token, leeway=0)


def test_any_key_but_the_prepared_secret_itself_is_checked_again() -> None:
    hs256 = PreparedHS256(_SECRET.encode())
    with pytest.raises(jwt.InvalidKeyError):
        hs256.prepare_key(_PEM.encode())
    copy = bytes(bytearray(hs256.secret))  # equal bytes, another object
    checked: list[bytes | str] = []
    original = HMACAlgorithm.prepare_key

    def counting(self: HMACAlgorithm, key: str | bytes) -> bytes:
        checked.append(key)
        return original(self, key)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HMACAlgorithm, "prepare_key", counting)
        assert hs256.prepare_key(copy) == hs256.secret
        assert hs256.prepare_key(hs256.secret) is hs256.secret
    assert checked == [copy]
