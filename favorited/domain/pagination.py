"""Opaque, tamper-proof keyset page tokens.

A token carries the keyset cursor (the last row's sort key) and a fingerprint of the request's
filters, signed with HMAC-SHA256. A forged or edited token, or one replayed with other filters, is
rejected with INVALID_ARGUMENT; clients cannot construct offsets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from favorited import errors
from favorited.domain import models

T = TypeVar("T")

_MAC_BYTES = 16


class PageTokens:
    """Encodes and verifies page tokens for one signing key."""

    def __init__(self, key: bytes) -> None:
        # Derive a dedicated key so page tokens can never be confused with any other MAC we make.
        self._key = hmac.new(key, b"favorited page tokens v1", hashlib.sha256).digest()

    def encode(self, kind: str, filters: dict[str, str], cursor: tuple[datetime, str]) -> str:
        payload = json.dumps(
            [kind, _fingerprint(filters), cursor[0].isoformat(), cursor[1]], separators=(",", ":")
        ).encode()
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")

    def decode(
        self, token: str, kind: str, filters: dict[str, str], *, field: str = "page_token"
    ) -> tuple[datetime, str] | None:
        """The cursor in `token`, or None for an empty token (first page)."""
        if not token:
            return None
        invalid = errors.InvalidArgumentError.single(
            field,
            "is not a page token issued for this request; start again without one",
            reason="PAGE_TOKEN_INVALID",
        )
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise invalid from None
        mac, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
        if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, expected):
            raise invalid
        try:
            token_kind, fingerprint, at, last_id = json.loads(payload)
            cursor = (datetime.fromisoformat(at), str(last_id))
        except (ValueError, TypeError):
            raise invalid from None
        if token_kind != kind or fingerprint != _fingerprint(filters):
            raise invalid
        return cursor

    def page(
        self,
        rows: list[T],
        size: int,
        kind: str,
        filters: dict[str, str],
        key: Callable[[T], tuple[datetime, str]],
    ) -> models.Page[T]:
        """Cut `rows` (fetched with limit size + 1) to a page; the extra row says there is more."""
        items = rows[:size]
        token = self.encode(kind, filters, key(items[-1])) if len(rows) > size else ""
        return models.Page(items=items, next_page_token=token)


def _fingerprint(filters: dict[str, str]) -> str:
    canonical = json.dumps(sorted(filters.items()), separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()[:16]
