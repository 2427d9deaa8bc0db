"""ListParticipants deep in a large livestream: keyset pages must cost the same at any depth."""

from __future__ import annotations

import time
from typing import ClassVar

import grpc

from bench.fixtures import Stream, joined_participants, live_livestreams
from bench.results import Measurement, Spec, Yardstick
from bench.scenario import Env, Scenario
from bench.stats import latency_ms, median
from bench.yardsticks import GRPC_ECHO, channel_options
from favorited_api.v1 import participant_service_pb2 as ppb
from favorited_api.v1 import participant_service_pb2_grpc as ps_grpc

PAGE_SIZE = 100  # the API's maximum
DEEP_PAGE = 1_000


class ListPage(Scenario):
    spec: ClassVar[Spec] = Spec(
        name="list_page",
        what="ListParticipants pages/s walking every page (sequential)",
        unit="pages/s",
        yardstick=GRPC_ECHO,
        target="time of page 1,000 <= 2x time of page 1",
        checks={
            "page1000<=2x page1": lambda s: s.get("depth_ratio") <= 2,
            "all pages": lambda s: s.get("rows_seen") == s.get("participants"),
        },
    )

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.md = env.ctx.authorization("bench-lister")

    async def setup(self) -> None:
        target, _ = await self.env.services.api()
        self.channel = grpc.aio.insecure_channel(target, options=channel_options())
        self.stub = ps_grpc.ParticipantServiceStub(self.channel)
        self.size = self.sizes.list_participants
        async with self.env.db.acquire() as conn:
            (self.stream,) = await live_livestreams(conn, 1, prefix=f"list-{self.env.ctx.run_id}")
            await joined_participants(
                conn, self.stream, self.size, user_prefix="l-", connected=False
            )
            await conn.execute("ANALYZE participants")

    async def yardstick(self) -> Yardstick:
        return await self.env.grpc_echo(concurrency=1, channels=1, metadata=self.md)

    async def close(self) -> None:
        await self.channel.close()

    async def _page(self, stream: Stream, token: str) -> tuple[ppb.ListParticipantsResponse, float]:
        started = time.perf_counter()
        reply = await self.stub.ListParticipants(
            ppb.ListParticipantsRequest(
                livestream_id=stream.id, page_size=PAGE_SIZE, page_token=token
            ),
            metadata=self.md,
            timeout=30,
        )
        return reply, time.perf_counter() - started

    async def once(self, *, warmup: bool) -> Measurement:
        # Walk every page, keeping the token that opens the deep page.
        deep = min(DEEP_PAGE, self.size // PAGE_SIZE)
        token, deep_token, rows, page = "", "", 0, 0
        walk: list[float] = []
        started = time.perf_counter()
        while time.perf_counter() - started < self.sizes.deadline_s:
            page += 1
            if page == deep:
                deep_token = token
            reply, seconds = await self._page(self.stream, token)
            walk.append(seconds)
            rows += len(reply.participants)
            token = reply.next_page_token
            if not token or (warmup and page >= 10):
                break
        elapsed = time.perf_counter() - started
        # Then page 1 and the deep page, alternately, so both see the same conditions.
        first: list[float] = []
        deep_times: list[float] = []
        for _ in range(self.sizes.page_repeats):
            first.append((await self._page(self.stream, ""))[1])
            deep_times.append((await self._page(self.stream, deep_token))[1])
        p50, p99 = latency_ms(walk)
        return Measurement(
            value=len(walk) / elapsed,
            p50_ms=p50,
            p99_ms=p99,
            details={
                "participants": self.size,
                "rows_seen": rows,
                "deep_page": deep,
                "page1_ms": median(first) * 1000,
                "deep_page_ms": median(deep_times) * 1000,
                "depth_ratio": median(deep_times) / median(first),
            },
        )
