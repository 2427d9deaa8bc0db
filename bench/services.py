"""The processes a run needs, started on demand and stopped at the end.

Shared, started at most once per run: the LiveKit emulator, the echo server and a general API
process. Scenarios that need a process configured differently (a shim on a queue of its own, a
consumer per repeat, an API for 10,000 watchers) start their own through the same helpers.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aio_pika
import aiohttp
import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.context import AMQP_URL, HOST, RunContext
from bench.echo_server import METHOD
from bench.procs import Child, free_port, port_open, spawn, wait_ready
from bench.profiling import Profiler
from favorited.consumer.jobs import JOBS_LOCK_KEY

log = logging.getLogger(__name__)


class Services:
    def __init__(self, ctx: RunContext, profiler: Profiler | None = None) -> None:
        self.ctx = ctx
        self._profiler = profiler
        self._children: list[Child] = []
        # Each child's kind (api, shim, consumer, ...), for the CPU ledger: a scenario's own
        # shim or a repeat's consumer counts with the others of its kind.
        self._kinds: dict[int, str] = {}
        self._emulator_url: str | None = None
        self._echo: str | None = None
        self._api: tuple[str, Child] | None = None
        self._jobs_lock: asyncpg.Connection[Any] | None = None

    # -- environment -----------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a favorited process of this run."""
        assert self._emulator_url is not None, "start the emulator first"
        return {
            "DATABASE_URL": self.ctx.dsn,
            "LIVEKIT_URL": self._emulator_url,
            "LIVEKIT_API_KEY": self.ctx.livekit_key,
            "LIVEKIT_API_SECRET": self.ctx.livekit_secret,
            "FAVORITED_JWT_SECRET": self.ctx.jwt_secret,
            "AMQP_URL": AMQP_URL,
            "GRPC_HOST": HOST,
            "HTTP_HOST": HOST,
            # FAVORITED_BENCH_LOG_LEVEL=INFO logs every failed RPC (the default keeps logs small).
            "LOG_LEVEL": os.environ.get("FAVORITED_BENCH_LOG_LEVEL", "WARNING"),
            # DeleteLivestream's LiveKit call and the rest keep their production defaults.
            **extra,
        }

    async def hold_jobs_lock(self) -> None:
        """Hold the consumers' periodic-jobs lock for the whole run.

        Reconciliation would end the livestreams the suite inserts with SQL (their rooms exist
        in no LiveKit) and purges would run mid-measurement; a consumer that cannot take the
        advisory lock simply never runs the jobs (favorited/consumer/jobs.py).
        """
        self._jobs_lock = await asyncpg.connect(self.ctx.dsn, timeout=10)
        assert await self._jobs_lock.fetchval("SELECT pg_try_advisory_lock($1)", JOBS_LOCK_KEY)

    def named(self) -> dict[int, str]:
        """The run's own processes by kind: its children, and this one (the load generator)."""
        return {os.getpid(): "loadgen", **self._kinds}

    # -- shared processes ------------------------------------------------------------------

    async def emulator(self) -> str:
        if self._emulator_url is None:
            port = free_port()
            child = await self._spawn(
                "livekit-emulator",
                "livekit-emulator",
                ["-m", "favorited", "livekit-emulator", "--host", HOST, "--port", str(port)],
                {
                    "LIVEKIT_API_KEY": self.ctx.livekit_key,
                    "LIVEKIT_API_SECRET": self.ctx.livekit_secret,
                },
            )
            await wait_ready(child, lambda: port_open(port))
            self._emulator_url = f"http://{HOST}:{port}"
        return self._emulator_url

    async def echo(self) -> str:
        if self._echo is None:
            port = free_port()
            child = await self._spawn(
                "echo-server", "echo-server", ["-m", "bench.echo_server", "--port", str(port)], {}
            )
            target = f"{HOST}:{port}"
            await wait_ready(child, lambda: _echo_answers(target))
            self._echo = target
        return self._echo

    async def api(self) -> tuple[str, Child]:
        """The general API process (joins, creates, ends, lists)."""
        if self._api is None:
            self._api = await self.start_api("api")
        return self._api

    # -- per-scenario processes ------------------------------------------------------------

    async def start_api(self, name: str, **extra: str) -> tuple[str, Child]:
        await self.emulator()
        port = free_port()
        child = await self._spawn(
            name, "api", ["-m", "favorited", "api"], self.env(GRPC_PORT=str(port), **extra)
        )
        target = f"{HOST}:{port}"
        await wait_ready(child, lambda: _serving(target))
        await self._profile(child)
        return target, child

    async def start_shim(self, name: str, queue: str, **extra: str) -> tuple[str, Child]:
        await self.emulator()
        port = free_port()
        child = await self._spawn(
            name,
            "shim",
            ["-m", "favorited", "webhooks"],
            self.env(HTTP_PORT=str(port), WEBHOOK_QUEUE=queue, **extra),
        )
        url = f"http://{HOST}:{port}"
        await wait_ready(child, lambda: _http_ok(f"{url}/health"))
        await self._profile(child)
        return f"{url}/api/v1/webhooks/livekit", child

    async def start_consumer(self, name: str, queue: str, **extra: str) -> Child:
        await self.emulator()
        child = await self._spawn(
            name,
            "consumer",
            ["-m", "favorited", "consumer"],
            self.env(WEBHOOK_QUEUE=queue, **extra),
        )
        await wait_ready(child, lambda: _has_consumer(queue))
        await self._profile(child)
        return child

    async def stop(self, child: Child) -> None:
        code = await child.stop()
        if child in self._children:
            self._children.remove(child)
        self._kinds.pop(child.pid, None)
        if code not in (0, None):
            log.warning("%s exited with %s; log: %s", child.name, code, child.log_path)

    async def close(self) -> None:
        for child in reversed(list(self._children)):
            await self.stop(child)
        if self._jobs_lock is not None:
            await self._jobs_lock.close()
        if self._profiler is not None:
            await self._profiler.close()

    async def _profile(self, child: Child) -> None:
        if self._profiler is not None:
            await self._profiler.attach(child.name, child.pid)

    async def _spawn(self, name: str, kind: str, args: list[str], env: Mapping[str, str]) -> Child:
        child = await spawn(name, args, env, self.ctx.workdir)
        self._children.append(child)
        self._kinds[child.pid] = kind
        return child


@contextlib.asynccontextmanager
async def running(services: Services, child: Child) -> AsyncIterator[Child]:
    """Stop a per-scenario process when the block ends, however it ends."""
    try:
        yield child
    finally:
        await services.stop(child)


async def _serving(target: str) -> bool:
    async with grpc.aio.insecure_channel(target) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def _echo_answers(target: str) -> bool:
    async with grpc.aio.insecure_channel(target) as channel:
        try:
            echo: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)
            await echo(b"ping", timeout=1)
        except grpc.aio.AioRpcError:
            return False
        return True


async def _http_ok(url: str) -> bool:
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        return response.status == 200


async def _has_consumer(queue: str) -> bool:
    connection = await aio_pika.connect(AMQP_URL, timeout=5)
    async with connection:
        channel = await connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return False  # not declared yet: the consumer is still starting
        return (declared.declaration_result.consumer_count or 0) > 0
