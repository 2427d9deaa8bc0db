"""ParticipantHub: one feed per watched livestream per process, read once, shared by all.

A feed keeps the most recent changes in a bounded ring shared by every local watcher; each
watcher holds only its position (a sequence number), so a watcher costs a few hundred bytes
however busy the livestream. The feed reads the next batch only when every watcher has read what
the ring would drop, or when a watcher has not moved for `stall_s`: a burst (a room of 100,000
ending) is paced to the watchers that keep up, and only a watcher that stalls falls out of the
ring and is cut off, to resume from its sequence.

A watcher waiting for a change owns no timer: its feed announces a tick every `tick_s`, whatever
else it is doing, and a waiting watcher whose heartbeat is due returns then. One timer per
feed instead of one per wait: ~4 µs less per message and ~0.9 KiB less memory per watcher with
thousands of them (docs/performance.md, session 9).

A watcher that opted in to batches takes every entry after its position (up to a bound) as one
message. The feed builds that message once per (first, last) sequence range and hands the same
object to every watcher at that position: with thousands of watchers at the head, a pass over
them builds one batch, not thousands, and lists the range's entries once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

from favorited import errors
from favorited.store.events import ParticipantChange, PgEventLog
from favorited.streams.subscribers import Broken, Closing, Finished, Overflowed
from favorited.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Entry = tuple[ParticipantChange, Any]  # the change, and its message, built once for all
# Batches kept per feed: watchers cluster at a few positions (mostly the head), so a handful of
# ranges serve nearly all of them; the cap keeps scattered laggards from growing it unbounded.
_BATCHES_KEPT = 16


class ParticipantFeed:
    def __init__(
        self,
        livestream_id: str,
        log_: PgEventLog,
        head: int,
        *,
        encode: Callable[[ParticipantChange], Any],
        ring_size: int,
        stall_s: float,
        tick_s: float,
    ) -> None:
        self.livestream_id = livestream_id
        self._log = log_
        self._encode = encode
        self._ring: deque[Entry] = deque()
        self._ring_size = ring_size
        self._stall_s = stall_s
        self._tick_s = tick_s
        self._ticker: asyncio.TimerHandle | None = None
        self.head = head  # the last sequence read from the log
        # (first sequence, last sequence) -> the batch message built for that range; emptied
        # whenever the ring changes, so an entry never outlives the ring entries it was made of.
        self._batches: dict[tuple[int, int], Any] = {}
        self.positions: dict[object, int] = {}
        self._changed = asyncio.Event()
        self._progress = asyncio.Event()
        self._wake = asyncio.Event()
        self._check_end = False
        self.finished = False
        self.closing = False
        self.broken = False  # stopped on an unexpected error; the hub starts a fresh feed
        self.task: asyncio.Task[None] | None = None

    # -- the feed's side -------------------------------------------------------------------

    def wake(self, *, check_end: bool = False) -> None:
        self._check_end = self._check_end or check_end
        self._wake.set()

    def close(self) -> None:
        self.closing = True
        self._announce()

    def _announce(self) -> None:
        # Waiters hold the event they saw; a fresh one is armed for the next change.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _tick(self) -> None:
        # A timer of its own, not a timeout on the loop below: that loop may be busy for long
        # (waiting for slow readers, woken again and again by livestream changes that bring no
        # participant change), and the watchers' heartbeats must not wait for it.
        self._announce()  # waiting watchers look whether their heartbeat is due
        self._ticker = asyncio.get_running_loop().call_later(self._tick_s, self._tick)

    async def run(self) -> None:
        self._ticker = asyncio.get_running_loop().call_later(self._tick_s, self._tick)
        try:
            await self._follow()
        except Exception:
            # Not retried: an error `_follow` does not expect says nothing of whether the next try
            # could work. Its watchers are ended (to resume, on a fresh feed) rather than left
            # waiting for changes that would never come.
            log.exception("participant feed failed", extra={"livestream": self.livestream_id})
            self.broken = True
            self._announce()
        finally:
            if self._ticker is not None:
                self._ticker.cancel()

    async def _follow(self) -> None:
        while not self.finished:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._read_all()
                if self._check_end:
                    self._check_end = False
                    livestream = await self._log.livestream(self.livestream_id)
                    if livestream is not None and livestream.status.terminal:
                        await self._read_all()
                        self.finished = True
                        self._announce()
            except errors.DependencyUnavailableError:
                # The next notification (or the notifier's reconnect) wakes us to try again.
                log.warning(
                    "participant feed read failed", extra={"livestream": self.livestream_id}
                )

    async def _read_all(self) -> None:
        batch_size = max(self._ring_size // 2, 1)
        while True:
            batch = await self._log.after(self.livestream_id, self.head, batch_size)
            if not batch:
                return
            evicted = len(self._ring) + len(batch) - self._ring_size
            if evicted > 0:
                await self._wait_for_readers(self._ring[evicted - 1][0].sequence)
            for change in batch:
                self._ring.append((change, self._encode(change)))
            while len(self._ring) > self._ring_size:
                self._ring.popleft()
            self._batches.clear()
            self.head = batch[-1].sequence
            self._announce()
            if len(batch) < batch_size:
                return

    async def _wait_for_readers(self, sequence: int) -> None:
        """Wait until every watcher has read `sequence`, or until one has stalled."""
        moved_at = time.monotonic()
        while self._slowest_reader() < sequence:
            remaining = moved_at + self._stall_s - time.monotonic()
            if remaining <= 0:
                return  # the laggards fall out of the ring and are cut off
            self._progress.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._progress.wait()
            except TimeoutError:
                return
            moved_at = time.monotonic()

    def _slowest_reader(self) -> float:
        # A watcher already behind the ring's start is cut off anyway: it no longer holds us back.
        floor = self._ring[0][0].sequence - 1 if self._ring else self.head
        live = [p for p in self.positions.values() if p >= floor]
        return min(live) if live else float("inf")

    # -- a watcher's side ------------------------------------------------------------------

    def advanced(self, token: object, sequence: int) -> None:
        self.positions[token] = sequence
        self._progress.set()

    def pending(self, sequence: int) -> bool:
        """Whether the ring has entries after `sequence`; raises Overflowed if some were dropped
        (and Closing, Broken or Finished as the feed's state says)."""
        if self.closing:
            raise Closing
        if self.broken:
            raise Broken
        if sequence >= self.head:
            if self.finished:
                raise Finished
            return False
        if not self._ring or self._ring[0][0].sequence > sequence + 1:
            raise Overflowed
        return True

    def after(self, sequence: int, limit: int | None = None) -> list[Entry]:
        """The ring's entries after `sequence` (at most `limit`); raises as `pending` does."""
        if not self.pending(sequence):
            return []
        start, stop = self._span(sequence, limit)
        return [self._ring[i] for i in range(start, stop)]

    def _span(self, sequence: int, limit: int | None) -> tuple[int, int]:
        """The ring indexes [start, stop) of the entries after `sequence`, at most `limit`; the
        ring holds consecutive sequences from its first. Only after `pending` said True."""
        start = sequence + 1 - self._ring[0][0].sequence
        return start, len(self._ring) if limit is None else min(len(self._ring), start + limit)

    def batch(
        self, sequence: int, limit: int, combine: Callable[[list[Entry]], Any]
    ) -> tuple[Any, int] | None:
        """`combine` of the entries after `sequence` (at most `limit`) and the last sequence they
        hold, or None if there are none; raises as `pending` does.

        Built once per sequence range for every watcher that asks: a change never changes after
        it is logged, so its range identifies the content, and the range is known without
        listing the entries (`_span`), which only a watcher that finds no message built for its
        range does (with thousands at the head, one per range).
        """
        if not self.pending(sequence):
            return None
        ring = self._ring
        start, stop = self._span(sequence, limit)
        last = ring[stop - 1][0].sequence
        key = (sequence + 1, last)
        message = self._batches.get(key)
        if message is None:
            if len(self._batches) >= _BATCHES_KEPT:
                del self._batches[next(iter(self._batches))]  # the oldest range
            message = self._batches[key] = combine([ring[i] for i in range(start, stop)])
        return message, last

    def change_signal(self) -> asyncio.Event:
        """Take this before looking at the ring; it is set by the next change after that."""
        return self._changed


class Reader:
    """One watcher's handle on a livestream's feed: its position, and the ring after it.

    `async with hub.subscribe(livestream_id) as reader` registers it with the feed (starting
    the feed if it is the livestream's first watcher here) and leaves on exit. A plain class
    rather than a generator-based context manager: a watcher keeps it for the stream's life,
    and it is one object instead of three.
    """

    __slots__ = ("_feed", "_hub", "_livestream_id", "_token")

    def __init__(self, hub: ParticipantHub, livestream_id: str) -> None:
        self._hub = hub
        self._livestream_id = livestream_id
        self._feed: ParticipantFeed | None = None
        self._token = object()

    async def __aenter__(self) -> Reader:
        if self._feed is not None:
            raise RuntimeError("a Reader is entered once; subscribe again for another")
        self._feed = await self._hub._join(self._livestream_id, self._token)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._feed is not None:
            feed, self._feed = self._feed, None
            await self._hub._leave(feed, self._token)

    @property
    def feed(self) -> ParticipantFeed:
        assert self._feed is not None, "use the reader inside `async with`"
        return self._feed

    def advance(self, sequence: int) -> None:
        self.feed.advanced(self._token, sequence)

    async def next(self, sequence: int, timeout_s: float, limit: int | None = None) -> list[Entry]:
        """Entries after `sequence` (at most `limit`), waiting for some; [] after at least
        `timeout_s` of silence, at the feed's first tick after it.

        Raises Finished, Overflowed, Closing or Broken.
        """
        if not await self.wait(sequence, timeout_s):
            return []
        return self.feed.after(sequence, limit)

    async def wait(self, sequence: int, timeout_s: float) -> bool:
        """Wait until there are entries after `sequence` (True), or for at least `timeout_s` of
        silence, until the feed's first tick after it (False).

        Raises Finished, Overflowed, Closing or Broken.
        """
        feed = self.feed
        deadline = time.monotonic() + timeout_s
        while True:
            signal = feed.change_signal()
            if feed.pending(sequence):
                return True
            if time.monotonic() >= deadline:
                return False
            await signal.wait()

    def ready(self, sequence: int, limit: int | None = None) -> list[Entry]:
        """The entries after `sequence` (at most `limit`) now, without waiting.

        Raises Finished, Overflowed, Closing or Broken.
        """
        return self.feed.after(sequence, limit)

    def batch(
        self, sequence: int, limit: int, combine: Callable[[list[Entry]], Any]
    ) -> tuple[Any, int] | None:
        """The feed's shared `combine` of the entries after `sequence` (at most `limit`) now, and
        the last sequence it carries; None if there are none (ParticipantFeed.batch).

        Raises Finished, Overflowed, Closing or Broken.
        """
        return self.feed.batch(sequence, limit, combine)


class ParticipantHub:
    def __init__(
        self,
        log_: PgEventLog,
        *,
        ring_size: int,
        stall_s: float,
        encode: Callable[[ParticipantChange], Any],
        tick_s: float,
    ) -> None:
        self._log = log_
        self._ring_size = ring_size
        self._stall_s = stall_s
        self._tick_s = tick_s
        self._encode = encode
        self._feeds: dict[str, ParticipantFeed] = {}
        self._closing = False

    @property
    def feeds(self) -> int:
        return len(self._feeds)

    def on_participant_events(self, livestream_id: str) -> None:
        if (feed := self._feeds.get(livestream_id)) is not None:
            feed.wake()

    def on_livestream_change(self, livestream_id: str) -> None:
        if (feed := self._feeds.get(livestream_id)) is not None:
            feed.wake(check_end=True)

    def wake_all(self) -> None:
        for feed in self._feeds.values():
            feed.wake(check_end=True)

    def subscribe(self, livestream_id: str) -> Reader:
        """`async with hub.subscribe(id) as reader`: register with the livestream's feed before
        the caller reads its catch-up.

        A new feed starts from the sequence committed now; the caller's catch-up read comes
        after it, so it reaches at least that far and the feed continues without a gap.
        """
        return Reader(self, livestream_id)

    async def _join(self, livestream_id: str, token: object) -> ParticipantFeed:
        if self._closing:
            raise Closing
        feed = self._feeds.get(livestream_id)
        if feed is None or feed.broken:
            livestream = await self._log.livestream(livestream_id)
            head = livestream.last_event_sequence if livestream is not None else 0
            feed = self._feeds.get(livestream_id)  # another watcher may have won the race
            if feed is None or feed.broken:
                feed = ParticipantFeed(
                    livestream_id,
                    self._log,
                    head,
                    encode=self._encode,
                    ring_size=self._ring_size,
                    stall_s=self._stall_s,
                    tick_s=self._tick_s,
                )
                self._feeds[livestream_id] = feed
                feed.task = asyncio.create_task(
                    feed.run(), name=f"participant-feed-{livestream_id}"
                )
                feed.wake(check_end=True)  # it may have ended already
        feed.positions[token] = feed.head
        return feed

    async def _leave(self, feed: ParticipantFeed, token: object) -> None:
        del feed.positions[token]
        feed._progress.set()
        if not feed.positions and self._feeds.get(feed.livestream_id) is feed:
            del self._feeds[feed.livestream_id]
            if feed.task is not None:
                await cancel_and_wait(feed.task)

    async def close(self) -> None:
        self._closing = True
        for feed in list(self._feeds.values()):
            feed.close()
