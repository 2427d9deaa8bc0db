"""How WatchParticipants uses the process's write slots (favorited/api/write_slots.py): one slot
per message, given back when the stream asks for its next message or ends.

The Watcher is driven here as grpc drives it — asking its generator for the next message — over
the real event log and feed in PostgreSQL; one slot with a long hold makes a slot kept too long
visible at once instead of after the hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import cast

import asyncpg
import pytest

from favorited.api.watch import StreamLimiter, Watcher, encode_change
from favorited.api.write_slots import WriteSlots
from favorited.domain import models
from favorited.livekit_emulator import LiveKitEmulator
from favorited.store.events import PgEventLog
from favorited.store.pool import create_pool
from favorited.streams.livestreams import LivestreamHub
from favorited.streams.participants import ParticipantHub
from favorited_api.v1 import participant_service_pb2 as ppb
from tests.conftest import make_settings
from tests.support.watched import join, live_livestream

# Change batches come serialized, as grpc sends them (favorited/api/wire.py).
Messages = AsyncGenerator[ppb.WatchParticipantsResponse | bytes, None]


class ObservedSlots(WriteSlots):
    """WriteSlots that say when a writer has asked for a slot (and may be waiting for it)."""

    def __init__(self, slots: int, *, hold_s: float) -> None:
        super().__init__(slots, hold_s=hold_s)
        self.asked = 0
        self.parked = asyncio.Event()  # set by the second request: the first is the test's

    async def acquire(self) -> Callable[[], None]:
        self.asked += 1
        if self.asked >= 2:
            self.parked.set()
        return await super().acquire()


@dataclass
class Parts:
    watcher: Watcher
    hub: ParticipantHub
    writes: ObservedSlots
    livestream_id: str

    def open(self, *, batch: bool = False) -> Messages:
        # An async generator, as grpc sees it (the method is annotated as an iterator).
        return cast(
            Messages,
            self.watcher.watch_participants(models.Caller("w"), self.livestream_id, 0, batch=batch),
        )


@pytest.fixture
async def parts(
    db: asyncpg.Pool, database_url: str, emulator: LiveKitEmulator, clean: None
) -> AsyncIterator[Parts]:
    """A Watcher with one write slot over the real log, and a LIVE livestream to watch."""
    # The service's pool (its JSON codecs); `db` is a plain one for the test's own SQL.
    pool = await create_pool(database_url, make_settings(database_url, emulator.url))
    log = PgEventLog(pool, timeout_s=5)
    # A short tick: `probe.next(..., timeout_s=5)` below gives up ~5 s after, not at a 15 s tick.
    hub = ParticipantHub(log, ring_size=64, stall_s=30, encode=encode_change, tick_s=0.5)
    writes = ObservedSlots(1, hold_s=60)
    watcher = Watcher(
        log=log,
        participants=hub,
        livestreams=LivestreamHub(log),
        limiter=StreamLimiter(10),
        heartbeat_s=60,
        coalesce_s=1,
        writes=writes,
    )
    livestream_id = await live_livestream(db, "slots")
    yield Parts(watcher, hub, writes, livestream_id)
    await hub.close()
    await pool.close()


@pytest.fixture
async def stream(parts: Parts, db: asyncpg.Pool) -> AsyncIterator[tuple[Messages, WriteSlots, str]]:
    """A non-batch WatchParticipants stream past its snapshot, with two changes waiting."""
    messages = parts.open()
    first = await _next(messages)
    assert first.snapshot.complete
    for user in ("a", "b"):
        await join(db, parts.livestream_id, user)
    parts.hub.on_participant_events(parts.livestream_id)  # what the NOTIFY listener does
    yield messages, parts.writes, parts.livestream_id
    await messages.aclose()


async def test_each_message_takes_its_own_slot_and_gives_it_back_before_the_next(
    stream: tuple[Messages, WriteSlots, str],
) -> None:
    messages, writes, _ = stream
    assert (await _next(messages)).change.participant.user_id == "a"  # suspended holding a slot
    other = asyncio.create_task(writes.acquire())
    await asyncio.sleep(0)
    assert not other.done(), "the message being written holds the only slot"
    second = asyncio.create_task(_next(messages))
    # Asking for the next message gives the slot back first: the other writer gets it, and the
    # second message waits for it, even though both messages came out of one read of the ring.
    release = await asyncio.wait_for(other, timeout=5)
    await asyncio.sleep(0)
    assert not second.done()
    release()
    assert (await asyncio.wait_for(second, timeout=5)).change.participant.user_id == "b"


async def test_a_stream_that_ends_while_writing_gives_its_slot_back(
    stream: tuple[Messages, WriteSlots, str],
) -> None:
    messages, writes, _ = stream
    await anext(messages)  # suspended at the yield, holding the only slot
    await messages.aclose()  # the client went away
    release = await asyncio.wait_for(writes.acquire(), timeout=5)
    release()


async def test_a_batch_waiting_for_its_slot_leaves_with_what_arrived_meanwhile(
    parts: Parts, db: asyncpg.Pool
) -> None:
    messages = parts.open(batch=True)
    batch: asyncio.Task[ppb.WatchParticipantsResponse] | None = None
    try:
        assert (await _next(messages)).snapshot.complete
        held = await parts.writes.acquire()  # every write slot is busy
        await join(db, parts.livestream_id, "a")
        parts.hub.on_participant_events(parts.livestream_id)
        batch = asyncio.create_task(_next(messages))
        await parts.writes.parked.wait()  # the batch has seen "a" and waits for a slot
        await join(db, parts.livestream_id, "b")
        async with parts.hub.subscribe(parts.livestream_id) as probe:
            parts.hub.on_participant_events(parts.livestream_id)
            # The feed has read "b" once a reader sees a change after "a".
            (a, _), *rest = await probe.next(0, timeout_s=5)
            if not rest:
                assert await probe.next(a.sequence, timeout_s=5), "the feed never read b"
        assert not batch.done(), "the batch waits for a slot"
        held()
        message = await asyncio.wait_for(batch, timeout=5)
        assert [e.participant.user_id for e in message.changes.events] == ["a", "b"]
    finally:
        if batch is not None:
            batch.cancel()
            await asyncio.gather(batch, return_exceptions=True)
        await messages.aclose()


async def _next(messages: Messages) -> ppb.WatchParticipantsResponse:
    """The next message as a client reads it."""
    message = await anext(messages)
    if isinstance(message, bytes):
        return ppb.WatchParticipantsResponse.FromString(message)
    return message


async def test_a_feed_reader_is_entered_once(parts: Parts) -> None:
    reader = parts.hub.subscribe(parts.livestream_id)
    async with reader:
        with pytest.raises(RuntimeError, match="entered once"):
            async with reader:
                pass
        assert reader.ready(0) == []  # still subscribed: the failed entry changed nothing
