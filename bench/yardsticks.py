"""The same-run yardsticks: what the raw infrastructure does on this machine, right now.

Each scenario is reported as a ratio to one of them, measured just before each of its repeats,
so a noisy neighbour slows the scenario and its yardstick alike.

- pg_commit: single-row INSERT + COMMIT (autocommit) from 8 asyncpg connections.
- amqp_publish: persistent publishes with publisher confirms, 64 in flight, to a quorum queue
  declared exactly like the webhook queue, through aio-pika as the shim uses it.
- grpc_echo: a unary bytes echo on a bare grpc.aio server in its own process, called with the
  scenario's concurrency, channels and metadata.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Sequence

import aio_pika
import asyncpg
import grpc

from bench.context import AMQP_URL
from bench.echo_server import METHOD
from bench.infra import SCRATCH_TABLE
from bench.loadgen import closed_loop
from bench.results import Yardstick
from bench.stats import latency_ms
from favorited.broker.topology import Topology, webhook_message

PG_CONNECTIONS = 8
AMQP_IN_FLIGHT = 64
# A body of the size of a participant webhook, so the broker moves the same bytes.
_AMQP_BODY = b'{"event": "participant_joined", "padding": "' + b"x" * 400 + b'"}'

PG_COMMIT = "pg_commit"
AMQP_PUBLISH = "amqp_publish"
GRPC_ECHO = "grpc_echo"


async def pg_commit(dsn: str, *, duration_s: float, max_count: int) -> Yardstick:
    connections = [await asyncpg.connect(dsn, timeout=10) for _ in range(PG_CONNECTIONS)]
    sql = f"INSERT INTO {SCRATCH_TABLE} (v) VALUES ($1)"
    free: asyncio.Queue[asyncpg.Connection] = asyncio.Queue()
    for conn in connections:
        free.put_nowait(conn)

    async def commit(index: int) -> None:
        conn = await free.get()
        try:
            await conn.execute(sql, "bench")
        finally:
            free.put_nowait(conn)

    try:
        result = await closed_loop(
            commit, total=max_count, concurrency=PG_CONNECTIONS, deadline_s=duration_s
        )
    finally:
        for conn in connections:
            await conn.close()
    p50, p99 = latency_ms(result.latencies_s)
    return Yardstick(PG_COMMIT, "commits/s", result.rate, p50, p99)


async def amqp_publish(queue: str, *, duration_s: float, max_count: int) -> Yardstick:
    connection = await aio_pika.connect_robust(AMQP_URL, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        topology = Topology(queue, 5)
        declared, _ = await topology.declare(channel)
        ids = (uuid.uuid4().hex for _ in itertools.count())

        async def publish(index: int) -> None:
            await channel.default_exchange.publish(
                webhook_message(_AMQP_BODY, event_id=next(ids), event="participant_joined"),
                routing_key=queue,
                mandatory=True,
                timeout=10,
            )

        result = await closed_loop(
            publish, total=max_count, concurrency=AMQP_IN_FLIGHT, deadline_s=duration_s
        )
        await declared.purge()  # the queue is reused by the next measurement; keep it empty
    p50, p99 = latency_ms(result.latencies_s)
    return Yardstick(AMQP_PUBLISH, "publishes/s", result.rate, p50, p99)


async def grpc_echo(
    target: str,
    *,
    concurrency: int,
    channels: int,
    metadata: Sequence[tuple[str, str]],
    duration_s: float,
    max_count: int,
) -> Yardstick:
    opened = [grpc.aio.insecure_channel(target, options=channel_options()) for _ in range(channels)]
    try:
        # No serializers: bytes in, bytes out, as the echo server handles them.
        calls: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
            ch.unary_unary(METHOD) for ch in opened
        ]
        payload = b"x" * 64
        md = tuple(metadata)

        async def echo(index: int) -> None:
            await calls[index % len(calls)](payload, metadata=md, timeout=10)

        for index in range(len(calls)):
            await echo(index)  # connect outside the timed loop, as the scenarios do
        result = await closed_loop(
            echo, total=max_count, concurrency=concurrency, deadline_s=duration_s
        )
    finally:
        for ch in opened:
            await ch.close()
    p50, p99 = latency_ms(result.latencies_s)
    return Yardstick(GRPC_ECHO, "calls/s", result.rate, p50, p99)


def channel_options() -> list[tuple[str, int]]:
    """Client channel options of every gRPC client in the suite.

    A local subchannel pool gives each channel its own TCP connection; by default grpc shares
    one connection among channels with identical arguments, which would put every stream of a
    10,000-watcher run on a single HTTP/2 connection.
    """
    return [("grpc.use_local_subchannel_pool", 1)]
