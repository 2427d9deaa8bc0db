"""A livestream's participant feed (favorited/streams/participants.py) over the real event log:
its tick, and what its watchers see when it fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import cast

import asyncpg
import pytest

from favorited import errors
from favorited.api.watch import StreamLimiter, Watcher, encode_change
from favorited.api.write_slots import WriteSlots
from favorited.domain import models
from favorited.livekit_emulator import LiveKitEmulator
from favorited.store.events import ParticipantChange, PgEventLog
from favorited.store.pool import create_pool
from favorited.streams.livestreams import LivestreamHub
from favorited.streams.participants import ParticipantHub
from favorited.streams.subscribers import Broken
from tests.conftest import make_settings
from tests.support.watched import join, live_livestream


@dataclass
class Live:
    log: PgEventLog
    livestream_id: str


@pytest.fixture
async def live(
    db: asyncpg.Pool, database_url: str, emulator: LiveKitEmulator, clean: None
) -> AsyncIterator[Live]:
    """The real event log, and a LIVE livestream in it."""
    pool = await create_pool(database_url, make_settings(database_url, emulator.url))
    livestream_id = await live_livestream(db, "feed")
    yield Live(PgEventLog(pool, timeout_s=5), livestream_id)
    await pool.close()


async def test_a_waiting_reader_gets_its_heartbeat_while_the_feed_is_kept_busy(live: Live) -> None:
    # Livestream changes that bring no participant change wake the feed again and again; the
    # feed's tick is a timer of its own, so a waiting reader's heartbeat still comes.
    hub = ParticipantHub(live.log, ring_size=64, stall_s=30, encode=encode_change, tick_s=0.02)
    try:
        async with hub.subscribe(live.livestream_id) as reader:
            waiting = asyncio.create_task(reader.next(reader.feed.head, timeout_s=0.1))
            async with asyncio.timeout(10):
                while not waiting.done():
                    hub.on_livestream_change(live.livestream_id)
                    await asyncio.sleep(0)
            assert await waiting == []  # silence: the heartbeat's turn
    finally:
        await hub.close()


async def test_a_failed_feed_ends_its_watchers_and_the_next_gets_a_fresh_one(
    live: Live, db: asyncpg.Pool
) -> None:
    failing = True

    def encode(change: ParticipantChange) -> object:
        if failing:
            raise RuntimeError("a bug in encoding")  # an error the feed does not expect
        return encode_change(change)

    hub = ParticipantHub(live.log, ring_size=64, stall_s=30, encode=encode, tick_s=0.05)
    watcher = Watcher(
        log=live.log,
        participants=hub,
        livestreams=LivestreamHub(live.log),
        limiter=StreamLimiter(10),
        heartbeat_s=60,
        coalesce_s=1,
        writes=WriteSlots(4),
    )
    stream = cast(
        AsyncGenerator[object, None],
        watcher.watch_participants(models.Caller("w"), live.livestream_id, 0),
    )
    try:
        await anext(stream)  # the snapshot
        async with hub.subscribe(live.livestream_id) as reader:
            await join(db, live.livestream_id, "a")
            hub.on_participant_events(live.livestream_id)
            # Ended, to resume, rather than left waiting for changes that would never come.
            with pytest.raises(errors.DependencyUnavailableError) as info:
                await asyncio.wait_for(anext(stream), timeout=10)
            assert info.value.reason == "WATCH_FEED_FAILED"
            with pytest.raises(Broken):
                await asyncio.wait_for(reader.next(0, timeout_s=60), timeout=10)
        failing = False
        async with hub.subscribe(live.livestream_id) as fresh:
            start = fresh.feed.head
            await join(db, live.livestream_id, "b")
            hub.on_participant_events(live.livestream_id)
            (change, _), *_ = await asyncio.wait_for(fresh.next(start, timeout_s=60), timeout=10)
            assert change.participant is not None and change.participant.user_id == "b"
    finally:
        await stream.aclose()
        await hub.close()


async def test_a_batch_is_built_once_per_range_for_every_reader_at_it(
    live: Live, db: asyncpg.Pool
) -> None:
    hub = ParticipantHub(live.log, ring_size=64, stall_s=30, encode=encode_change, tick_s=0.5)
    built: list[list[int]] = []

    def combine(entries: list[tuple[ParticipantChange, object]]) -> object:
        built.append([change.sequence for change, _ in entries])
        return object()

    try:
        async with hub.subscribe(live.livestream_id) as a, hub.subscribe(live.livestream_id) as b:
            start = a.feed.head
            for user in ("u1", "u2", "u3"):
                await join(db, live.livestream_id, user)
            hub.on_participant_events(live.livestream_id)  # what the NOTIFY listener does
            async with asyncio.timeout(10):
                while a.feed.head < start + 3:
                    assert await a.wait(a.feed.head, timeout_s=60)
            first, second = a.batch(start, 10, combine), b.batch(start, 10, combine)
            assert first is not None and second is not None
            assert first[0] is second[0]  # one message for both
            assert first[1] == second[1] == start + 3
            assert built == [[start + 1, start + 2, start + 3]]
            # A bound makes a range of its own; a reader further on has its own range too.
            bounded, further = a.batch(start, 2, combine), b.batch(start + 1, 10, combine)
            assert bounded is not None and bounded[1] == start + 2
            assert further is not None and further[1] == start + 3
            assert built[1:] == [[start + 1, start + 2], [start + 2, start + 3]]
            assert a.batch(start + 3, 10, combine) is None  # at the head: nothing yet
            assert not await a.wait(start + 3, timeout_s=0)
    finally:
        await hub.close()
