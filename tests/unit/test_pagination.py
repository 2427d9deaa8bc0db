"""Page tokens are opaque, signed and bound to their filters."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from favorited import errors
from favorited.domain.pagination import PageTokens

CURSOR = (
    datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC),
    "9b2f1c1e-0000-4000-8000-000000000001",
)


def test_round_trip() -> None:
    tokens = PageTokens(b"k" * 32)
    token = tokens.encode("livestreams", {"status": "LIVE"}, CURSOR)
    assert tokens.decode(token, "livestreams", {"status": "LIVE"}) == CURSOR
    assert tokens.decode("", "livestreams", {}) is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: "x" + t,
        lambda t: "not base64 !!",
        lambda t: base64.urlsafe_b64encode(b"short").decode(),
    ],
)
def test_forged_tokens_are_rejected(mutate: object) -> None:
    tokens = PageTokens(b"k" * 32)
    token = tokens.encode("livestreams", {}, CURSOR)
    with pytest.raises(errors.InvalidArgumentError) as info:
        tokens.decode(mutate(token), "livestreams", {})  # type: ignore[operator]
    assert info.value.reason == "PAGE_TOKEN_INVALID"


def test_tokens_are_bound_to_filters_kind_and_key() -> None:
    tokens = PageTokens(b"k" * 32)
    token = tokens.encode("livestreams", {"created_by": "alice"}, CURSOR)
    for kind, filters, key in (
        ("livestreams", {"created_by": "bob"}, b"k" * 32),
        ("participants", {"created_by": "alice"}, b"k" * 32),
        ("livestreams", {"created_by": "alice"}, b"other-key" * 4),
    ):
        with pytest.raises(errors.InvalidArgumentError):
            PageTokens(key).decode(token, kind, filters)
