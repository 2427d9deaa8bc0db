"""Exceptions raised by the LiveKit emulator.

EmulatorError
├── RoomServiceError     a Twirp error answered to a RoomService call (code, msg, meta)
├── HeaderAuthError      the auth middleware's plain-text 401 (bad header or token)
└── EmulatorJoinError    a simulated client could not join a room (reason, message)
"""

from __future__ import annotations

import enum
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping


class TwirpCode(enum.StrEnum):
    """Twirp error codes (the JSON ``code`` field)."""

    CANCELED = "canceled"
    UNKNOWN = "unknown"
    INVALID_ARGUMENT = "invalid_argument"
    MALFORMED = "malformed"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    NOT_FOUND = "not_found"
    BAD_ROUTE = "bad_route"
    ALREADY_EXISTS = "already_exists"
    PERMISSION_DENIED = "permission_denied"
    UNAUTHENTICATED = "unauthenticated"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    FAILED_PRECONDITION = "failed_precondition"
    ABORTED = "aborted"
    OUT_OF_RANGE = "out_of_range"
    UNIMPLEMENTED = "unimplemented"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"
    DATA_LOSS = "dataloss"


HTTP_STATUS: Mapping[TwirpCode, int] = MappingProxyType(
    {
        TwirpCode.CANCELED: 408,
        TwirpCode.UNKNOWN: 500,
        TwirpCode.INVALID_ARGUMENT: 400,
        TwirpCode.MALFORMED: 400,
        TwirpCode.DEADLINE_EXCEEDED: 408,
        TwirpCode.NOT_FOUND: 404,
        TwirpCode.BAD_ROUTE: 404,
        TwirpCode.ALREADY_EXISTS: 409,
        TwirpCode.PERMISSION_DENIED: 403,
        TwirpCode.UNAUTHENTICATED: 401,
        TwirpCode.RESOURCE_EXHAUSTED: 429,
        TwirpCode.FAILED_PRECONDITION: 412,
        TwirpCode.ABORTED: 409,
        TwirpCode.OUT_OF_RANGE: 400,
        TwirpCode.UNIMPLEMENTED: 501,
        TwirpCode.INTERNAL: 500,
        TwirpCode.UNAVAILABLE: 503,
        TwirpCode.DATA_LOSS: 500,
    }
)


class EmulatorError(Exception):
    """Root of every error the emulator raises on purpose."""


class RoomServiceError(EmulatorError):
    """A RoomService failure, sent to the client as a Twirp JSON error."""

    def __init__(self, code: TwirpCode, msg: str, meta: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.meta: Mapping[str, str] = MappingProxyType(dict(meta or {}))

    @property
    def status(self) -> int:
        """HTTP status Twirp uses for this code."""
        return HTTP_STATUS[self.code]

    def to_json(self) -> dict[str, object]:
        """Twirp error body; ``meta`` is omitted when empty, as twirp-go does."""
        body: dict[str, object] = {"code": str(self.code), "msg": self.msg}
        if self.meta:
            body["meta"] = dict(self.meta)
        return body


class HeaderAuthError(EmulatorError):
    """Rejected by the API-key middleware; answered as plain text, not Twirp JSON."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JoinFailure(enum.StrEnum):
    """Why a simulated client could not join."""

    INVALID_TOKEN = "INVALID_TOKEN"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    IDENTITY_EMPTY = "IDENTITY_EMPTY"
    IDENTITY_TOO_LONG = "IDENTITY_TOO_LONG"
    NO_ROOM_NAME = "NO_ROOM_NAME"
    ROOM_NOT_FOUND = "ROOM_NOT_FOUND"
    ROOM_FULL = "ROOM_FULL"


class EmulatorJoinError(EmulatorError):
    """A join attempt was refused the way LiveKit would refuse it."""

    def __init__(self, reason: JoinFailure, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
