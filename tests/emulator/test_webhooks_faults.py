"""Fault switches: duplicate, drop and reorder deliveries, deterministically."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from livekit import api

from favorited.livekit_emulator import (
    EVERY_EVENT,
    Outcome,
    Reorder,
    RoomEvent,
    RoomEventKind,
    WebhookFaults,
)
from favorited.livekit_emulator.webhook_faults import FaultDice

from ._support import join_token

if TYPE_CHECKING:
    from favorited.livekit_emulator import LiveKitEmulator

    from ._receiver import RecordingReceiver


def _order(receiver: RecordingReceiver) -> list[tuple[str, str]]:
    return [(e.event, e.participant.identity) for e in receiver.events]


async def test_duplicate_resends_identical_bytes_and_token(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, receiver: RecordingReceiver
) -> None:
    hooked.webhooks.faults = WebhookFaults(duplicate=EVERY_EVENT)

    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))
    hooked.connect(join_token("stage", "alice"))
    await hooked.webhooks.wait_idle()

    first, again, joined, joined_again = receiver.requests
    assert (first.body, first.authorization) == (again.body, again.authorization)
    assert (joined.body, joined.authorization) == (joined_again.body, joined_again.authorization)
    assert [e.id for e in receiver.events] == [receiver.events[0].id] * 2 + [
        receiver.events[2].id
    ] * 2
    assert [a.duplicate for a in hooked.webhooks.attempts] == [False, True, False, True]


async def test_duplicate_can_target_some_event_kinds(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, receiver: RecordingReceiver
) -> None:
    hooked.webhooks.faults = WebhookFaults(
        duplicate=EVERY_EVENT, kinds=frozenset({RoomEventKind.PARTICIPANT_LEFT})
    )

    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))
    hooked.connect(join_token("stage", "alice"))
    hooked.disconnect("stage", "alice")
    await hooked.webhooks.wait_idle()

    assert receiver.names == [
        "room_started",
        "participant_joined",
        "participant_left",
        "participant_left",
    ]


async def test_no_duplicate_after_a_failed_delivery(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, receiver: RecordingReceiver
) -> None:
    hooked.webhooks.faults = WebhookFaults(duplicate=EVERY_EVENT)
    receiver.reply(400)

    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))
    await hooked.webhooks.wait_idle()

    assert [a.outcome for a in hooked.webhooks.attempts] == [Outcome.REJECTED]


async def test_drop_abandons_events_unsent(
    hooked: LiveKitEmulator,
    hooked_api: api.LiveKitAPI,
    receiver: RecordingReceiver,
    events: list[RoomEvent],
) -> None:
    hooked.webhooks.faults = WebhookFaults(
        drop=EVERY_EVENT, kinds=frozenset({RoomEventKind.PARTICIPANT_LEFT})
    )

    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))
    hooked.connect(join_token("stage", "alice"))
    hooked.disconnect("stage", "alice")
    hooked.connect(join_token("stage", "alice"))
    await hooked.webhooks.wait_idle()

    assert receiver.names == ["room_started", "participant_joined", "participant_joined"]
    (dropped,) = [a for a in hooked.webhooks.attempts if a.outcome is Outcome.DROPPED]
    assert (dropped.event_id, dropped.attempt, dropped.error) == (events[2].id, 0, "injected drop")


async def test_faults_can_be_switched_off_at_runtime(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, receiver: RecordingReceiver
) -> None:
    hooked.webhooks.faults = WebhookFaults(drop=EVERY_EVENT)
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))

    hooked.webhooks.faults = WebhookFaults()
    hooked.connect(join_token("stage", "alice"))
    await hooked.webhooks.wait_idle()

    assert receiver.names == ["participant_joined"]


def _verdicts(faults: WebhookFaults, events: list[RoomEvent]) -> list[tuple[bool, bool]]:
    dice = FaultDice(faults)
    return [(v.drop, v.duplicate) for v in map(dice.roll, events)]


async def test_probabilities_are_replayable_from_the_seed(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, events: list[RoomEvent]
) -> None:
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))
    for i in range(40):
        hooked.connect(join_token("stage", f"user-{i}"))
    faults = WebhookFaults(drop=0.3, duplicate=0.5, seed=7)

    first = _verdicts(faults, events)

    assert first == _verdicts(faults, events)
    assert first != _verdicts(WebhookFaults(drop=0.3, duplicate=0.5, seed=8), events)
    assert 0 < sum(drop for drop, _ in first) < len(events)
    assert 0 < sum(dup for _, dup in first) < len(events)


def test_probabilities_must_be_probabilities() -> None:
    with pytest.raises(ValueError, match="drop"):
        WebhookFaults(drop=1.5)


async def test_reconnect_in_order_by_default(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, receiver: RecordingReceiver
) -> None:
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))
    old = hooked.connect(join_token("stage", "alice"))
    new = hooked.connect(join_token("stage", "alice"))
    await hooked.webhooks.wait_idle()

    joined_old, left_old, joined_new = receiver.events[1:]
    assert (joined_old.event, joined_old.participant.sid) == ("participant_joined", old.sid)
    assert (left_old.event, left_old.participant.sid) == ("participant_left", old.sid)
    assert left_old.participant.disconnect_reason == api.DisconnectReason.DUPLICATE_IDENTITY
    assert (joined_new.event, joined_new.participant.sid) == ("participant_joined", new.sid)


async def test_reorder_old_sid_left_after_new_sid_joined(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, receiver: RecordingReceiver
) -> None:
    hooked.webhooks.faults = WebhookFaults(
        reorder=frozenset({Reorder.OLD_SID_LEFT_AFTER_NEW_JOINED})
    )
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))
    old = hooked.connect(join_token("stage", "alice"))
    new = hooked.connect(join_token("stage", "alice"))
    await hooked.webhooks.wait_idle()

    sids = [(e.event, e.participant.sid) for e in receiver.events[1:]]
    assert sids == [
        ("participant_joined", old.sid),
        ("participant_joined", new.sid),
        ("participant_left", old.sid),
    ]


async def test_reorder_left_after_room_finished(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, receiver: RecordingReceiver
) -> None:
    hooked.webhooks.faults = WebhookFaults(reorder=frozenset({Reorder.LEFT_AFTER_ROOM_FINISHED}))
    await hooked_api.room.create_room(api.CreateRoomRequest(name="stage"))
    hooked.connect(join_token("stage", "alice"))
    hooked.connect(join_token("stage", "bob"))
    hooked.disconnect("stage", "bob")

    await hooked_api.room.delete_room(api.DeleteRoomRequest(room="stage"))
    await hooked.webhooks.wait_idle()

    # bob left by himself, in order; alice was still inside when the room was deleted.
    assert _order(receiver)[3:] == [
        ("participant_left", "bob"),
        ("room_finished", ""),
        ("participant_left", "alice"),
    ]


async def test_reorder_does_not_touch_other_rooms(
    hooked: LiveKitEmulator, hooked_api: api.LiveKitAPI, receiver: RecordingReceiver
) -> None:
    hooked.webhooks.faults = WebhookFaults(
        reorder=frozenset({Reorder.OLD_SID_LEFT_AFTER_NEW_JOINED})
    )
    for room in ("a", "b"):
        await hooked_api.room.create_room(api.CreateRoomRequest(name=room))
    hooked.connect(join_token("a", "alice"))
    hooked.connect(join_token("a", "alice"))
    hooked.connect(join_token("b", "bob"))
    await hooked.webhooks.wait_idle()

    in_a = [(e.event, e.participant.identity) for e in receiver.events if e.room.name == "a"]
    assert in_a == [
        ("room_started", ""),
        ("participant_joined", "alice"),
        ("participant_joined", "alice"),
        ("participant_left", "alice"),
    ]
