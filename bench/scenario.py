"""What every scenario has: the run's environment, and the setup / once / close protocol."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import asyncpg

from bench import yardsticks
from bench.context import RunContext
from bench.machine_cpu import CpuLedger
from bench.results import Measurement, Spec, Yardstick
from bench.services import Services
from bench.sizes import Sizes


@dataclass
class Env:
    ctx: RunContext
    services: Services
    sizes: Sizes
    db: asyncpg.Pool[Any]  # the suite's own pool: fixtures, checks, reading timestamps
    amqp_yardstick_queue: str
    cpu: CpuLedger  # every process's CPU over a window (machine_cpu.py)

    async def pg_commit(self) -> Yardstick:
        return await yardsticks.pg_commit(
            self.ctx.dsn, duration_s=self.sizes.yardstick_s, max_count=self.sizes.yardstick_max
        )

    async def amqp_publish(self) -> Yardstick:
        return await yardsticks.amqp_publish(
            self.amqp_yardstick_queue,
            duration_s=self.sizes.yardstick_s,
            max_count=self.sizes.yardstick_max,
        )

    async def grpc_echo(
        self, *, concurrency: int, channels: int, metadata: Sequence[tuple[str, str]]
    ) -> Yardstick:
        return await yardsticks.grpc_echo(
            await self.services.echo(),
            concurrency=concurrency,
            channels=channels,
            metadata=metadata,
            duration_s=self.sizes.yardstick_s,
            max_count=self.sizes.yardstick_max,
        )


class Scenario(abc.ABC):
    """setup() once, once(warmup=True) once, then yardstick() + once() per repeat, close()."""

    spec: ClassVar[Spec]

    def __init__(self, env: Env) -> None:
        self.env = env
        self.sizes = env.sizes

    async def setup(self) -> None:  # noqa: B027 - optional hook
        """Start processes and build state shared by every repeat."""

    @abc.abstractmethod
    async def yardstick(self) -> Yardstick:
        """Measure this scenario's yardstick (called right before each repeat)."""

    @abc.abstractmethod
    async def once(self, *, warmup: bool) -> Measurement:
        """One repeat; with warmup=True a small one whose result is discarded."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Stop what setup() started (the runner calls it whatever happened)."""
