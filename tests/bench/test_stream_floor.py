"""The stream-floor probe runs and measures something of the right size (never a speed)."""

from __future__ import annotations

from bench.stream_floor import measure


async def test_open_streams_grow_the_bare_server_by_kibibytes_each() -> None:
    per_stream = await measure(streams=200, per_connection=50)

    # A grpc.aio stream costs ~20 KiB on these machines; a broken probe reads ~0 (streams that
    # never opened, or the wrong process) or a start-up's megabytes.
    assert 5 < per_stream < 100
