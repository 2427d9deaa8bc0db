"""The stream-floor probe runs and measures something of the right size (never a speed)."""

from __future__ import annotations

from bench.stream_floor import measure


async def test_open_streams_grow_the_bare_server_by_kibibytes_each() -> None:
    per_stream = await measure(streams=200, per_connection=50, timeout_s=60)

    # A grpc.aio stream costs ~16-23 KiB of the server (more at scale); this process, the h2
    # client, grows by ~0.4 KiB per stream, and streams that never opened fail the measure.
    assert 8 < per_stream < 60
