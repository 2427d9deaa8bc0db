"""Unary RPCs under concurrency: JoinLivestream and CreateLivestream, against the echo yardstick
called with the same concurrency, channel and metadata."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import ClassVar

import grpc

from bench.fixtures import Stream, live_livestreams
from bench.loadgen import closed_loop
from bench.machine_cpu import per_op_ms
from bench.results import Measurement, Spec, Yardstick
from bench.scenario import Env, Scenario
from bench.stats import latency_ms
from bench.yardsticks import GRPC_ECHO, channel_options
from favorited_api.v1 import livestream_pb2
from favorited_api.v1 import livestream_service_pb2 as lpb
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from favorited_api.v1 import participant_service_pb2 as ppb
from favorited_api.v1 import participant_service_pb2_grpc as ps_grpc

CONCURRENCY = 32
CHANNELS = 1  # one shared channel: HTTP/2 multiplexes the 32 calls
JOIN_LIVESTREAMS = 8  # joins of one livestream serialise on its row lock; spread them

log = logging.getLogger("bench")


class RpcScenario(Scenario):
    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.round = 0
        self.channel: grpc.aio.Channel | None = None
        self.sample_md = env.ctx.authorization("bench-sample-user")

    async def setup(self) -> None:
        target, self.api = await self.env.services.api()
        self.channel = grpc.aio.insecure_channel(target, options=channel_options())

    async def yardstick(self) -> Yardstick:
        return await self.env.grpc_echo(
            concurrency=CONCURRENCY, channels=CHANNELS, metadata=self.sample_md
        )

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()

    async def drive(self, total: int, call: Callable[[int], Awaitable[None]]) -> Measurement:
        cpu, machine = self.api.cpu_seconds(), self.env.cpu.read()
        result = await closed_loop(
            call, total=total, concurrency=CONCURRENCY, deadline_s=self.sizes.deadline_s
        )
        cpu, spent = self.api.cpu_seconds() - cpu, self.env.cpu.since(machine)
        p50, p99 = latency_ms(result.latencies_s)
        if result.first_error:
            log.warning(
                "%s: %d failed; first: %s", self.spec.name, result.failed, result.first_error
            )
        return Measurement(
            value=result.rate,
            p50_ms=p50,
            p99_ms=p99,
            details={
                "completed": result.completed,
                "failed": result.failed,
                # Near 100: the API process is CPU-bound (one core: one event loop).
                "api_cpu_pct": 100 * cpu / result.elapsed_s,
                **per_op_ms(spent, result.completed),
            },
        )


class Join(RpcScenario):
    spec: ClassVar[Spec] = Spec(
        name="join",
        what="JoinLivestream calls/s, 32 concurrent distinct callers",
        unit="calls/s",
        yardstick=GRPC_ECHO,
        target=">= 25 % of echo rate",
        checks={
            "ratio>=0.25": lambda s: s.ratio >= 0.25,
            "no failures": lambda s: s.get("failed") == 0,
        },
    )

    async def setup(self) -> None:
        await super().setup()
        async with self.env.db.acquire() as conn:
            self.streams: list[Stream] = await live_livestreams(
                conn, JOIN_LIVESTREAMS, prefix=f"join-{self.env.ctx.run_id}"
            )

    async def once(self, *, warmup: bool) -> Measurement:
        assert self.channel is not None
        self.round += 1
        total = self.sizes.join_calls // (10 if warmup else 1)
        stub = ps_grpc.ParticipantServiceStub(self.channel)
        # Every caller is a distinct user (a user may be JOINED once per livestream).
        calls = [
            (
                ppb.JoinLivestreamRequest(
                    livestream_id=self.streams[i % len(self.streams)].id, display_name="Viewer"
                ),
                self.env.ctx.authorization(f"j{self.round}-{i}"),
            )
            for i in range(total)
        ]

        async def join(index: int) -> None:
            request, metadata = calls[index]
            await stub.JoinLivestream(request, metadata=metadata, timeout=30)

        return await self.drive(total, join)


class Create(RpcScenario):
    spec: ClassVar[Spec] = Spec(
        name="create",
        what="CreateLivestream calls/s through the LiveKit emulator, 32 concurrent",
        unit="calls/s",
        yardstick=GRPC_ECHO,
        target=">= 20 % of echo rate",
        checks={
            "ratio>=0.20": lambda s: s.ratio >= 0.20,
            "no failures": lambda s: s.get("failed") == 0,
        },
    )

    async def once(self, *, warmup: bool) -> Measurement:
        assert self.channel is not None
        self.round += 1
        total = self.sizes.create_calls // (10 if warmup else 1)
        stub = ls_grpc.LivestreamServiceStub(self.channel)
        creators = [self.env.ctx.authorization(f"creator-{k}") for k in range(CONCURRENCY)]
        prefix = f"c-{self.env.ctx.run_id}-{self.round}"
        requests = [
            lpb.CreateLivestreamRequest(
                livestream=livestream_pb2.Livestream(
                    room_name=f"{prefix}-{i}", title="Bench livestream", max_participants=100
                )
            )
            for i in range(total)
        ]

        async def create(index: int) -> None:
            await stub.CreateLivestream(
                requests[index], metadata=creators[index % len(creators)], timeout=30
            )

        return await self.drive(total, create)
