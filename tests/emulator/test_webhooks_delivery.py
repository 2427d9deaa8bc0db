"""Delivery like LiveKit's ResourceURLNotifier: retries, per-room order, queue limits, stop."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TYPE_CHECKING

import pytest
from livekit import api

from favorited.livekit_emulator import Outcome, RoomEvent, WebhookOptions
from favorited.livekit_emulator.webhook_delivery import (
    is_retryable,
    parse_retry_after_s,
    retry_delay_s,
)

from ._receiver import RecordingReceiver, Reply
from ._support import API_KEY, API_SECRET, FakeClock, join_token

if TYPE_CHECKING:
    from favorited.livekit_emulator import LiveKitEmulator

    from .conftest import EmulatorFactory


async def _room(emulator: LiveKitEmulator, name: str = "stage") -> None:
    async with api.LiveKitAPI(emulator.url, API_KEY, API_SECRET) as lkapi:
        await lkapi.room.create_room(api.CreateRoomRequest(name=name))


def _outcomes(emulator: LiveKitEmulator) -> list[tuple[int, Outcome, int | None]]:
    return [(a.attempt, a.outcome, a.status) for a in emulator.webhooks.attempts]


async def test_retries_a_503_then_stops_at_success(
    hooked: LiveKitEmulator, receiver: RecordingReceiver, backoffs: list[float]
) -> None:
    receiver.reply(503, 503)

    await _room(hooked)
    await hooked.webhooks.wait_idle()

    assert _outcomes(hooked) == [
        (1, Outcome.RETRY, 503),
        (2, Outcome.RETRY, 503),
        (3, Outcome.DELIVERED, 200),
    ]
    assert backoffs == [0.01, 0.02]
    # Every attempt is the same request: same bytes, same token.
    assert len({(r.body, r.authorization) for r in receiver.requests}) == 1
    assert len(receiver.requests) == 3


@pytest.mark.parametrize("status", [301, 400, 401, 404, 409, 501])
async def test_statuses_livekit_does_not_retry(
    hooked: LiveKitEmulator, receiver: RecordingReceiver, status: int
) -> None:
    receiver.reply(status)

    await _room(hooked)
    await hooked.webhooks.wait_idle()

    assert _outcomes(hooked) == [(1, Outcome.REJECTED, status)]


@pytest.mark.parametrize("status", [429, 500, 502, 504])
async def test_statuses_livekit_retries(
    hooked: LiveKitEmulator, receiver: RecordingReceiver, status: int
) -> None:
    receiver.reply(status)

    await _room(hooked)
    await hooked.webhooks.wait_idle()

    assert _outcomes(hooked) == [(1, Outcome.RETRY, status), (2, Outcome.DELIVERED, 200)]


async def test_retry_after_is_honoured(
    hooked: LiveKitEmulator, receiver: RecordingReceiver, backoffs: list[float]
) -> None:
    receiver.reply(Reply(503, {"Retry-After": "7"}), Reply(429, {"Retry-After": "3"}))

    await _room(hooked)
    await hooked.webhooks.wait_idle()

    assert backoffs == [7.0, 3.0]
    assert [a.retry_in_s for a in hooked.webhooks.attempts] == [7.0, 3.0, None]


async def test_gives_up_after_five_attempts_and_moves_on(
    hooked: LiveKitEmulator, receiver: RecordingReceiver, backoffs: list[float]
) -> None:
    receiver.reply(*[503] * 5)

    await _room(hooked)
    joined = hooked.connect(join_token("stage", "alice"))
    await hooked.webhooks.wait_idle()

    assert _outcomes(hooked) == [
        *[(n, Outcome.RETRY, 503) for n in range(1, 5)],
        (5, Outcome.GAVE_UP, 503),
        (1, Outcome.DELIVERED, 200),
    ]
    assert backoffs == [0.01, 0.02, 0.04, 0.08]
    assert receiver.events[-1].participant.sid == joined.sid


async def test_transport_errors_are_retried(make_emulator: EmulatorFactory) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    emulator = await make_emulator(urls=[f"http://127.0.0.1:{port}/hook"])

    await _room(emulator)
    await emulator.webhooks.wait_idle()

    attempts = emulator.webhooks.attempts
    assert [(a.outcome, a.status) for a in attempts] == [(Outcome.RETRY, None)] * 4 + [
        (Outcome.GAVE_UP, None)
    ]
    assert all(a.error for a in attempts)


async def test_a_hung_receiver_times_out_per_attempt(
    make_emulator: EmulatorFactory, receiver: RecordingReceiver
) -> None:
    emulator = await make_emulator(attempt_timeout_s=0.05)
    receiver.hold(1)

    await _room(emulator)
    await emulator.webhooks.wait_idle()
    receiver.release()

    first, second = emulator.webhooks.attempts
    assert (first.outcome, first.status) == (Outcome.RETRY, None)
    assert first.error is not None
    assert first.error.startswith("TimeoutError") or "Timeout" in first.error
    assert second.outcome is Outcome.DELIVERED


async def test_a_rooms_events_stay_in_order_across_retries(
    hooked: LiveKitEmulator, receiver: RecordingReceiver, events: list[RoomEvent]
) -> None:
    receiver.reply(503, 500, 429)

    await _room(hooked)
    for identity in ("alice", "bob", "carol"):
        hooked.connect(join_token("stage", identity))
    hooked.disconnect("stage", "bob")
    await hooked.webhooks.wait_idle()

    delivered = list(dict.fromkeys(e.id for e in receiver.events))
    assert delivered == [e.id for e in events]
    assert len(receiver.events) == len(events) + 3


async def test_rooms_do_not_wait_for_each_other(
    hooked: LiveKitEmulator, receiver: RecordingReceiver, events: list[RoomEvent]
) -> None:
    receiver.hold(1)
    await _room(hooked, "stuck")
    await receiver.wait_for_requests(1)

    await _room(hooked, "free")
    await hooked.webhooks.wait_delivered(events[-1].id)

    assert not hooked.webhooks.idle
    receiver.release()
    await hooked.webhooks.wait_idle()
    assert [e.room.name for e in receiver.events] == ["stuck", "free"]


async def test_every_url_gets_every_event_with_the_same_id(
    make_emulator: EmulatorFactory, receiver: RecordingReceiver
) -> None:
    second = RecordingReceiver(API_KEY, API_SECRET)
    await second.start()
    try:
        emulator = await make_emulator()
        emulator.add_webhook_url(second.url)
        await _room(emulator)
        await emulator.webhooks.wait_idle()
    finally:
        await second.stop()

    assert [e.id for e in receiver.events] == [e.id for e in second.events]
    assert len(receiver.events) == 1


async def test_a_full_queue_drops_new_events(
    make_emulator: EmulatorFactory, receiver: RecordingReceiver
) -> None:
    emulator = await make_emulator(max_queue_depth=2)
    receiver.hold(1)
    await _room(emulator)
    await receiver.wait_for_requests(1)

    for identity in ("a", "b", "c", "d"):
        emulator.connect(join_token("stage", identity))
    receiver.release()
    await emulator.webhooks.wait_idle()

    dropped = [a for a in emulator.webhooks.attempts if a.outcome is Outcome.DROPPED]
    assert [a.error for a in dropped] == ["queue full (2 events)"] * 2
    assert [e.participant.identity for e in receiver.events[1:]] == ["a", "b"]


async def test_events_queued_too_long_are_dropped(
    make_emulator: EmulatorFactory, receiver: RecordingReceiver
) -> None:
    clock = FakeClock(0.0)
    hooked = await make_emulator(queue_clock=clock)
    receiver.hold(1)
    await _room(hooked)
    await receiver.wait_for_requests(1)
    hooked.connect(join_token("stage", "alice"))
    hooked.connect(join_token("stage", "bob"))

    clock.advance(30)
    hooked.connect(join_token("stage", "carol"))
    clock.advance(0.5)
    receiver.release()
    await hooked.webhooks.wait_idle()

    # Queued 30.5 s > MaxAge (30 s) for alice and bob; carol only 0.5 s.
    assert [a.outcome for a in hooked.webhooks.attempts] == [
        Outcome.DELIVERED,
        Outcome.DROPPED,
        Outcome.DROPPED,
        Outcome.DELIVERED,
    ]
    assert [e.participant.identity for e in receiver.events] == ["", "carol"]


async def test_stop_abandons_queued_deliveries_promptly(
    make_emulator: EmulatorFactory, receiver: RecordingReceiver
) -> None:
    # Other emulators (session fixtures of other test packages) may have tasks of their own.
    before = asyncio.all_tasks()
    emulator = await make_emulator(attempt_timeout_s=None)
    receiver.hold(1)
    await _room(emulator)
    emulator.connect(join_token("stage", "alice"))
    await receiver.wait_for_requests(1)

    async with asyncio.timeout(5):
        await emulator.stop()

    assert emulator.webhooks.idle
    assert emulator.webhooks.attempts == []
    assert not [t for t in asyncio.all_tasks() - before if "webhook" in t.get_name()]
    with pytest.raises(RuntimeError):
        await emulator.webhooks.wait_delivered("EV_never")


async def test_stop_can_drain_first(
    make_emulator: EmulatorFactory, receiver: RecordingReceiver
) -> None:
    emulator = await make_emulator(drain_on_stop=True)
    receiver.reply(503)
    await _room(emulator)
    emulator.connect(join_token("stage", "alice"))

    await emulator.stop()

    delivered = [a.event for a in emulator.webhooks.attempts if a.outcome is Outcome.DELIVERED]
    assert delivered == ["room_started", "participant_joined"]


def test_retry_policy_matches_go_retryablehttp() -> None:
    retried = [
        s for s in (200, 204, 301, 400, 404, 429, 500, 501, 502, 503, 599) if is_retryable(s)
    ]

    assert retried == [429, 500, 502, 503, 599]
    assert is_retryable(None)


def test_backoff_doubles_and_is_capped() -> None:
    options = WebhookOptions()

    waits = [retry_delay_s(n, 500, None, options) for n in range(7)]

    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    # Retry-After only counts on 429 and 503.
    assert retry_delay_s(0, 500, "9", options) == 1.0
    assert retry_delay_s(0, 503, "9", options) == 9.0
    assert retry_delay_s(0, 503, "soon", options) == 1.0


def test_retry_after_accepts_an_http_date() -> None:
    later = datetime.now(UTC) + timedelta(seconds=120)

    seconds = parse_retry_after_s(format_datetime(later, usegmt=True))

    assert seconds is not None
    assert 100 < seconds <= 120
    assert parse_retry_after_s(format_datetime(later - timedelta(hours=1), usegmt=True)) == 0.0
