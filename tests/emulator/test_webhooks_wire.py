"""Webhooks as LiveKit puts them on the wire: events, protojson body, signature, headers."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING

import jwt
import pytest
from livekit import api

from favorited.livekit_emulator import (
    LiveKitEmulator,
    RoomEvent,
    SignatureFault,
    WebhookFaults,
    WebhookOptions,
)

from ._receiver import RecordingReceiver
from ._support import API_KEY, API_SECRET, OTHER_SECRET, START_TIME_S, join_token

if TYPE_CHECKING:
    from .conftest import EmulatorFactory


async def _one_of_each(emulator: LiveKitEmulator, lkapi: api.LiveKitAPI) -> None:
    await lkapi.room.create_room(api.CreateRoomRequest(name="stage"))
    emulator.connect(join_token("stage", "alice"))
    emulator.abort(join_token("stage", "bob"))
    emulator.disconnect("stage", "alice")
    await lkapi.room.delete_room(api.DeleteRoomRequest(room="stage"))
    await emulator.webhooks.wait_idle()


async def test_every_event_kind_arrives_verifiable_by_the_sdk(
    hooked: LiveKitEmulator,
    hooked_api: api.LiveKitAPI,
    receiver: RecordingReceiver,
    events: list[RoomEvent],
) -> None:
    await _one_of_each(hooked, hooked_api)

    assert [r.error for r in receiver.requests] == [None] * 5
    assert receiver.names == [
        "room_started",
        "participant_joined",
        "participant_connection_aborted",
        "participant_left",
        "room_finished",
    ]
    assert [e.id for e in receiver.events] == [e.id for e in events]
    room_sid = events[0].room.sid
    for sent, emitted in zip(receiver.events, events, strict=True):
        assert sent.id.startswith("EV_")
        assert sent.created_at == int(START_TIME_S)
        assert sent.room == emitted.room
        assert sent.room.sid == room_sid
        if emitted.participant is None:
            assert not sent.HasField("participant")
        else:
            assert sent.participant == emitted.participant


async def test_participant_events_carry_the_full_participant(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, receiver: RecordingReceiver
) -> None:
    await _one_of_each(hooked, hooked_api)

    joined, aborted, left = receiver.events[1:4]
    assert joined.participant.state == api.ParticipantInfo.ACTIVE
    assert joined.room.num_participants == 1
    assert (aborted.participant.identity, aborted.participant.state) == (
        "bob",
        api.ParticipantInfo.DISCONNECTED,
    )
    assert left.participant.sid == joined.participant.sid
    assert left.participant.disconnect_reason == api.DisconnectReason.CLIENT_INITIATED


async def test_request_headers_are_livekits(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, receiver: RecordingReceiver
) -> None:
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))
    await hooked.webhooks.wait_idle()

    (request,) = receiver.requests
    assert not request.authorization.startswith("Bearer")
    assert request.authorization.count(".") == 2
    assert request.headers["Content-Type"] == "application/webhook+json"
    assert request.headers["User-Agent"] == "LiveKit"


async def test_token_signs_the_exact_body_for_five_minutes(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, receiver: RecordingReceiver
) -> None:
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))
    await hooked.webhooks.wait_idle()

    (request,) = receiver.requests
    claims = jwt.decode(request.authorization, API_SECRET, algorithms=["HS256"], issuer=API_KEY)
    assert claims["sha256"] == base64.b64encode(hashlib.sha256(request.body).digest()).decode()
    assert claims["exp"] - claims["nbf"] == 300
    assert "video" not in claims


async def test_body_is_protojson(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, receiver: RecordingReceiver
) -> None:
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage", max_participants=3))
    hooked.connect(join_token("stage", "alice"))
    await hooked.webhooks.wait_idle()

    body = json.loads(receiver.requests[1].body)
    assert body["event"] == "participant_joined"
    # int64 as strings, lowerCamelCase names, enums by name, zero values left out.
    assert body["createdAt"] == str(int(START_TIME_S))
    assert body["room"]["creationTime"] == str(int(START_TIME_S))
    assert body["room"]["maxParticipants"] == 3
    assert body["participant"]["state"] == "ACTIVE"
    assert body["participant"]["joinedAt"] == str(int(START_TIME_S))
    assert "metadata" not in body["room"]
    assert "created_at" not in body


async def test_signing_key_can_differ_from_the_api_key(make_emulator: EmulatorFactory) -> None:
    other = RecordingReceiver("APIwebhooks", OTHER_SECRET)
    await other.start()
    try:
        emulator = await make_emulator(
            urls=[other.url], api_key="APIwebhooks", api_secret=OTHER_SECRET
        )
        async with api.LiveKitAPI(emulator.url, API_KEY, API_SECRET) as lkapi:
            await lkapi.room.create_room(api.CreateRoomRequest(name="stage"))
        await emulator.webhooks.wait_idle()
    finally:
        await other.stop()

    assert other.names == ["room_started"]


def test_a_short_signing_secret_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="api_secret"):
        LiveKitEmulator(API_KEY, API_SECRET, webhook_options=WebhookOptions(api_secret="short"))


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        (SignatureFault.WRONG_SECRET, jwt.InvalidSignatureError, None),
        (SignatureFault.OTHER_API_KEY, jwt.InvalidIssuerError, None),
        (SignatureFault.EXPIRED, jwt.ExpiredSignatureError, None),
        (SignatureFault.NOT_YET_VALID, jwt.ImmatureSignatureError, None),
        (SignatureFault.MISSING_SHA256, Exception, "sha256 was not found in the token"),
        (SignatureFault.TAMPERED_BODY, Exception, "hash mismatch"),
    ],
)
async def test_signature_faults_fail_the_sdk_receiver(
    hooked: LiveKitEmulator,
    hooked_api: api.LiveKitAPI,
    receiver: RecordingReceiver,
    fault: SignatureFault,
    error: type[Exception],
    message: str | None,
) -> None:
    hooked.webhooks.faults = WebhookFaults(signature=fault)

    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))
    await hooked.webhooks.wait_idle()

    (request,) = receiver.requests
    assert type(request.error) is error
    if message is not None:
        assert str(request.error) == message
    # The receiver answered 401, which LiveKit treats as done: no retry.
    assert [(a.attempt, a.status) for a in hooked.webhooks.attempts] == [(1, 401)]


async def test_tampered_body_is_still_valid_json_for_the_same_event(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, receiver: RecordingReceiver
) -> None:
    hooked.webhooks.faults = WebhookFaults(signature=SignatureFault.TAMPERED_BODY)

    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))
    await hooked.webhooks.wait_idle()

    body = json.loads(receiver.requests[0].body)
    assert body["event"] == "room_started"
    assert body["createdAt"] == str(int(START_TIME_S) + 1)


async def test_room_started_is_sent_on_creation_only(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, receiver: RecordingReceiver
) -> None:
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))
    await hooked.webhooks.wait_idle()

    assert receiver.names == ["room_started"]
