"""The consumer's decoding agrees with livekit-api's own protobuf parse of real-shaped payloads."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format
from livekit import api

from favorited.consumer.messages import UndecodableMessageError, decode


def _livekit_shaped() -> api.WebhookEvent:
    event = api.WebhookEvent(id="EV_abc", event="participant_joined", created_at=1_795_000_000)
    event.room.sid, event.room.name = "RM_room", "stage"
    p = event.participant
    p.sid, p.identity, p.name = "PA_x", "alice", "Alice"
    p.metadata = json.dumps({"avatar": "a.png"})
    p.joined_at, p.joined_at_ms = 1_795_000_001, 1_795_000_001_234
    p.permission.can_publish = True
    return event


@pytest.mark.parametrize("names", ["camel", "snake"])
def test_decode_matches_the_protobuf_parse(names: str) -> None:
    event = _livekit_shaped()
    body = json_format.MessageToJson(event, preserving_proto_field_name=(names == "snake"))
    decoded = decode(body.encode())
    assert (decoded.event_id, decoded.event) == ("EV_abc", "participant_joined")
    assert (decoded.room_sid, decoded.room_name) == ("RM_room", "stage")
    assert (decoded.participant_sid, decoded.identity, decoded.name) == ("PA_x", "alice", "Alice")
    assert decoded.metadata == {"avatar": "a.png"}
    assert decoded.joined_at_ms == 1_795_000_001_234 and decoded.can_publish
    assert decoded.created_at is not None and decoded.created_at.timestamp() == 1_795_000_000


def test_joined_at_seconds_are_used_when_ms_are_absent() -> None:
    body = {"id": "EV_1", "event": "participant_joined", "participant": {"joinedAt": "12"}}
    assert decode(json.dumps(body).encode()).joined_at_ms == 12_000


@pytest.mark.parametrize(
    "body",
    [
        b"{nope",
        b"[]",
        b'{"event": "room_started"}',
        b'{"id": "EV_1", "room": 5}',
        b'{"id": "EV_1", "createdAt": "soon"}',
        b'{"id": "EV_1", "participant": {"permission": {"canPublish": "yes"}}}',
        b"\xff\xfe",
    ],
)
def test_bodies_of_the_wrong_shape_are_undecodable(body: bytes) -> None:
    with pytest.raises(UndecodableMessageError):
        decode(body)
