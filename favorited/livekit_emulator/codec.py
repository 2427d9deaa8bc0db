"""The two Twirp body encodings: binary protobuf (what the SDK sends) and protojson."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from .errors import RoomServiceError, TwirpCode

MessageT = TypeVar("MessageT", bound=Message)


class Codec(Protocol):
    """Decodes requests and encodes replies for one Content-Type."""

    @property
    def content_type(self) -> str: ...

    def decode(self, body: bytes, message_type: type[MessageT]) -> MessageT: ...

    def encode(self, message: Message) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ProtobufCodec:
    """``application/protobuf``."""

    content_type: str = "application/protobuf"

    def decode(self, body: bytes, message_type: type[MessageT]) -> MessageT:
        try:
            return message_type.FromString(body)
        except DecodeError as exc:
            raise RoomServiceError(
                TwirpCode.MALFORMED, "the protobuf request could not be decoded"
            ) from exc

    def encode(self, message: Message) -> bytes:
        return message.SerializeToString()


@dataclass(frozen=True, slots=True)
class JsonCodec:
    """``application/json``, shaped like twirp-go's defaults (proto names, defaults emitted)."""

    content_type: str = "application/json"

    def decode(self, body: bytes, message_type: type[MessageT]) -> MessageT:
        try:
            return json_format.Parse(body, message_type(), ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            raise RoomServiceError(
                TwirpCode.MALFORMED, "the json request could not be decoded"
            ) from exc

    def encode(self, message: Message) -> bytes:
        text = json_format.MessageToJson(
            message,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
            indent=None,
        )
        return text.encode()


def codec_for(content_type: str) -> Codec | None:
    """The codec for a Content-Type header (parameters ignored), or None if unsupported."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/protobuf":
        return ProtobufCodec()
    if media_type == "application/json":
        return JsonCodec()
    return None
