"""LiveKit's size limits on names, metadata and attributes (default server config)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import RoomServiceError, TwirpCode

if TYPE_CHECKING:
    from collections.abc import Mapping

MAX_ROOM_NAME_LENGTH = 256
MAX_NAME_LENGTH = 256
MAX_METADATA_BYTES = 512 * 1024
MAX_ATTRIBUTES_BYTES = 64 * 1024


def _size(text: str) -> int:
    # LiveKit's limits are Go len(), i.e. UTF-8 bytes.
    return len(text.encode())


def _invalid(message: str) -> RoomServiceError:
    return RoomServiceError(TwirpCode.INVALID_ARGUMENT, message)


def check_room_name(name: str) -> None:
    """Raise invalid_argument for a room name over the limit."""
    if _size(name) > MAX_ROOM_NAME_LENGTH:
        raise _invalid(f"room name length exceeds limits: max length {MAX_ROOM_NAME_LENGTH}")


def check_name(name: str) -> None:
    """Raise invalid_argument for a participant name over the limit."""
    if _size(name) > MAX_NAME_LENGTH:
        raise _invalid(f"name length exceeds limits: max length {MAX_NAME_LENGTH}")


def check_metadata(metadata: str) -> None:
    """Raise invalid_argument for room or participant metadata over the limit."""
    if _size(metadata) > MAX_METADATA_BYTES:
        raise _invalid(f"metadata size exceeds limits: max size {MAX_METADATA_BYTES}")


def check_attributes(attributes: Mapping[str, str]) -> None:
    """Raise invalid_argument when keys plus values exceed the total limit."""
    if sum(_size(k) + _size(v) for k, v in attributes.items()) > MAX_ATTRIBUTES_BYTES:
        raise _invalid(f"attribute size exceeds limits: max size {MAX_ATTRIBUTES_BYTES}")
