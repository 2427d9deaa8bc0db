"""The API process exports its Watch write slots (favorited_watch_write_slots), read at scrape."""

from __future__ import annotations

from favorited.app import ApiApp
from favorited.livekit_emulator import LiveKitEmulator
from favorited.metrics import Metrics
from tests.conftest import make_settings


async def test_the_api_exports_its_write_slots(
    database_url: str, emulator: LiveKitEmulator
) -> None:
    metrics = Metrics()
    app = await ApiApp.start(make_settings(database_url, emulator.url), metrics=metrics)
    try:
        exposition = metrics.exposition().decode()
        for state in ("in_use", "waiting"):
            assert f'favorited_watch_write_slots{{state="{state}"}} 0.0' in exposition
    finally:
        await app.stop()
