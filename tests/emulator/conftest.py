"""Fixtures for the LiveKit emulator tests; independent of the repo-wide conftest."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import pytest
from livekit import api

from favorited.livekit_emulator import LiveKitEmulator, RoomEvent

from ._support import API_KEY, API_SECRET, FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


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
