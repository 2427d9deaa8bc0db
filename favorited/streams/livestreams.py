"""LivestreamHub: the latest state of each watched livestream, read once per change per process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from favorited import errors
from favorited.domain import models
from favorited.store.events import PgEventLog
from favorited.streams.subscribers import Closing
from favorited.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class LatestState:
    """One watcher's view: the newest livestream state, replaced (coalesced) by newer ones."""

    def __init__(self) -> None:
        self.latest: models.Livestream | None = None
        self.changed = asyncio.Event()
        self.closing = False

    def update(self, livestream: models.Livestream) -> None:
        self.latest = livestream
        self.changed.set()

    def close(self) -> None:
        self.closing = True
        self.changed.set()

    async def wait(self, timeout_s: float) -> bool:
        """True when there is something new (or the server is closing), False on timeout."""
        if self.closing:
            raise Closing
        try:
            async with asyncio.timeout(timeout_s):
                await self.changed.wait()
        except TimeoutError:
            return False
        if self.closing:
            raise Closing
        self.changed.clear()
        return True


class LivestreamFeed:
    def __init__(self, livestream_id: str, log_: PgEventLog) -> None:
        self.livestream_id = livestream_id
        self._log = log_
        self.states: set[LatestState] = set()
        self._wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                livestream = await self._log.livestream(self.livestream_id)
            except errors.DependencyUnavailableError:
                log.warning("livestream feed read failed", extra={"livestream": self.livestream_id})
                continue
            if livestream is None:
                continue
            for state in self.states:
                state.update(livestream)


class LivestreamHub:
    def __init__(self, log_: PgEventLog) -> None:
        self._log = log_
        self._feeds: dict[str, LivestreamFeed] = {}
        self._closing = False

    def on_livestream_change(self, livestream_id: str) -> None:
        if (feed := self._feeds.get(livestream_id)) is not None:
            feed.wake()

    def wake_all(self) -> None:
        for feed in self._feeds.values():
            feed.wake()

    @contextlib.asynccontextmanager
    async def subscribe(self, livestream_id: str) -> AsyncIterator[LatestState]:
        if self._closing:
            raise Closing
        state = LatestState()
        feed = self._feeds.get(livestream_id)
        if feed is None:
            feed = LivestreamFeed(livestream_id, self._log)
            self._feeds[livestream_id] = feed
            feed.task = asyncio.create_task(feed.run(), name=f"livestream-feed-{livestream_id}")
        feed.states.add(state)
        try:
            yield state
        finally:
            feed.states.discard(state)
            if not feed.states and self._feeds.get(livestream_id) is feed:
                del self._feeds[livestream_id]
                if feed.task is not None:
                    await cancel_and_wait(feed.task)

    async def close(self) -> None:
        self._closing = True
        for feed in list(self._feeds.values()):
            for state in feed.states:
                state.close()
