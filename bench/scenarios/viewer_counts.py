"""Viewer counts under concurrent joins and leaves on a few livestreams, through the shim and
the consumer: the figures must equal the truth exactly (no lost updates).

Phase 1: every user connects (participant_joined) on every livestream.
Phase 2, shuffled: every user's session ends (participant_left) and half of the users connect
again with a new session. Whatever the order the consumer applies them in, the truth is
viewer_count = users/2, peak = users, unique = users.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import ClassVar

from bench import inbox
from bench.fixtures import Stream, live_livestreams
from bench.livekit_webhooks import JOINED, LEFT, Event, Signer, participant_event
from bench.procs import Child
from bench.results import Measurement, Spec, Yardstick
from bench.scenario import Env, Scenario
from bench.scenarios.webhooks import post_all
from bench.yardsticks import PG_COMMIT

CONCURRENCY = 32
_FIGURES = """
SELECT l.viewer_count, l.peak_viewer_count, l.unique_viewer_count,
       (SELECT count(*) FROM participants p
        WHERE p.livestream_id = l.id AND p.status = 'JOINED' AND p.connected) AS connected
FROM livestreams l WHERE l.id = $1
"""


class ViewerCounts(Scenario):
    spec: ClassVar[Spec] = Spec(
        name="viewer_counts",
        what="webhook events applied/s, joins and leaves racing on a few livestreams",
        unit="events/s",
        yardstick=PG_COMMIT,
        target="viewer_count, peak and unique exactly right: 0 lost updates",
        checks={"0 lost updates": lambda s: s.get("wrong_figures") == 0},
    )

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.round = 0
        self.children: list[Child] = []
        self.signer = Signer(env.ctx.livekit_key, env.ctx.livekit_secret)

    async def setup(self) -> None:
        queue = self.env.ctx.queue("viewers")
        self.url, shim = await self.env.services.start_shim("shim-viewers", queue)
        self.children.append(shim)
        self.children.append(await self.env.services.start_consumer("consumer-viewers", queue))

    async def yardstick(self) -> Yardstick:
        return await self.env.pg_commit()

    async def close(self) -> None:
        for child in self.children:
            await self.env.services.stop(child)

    async def once(self, *, warmup: bool) -> Measurement:
        self.round += 1
        users = self.sizes.viewer_users // (10 if warmup else 1)
        tag = f"v{self.round}"
        async with self.env.db.acquire() as conn:
            streams = await live_livestreams(
                conn, self.sizes.viewer_streams, prefix=f"viewers-{self.env.ctx.run_id}-{tag}"
            )
        now_ms = int(time.time() * 1000)

        def event(kind: str, stream: int, user: int, session: int) -> Event:
            return participant_event(
                kind,
                streams[stream],
                event_id=f"EV_{tag}_{kind}_{stream}_{user}_{session}",
                participant_sid=f"PA_{tag}_{stream}_{user}_{session}",
                identity=f"viewer-{user}",
                at_ms=now_ms + session * 1000,  # a newer session has a later joined_at
            )

        n = len(streams)
        phase1 = [event(JOINED, s, u, 0) for u in range(users) for s in range(n)]
        phase2 = [event(LEFT, s, u, 0) for u in range(users) for s in range(n)]
        phase2 += [event(JOINED, s, u, 1) for u in range(users // 2) for s in range(n)]
        random.Random(self.round).shuffle(phase2)

        started = time.perf_counter()
        wrong = await self._phase(phase1, streams, f"EV_{tag}_", expect=(users, users, users))
        wrong += await self._phase(
            phase2,
            streams,
            f"EV_{tag}_",
            expect=(users // 2, users, users),
            already=len(phase1),
        )
        elapsed = time.perf_counter() - started
        return Measurement(
            value=(len(phase1) + len(phase2)) / elapsed,
            details={
                "livestreams": n,
                "users": users,
                "events": len(phase1) + len(phase2),
                "wrong_figures": wrong,
            },
        )

    async def _phase(
        self,
        events: list[Event],
        streams: list[Stream],
        prefix: str,
        *,
        expect: tuple[int, int, int],
        already: int = 0,
    ) -> int:
        """Send a phase, wait until the consumer applied it, count wrong figures."""
        webhooks = [self.signer.sign(e) for e in events]
        ok, failed, _, _, error = await post_all(
            self.url, webhooks, concurrency=CONCURRENCY, deadline_s=self.sizes.deadline_s
        )
        assert failed == 0, error
        deadline = time.monotonic() + self.sizes.deadline_s
        while await inbox.applied(self.env.db, prefix) < already + ok:
            assert time.monotonic() < deadline, "the consumer did not apply the phase in time"
            await asyncio.sleep(0.1)  # polling rows of another process
        viewers, peak, unique = expect
        wrong = 0
        for stream in streams:
            row = await self.env.db.fetchrow(_FIGURES, stream.id)
            assert row is not None
            wrong += sum(
                (
                    row["viewer_count"] != viewers,
                    row["peak_viewer_count"] != peak,
                    row["unique_viewer_count"] != unique,
                    row["connected"] != viewers,
                )
            )
        return wrong
