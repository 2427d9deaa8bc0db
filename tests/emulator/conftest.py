"""Fixtures for the LiveKit emulator tests; independent of the repo-wide conftest."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import pytest
from livekit import api

from favorited.livekit_emulator import LiveKitEmulator, RoomEvent, WebhookOptions

from ._receiver import RecordingReceiver
from ._support import API_KEY, API_SECRET, FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> list[RoomEvent]:
    return []


@pytest.fixture
async def emulator(clock: FakeClock, events: list[RoomEvent]) -> AsyncIterator[LiveKitEmulator]:
    async with LiveKitEmulator(
        API_KEY, API_SECRET, clock=clock, listeners=[events.append]
    ) as running:
        yield running


@pytest.fixture
async def lkapi(emulator: LiveKitEmulator) -> AsyncIterator[api.LiveKitAPI]:
    # The SDK's session needs a running loop, so it is built here, not at import time.
    client = api.LiveKitAPI(emulator.url, API_KEY, API_SECRET)
    yield client
    await client.aclose()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def receiver() -> AsyncIterator[RecordingReceiver]:
    webhook = RecordingReceiver(API_KEY, API_SECRET)
    await webhook.start()
    yield webhook
    await webhook.stop()


@pytest.fixture
def backoffs() -> list[float]:
    """Every wait the webhook sender asked for, in order."""
    return []


class EmulatorFactory(Protocol):
    async def __call__(
        self,
        *,
        urls: Sequence[str] | None = None,
        room_check_interval_s: float | None = None,
        **options: Any,
    ) -> LiveKitEmulator: ...


@pytest.fixture
async def make_emulator(
    clock: FakeClock,
    events: list[RoomEvent],
    receiver: RecordingReceiver,
    backoffs: list[float],
) -> AsyncIterator[EmulatorFactory]:
    """Start an emulator that sends webhooks to ``receiver`` (or ``urls``), stopped after."""
    started: list[LiveKitEmulator] = []

    async def record_backoff(seconds: float) -> None:
        # Waits are recorded, not slept: retries follow at once, so tests stay fast and
        # can assert the exact schedule (including a Retry-After of many seconds).
        backoffs.append(seconds)
        await asyncio.sleep(0)

    async def make(
        *,
        urls: Sequence[str] | None = None,
        room_check_interval_s: float | None = None,
        **options: Any,
    ) -> LiveKitEmulator:
        settings = {"backoff_base_s": 0.01, "sleep": record_backoff, **options}
        emulator = LiveKitEmulator(
            API_KEY,
            API_SECRET,
            clock=clock,
            listeners=[events.append],
            webhook_urls=[receiver.url] if urls is None else urls,
            webhook_options=WebhookOptions(**settings),
            room_check_interval_s=room_check_interval_s,
        )
        await emulator.start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        await emulator.stop()


@pytest.fixture
async def hooked(make_emulator: EmulatorFactory) -> LiveKitEmulator:
    """An emulator with webhooks to ``receiver``, LiveKit's delivery rules, fast backoff."""
    return await make_emulator()


@pytest.fixture
async def hooked_api(hooked: LiveKitEmulator) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(hooked.url, API_KEY, API_SECRET)
    yield client
    await client.aclose()
