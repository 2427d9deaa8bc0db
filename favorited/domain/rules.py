"""Input rules: room-name sanitising, bounds, and field validation that reports every violation."""

from __future__ import annotations

import json
import re
import uuid

from favorited import errors
from favorited.domain import models

ROOM_NAME_MAX = 128
ROOM_NAME_INPUT_MAX = 512
TITLE_MAX = 200
DESCRIPTION_MAX = 5000
DISPLAY_NAME_MAX = 128
METADATA_MAX_BYTES = 16 * 1024
REQUEST_ID_MAX = 128
USER_ID_MAX = 256
MAX_PARTICIPANTS_DEFAULT = 100
MAX_PARTICIPANTS_LIMIT = 10_000
EMPTY_TIMEOUT_DEFAULT_S = 86_400
EMPTY_TIMEOUT_MAX_S = 7 * 86_400
PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 100
IDEMPOTENCY_TTL_S = 24 * 3600

_NOT_ROOM_CHAR = re.compile(r"[^a-z0-9_-]")
_DASH_RUN = re.compile(r"-{2,}")


def sanitize_room_name(raw: str) -> str:
    """LiveKit-safe room name: trim, lower-case, [^a-z0-9_-] → '-', collapse and strip '-'."""
    name = _NOT_ROOM_CHAR.sub("-", raw.strip().lower())
    return _DASH_RUN.sub("-", name).strip("-")


class Violations:
    """Collects field violations so a caller learns about every bad field at once."""

    def __init__(self) -> None:
        self._items: list[errors.FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self._items.append(errors.FieldViolation(field, description))

    def text(self, field: str, value: str, *, required: bool, max_len: int) -> None:
        if "\x00" in value:
            self.add(field, "must not contain NUL characters")
        elif required and not value.strip():
            self.add(field, "is required")
        elif len(value) > max_len:
            self.add(field, f"must be at most {max_len} characters")

    def uuid(self, field: str, value: str) -> None:
        if not value:
            self.add(field, "is required")
            return
        try:
            uuid.UUID(value)
        except ValueError:
            self.add(field, "must be a UUID")

    def metadata(self, field: str, value: models.JsonObject) -> None:
        encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        # PostgreSQL jsonb cannot hold \u0000; reject it here rather than fail in the database.
        if "\\u0000" in encoded:
            self.add(field, "must not contain NUL characters")
        elif len(encoded.encode()) > METADATA_MAX_BYTES:
            self.add(field, f"must be at most {METADATA_MAX_BYTES} bytes as JSON")

    def __bool__(self) -> bool:
        return bool(self._items)

    def raise_if_any(self) -> None:
        if self._items:
            raise errors.InvalidArgumentError(list(self._items))


def room_name(v: Violations, field: str, raw: str) -> str:
    if len(raw) > ROOM_NAME_INPUT_MAX:
        v.add(field, f"must be at most {ROOM_NAME_INPUT_MAX} characters")
        return ""
    name = sanitize_room_name(raw)
    if not name:
        v.add(field, "must contain at least one letter, digit, '_' or '-'")
    elif len(name) > ROOM_NAME_MAX:
        v.add(field, f"must be at most {ROOM_NAME_MAX} characters after sanitising")
    return name


def max_participants(v: Violations, field: str, value: int, *, default: bool) -> int:
    if value == 0 and default:
        return MAX_PARTICIPANTS_DEFAULT
    if not 1 <= value <= MAX_PARTICIPANTS_LIMIT:
        v.add(field, f"must be between 1 and {MAX_PARTICIPANTS_LIMIT}")
    return value


def empty_timeout(v: Violations, field: str, seconds: int, nanos: int) -> int:
    if nanos:
        v.add(field, "must be a whole number of seconds")
    elif not 1 <= seconds <= EMPTY_TIMEOUT_MAX_S:
        v.add(field, f"must be between 1s and {EMPTY_TIMEOUT_MAX_S}s")
    return seconds


def page_size(v: Violations, field: str, value: int) -> int:
    if value < 0:
        v.add(field, "must not be negative")
    if value == 0:
        return PAGE_SIZE_DEFAULT
    return min(value, PAGE_SIZE_MAX)


def request_id(v: Violations, field: str, value: str) -> str | None:
    v.text(field, value, required=False, max_len=REQUEST_ID_MAX)
    return value or None


def metadata_json(value: models.JsonObject) -> str:
    """Metadata as LiveKit takes it: compact JSON, or the empty string for no metadata."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False) if value else ""
