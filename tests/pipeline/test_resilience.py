"""Nothing accepted is lost: poison, database outages, consumer crashes, broker restarts."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import aiohttp
import asyncpg
import pytest

from favorited.app import ConsumerApp, WebhooksApp
from favorited.config import Settings
from favorited.metrics import Metrics
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from tests.api.helpers import create
from tests.conftest import LIVEKIT_KEY, LIVEKIT_SECRET, Metadata, dsn_for
from tests.pipeline.conftest import AMQP_URL, WEBHOOK_PATH, Post, eventually
from tests.support.livekit_webhooks import event_body, sid, sign
from tests.support.rabbitmq_node import RabbitMQNode
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import until

Auth = Callable[..., Metadata]


def _joins(room_sid: str, room_name: str, count: int, prefix: str) -> list[tuple[str, bytes]]:
    now = int(time.time() * 1000)
    return [
        event_body(
            "participant_joined",
            room_sid=room_sid,
            room_name=room_name,
            participant_sid=sid("PA_"),
            identity=f"{prefix}{i}",
            joined_at_ms=now,
        )
        for i in range(count)
    ]


async def _post_to(http: aiohttp.ClientSession, port: int, body: bytes) -> int:
    headers = {"Authorization": sign(body, LIVEKIT_KEY, LIVEKIT_SECRET)}
    try:
        async with http.post(
            f"http://127.0.0.1:{port}{WEBHOOK_PATH}", data=body, headers=headers
        ) as r:
            return r.status
    except aiohttp.ClientError:
        return 0


async def _deliver(http: aiohttp.ClientSession, port: int, body: bytes) -> int:
    """POST until accepted, as LiveKit does: a 503 (the shim could not get RabbitMQ's confirm in
    time, e.g. on a loaded machine) is retried with the same body, so the same event id."""
    status = 0
    for _ in range(50):
        status = await _post_to(http, port, body)
        if status != 503:
            return status
    return status


async def test_poison_is_dead_lettered_after_the_delivery_limit_while_the_rest_flows(
    consumer: ConsumerApp,
    post: Post,
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    # Correctly signed, decodable, but its effect fails every time (PostgreSQL refuses NUL).
    poison_id, poison = event_body(
        "participant_joined",
        room_sid=ls.livekit_room_sid,
        room_name=room_name,
        participant_sid=sid("PA_"),
        identity="bad\u0000actor",
        joined_at_ms=1,
    )
    assert await post(poison) == 200
    good = _joins(ls.livekit_room_sid, room_name, 20, "ok")
    assert all(s == 200 for s in await asyncio.gather(*(post(b) for _, b in good)))
    await eventually(db, "SELECT count(*) FROM webhook_inbox", 20)
    await eventually(db, "SELECT count(*) FROM dead_letters", 1)
    letter = await db.fetchrow("SELECT event_id, event, reason, attempts, body FROM dead_letters")
    assert letter is not None
    assert (letter["event_id"], letter["event"]) == (poison_id, "participant_joined")
    assert letter["reason"] == "delivery_limit" and letter["attempts"] >= 3
    assert bytes(letter["body"]) == poison
    assert (
        await db.fetchval("SELECT count(*) FROM webhook_inbox WHERE event_id = $1", poison_id) == 0
    )


async def test_database_outage_pauses_the_consumer_and_loses_nothing(
    pipeline_settings: Settings,
    shim: WebhooksApp,
    post: Post,
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    database_name: str,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    settings = dataclasses.replace(
        pipeline_settings, database_url=dsn_for(database_name, port=proxy.port)
    )
    app = await ConsumerApp.start(settings, metrics=Metrics(), run_jobs=False)
    try:
        first = _joins(ls.livekit_room_sid, room_name, 10, "before")
        assert all(s == 200 for s in await asyncio.gather(*(post(b) for _, b in first)))
        await eventually(db, "SELECT count(*) FROM webhook_inbox", 10)
        await proxy.cut()
        during = _joins(ls.livekit_room_sid, room_name, 30, "during")
        assert all(s == 200 for s in await asyncio.gather(*(post(b) for _, b in during)))
        # The consumer holds these and retries in place while PostgreSQL is unreachable.
        await until(lambda: not app.handler.idle.is_set())
        await proxy.restore()
        await eventually(db, "SELECT count(*) FROM webhook_inbox", 40)
        assert await db.fetchval("SELECT count(*) FROM dead_letters") == 0
        assert (
            await db.fetchval("SELECT count(*) FROM participants WHERE livestream_id = $1", ls.id)
            == 40
        )
    finally:
        await proxy.restore_if_cut()
        await app.stop()
        await proxy.cut()


@pytest.mark.timeout(180)
async def test_sigkilled_consumers_apply_every_accepted_webhook_exactly_once(
    pipeline_settings: Settings,
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    # Every kill returns the held messages and counts as a delivery: allow for that.
    settings = dataclasses.replace(pipeline_settings, webhook_max_deliveries=50)
    shim = await WebhooksApp.start(settings)
    total = 3000
    events = _joins(ls.livekit_room_sid, room_name, total, "k")
    env = {
        **os.environ,
        "DATABASE_URL": pipeline_settings.database_url or "",
        "LIVEKIT_URL": pipeline_settings.livekit_url or "",
        "LIVEKIT_API_KEY": LIVEKIT_KEY,
        "LIVEKIT_API_SECRET": LIVEKIT_SECRET,
        "AMQP_URL": pipeline_settings.amqp_url,
        "WEBHOOK_QUEUE": pipeline_settings.webhook_queue,
        "WEBHOOK_MAX_DELIVERIES": "50",
        "WEBHOOK_QUEUE_CONCURRENCY": "16",
        "WEBHOOK_APPLY_LANES": "16",
        "LOG_LEVEL": "WARNING",
    }

    async def start_consumer() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "favorited",
            "consumer",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    async with aiohttp.ClientSession() as http:
        posting = asyncio.gather(*(_deliver(http, shim.port, b) for _, b in events))
        consumer = await start_consumer()
        try:
            for _ in range(3):
                applied = await db.fetchval("SELECT count(*) FROM webhook_inbox")

                async def progressed(since: int = applied) -> bool:
                    return (
                        int(await db.fetchval("SELECT count(*) FROM webhook_inbox")) >= since + 200
                    )

                await until(progressed)
                consumer.send_signal(signal.SIGKILL)
                await consumer.wait()
                consumer = await start_consumer()
            statuses = await posting
            assert statuses.count(200) == total
            await eventually(db, "SELECT count(*) FROM webhook_inbox", total)
        finally:
            if consumer.returncode is None:
                consumer.send_signal(signal.SIGTERM)
            exit_code = await consumer.wait()
            await shim.stop()
    assert exit_code == 0  # SIGTERM drains and exits cleanly
    assert (
        await db.fetchval("SELECT count(*) FROM participants WHERE livestream_id = $1", ls.id)
        == total
    )
    assert (
        await db.fetchval("SELECT count(*) FROM participant_events WHERE livestream_id = $1", ls.id)
        == total
    )
    assert await db.fetchval("SELECT count(*) FROM dead_letters") == 0


@pytest.fixture
async def own_broker() -> AsyncIterator[RabbitMQNode]:
    if not RabbitMQNode.available():
        pytest.skip("rabbitmq-server is not installed")
    node = RabbitMQNode()
    await node.start()
    yield node
    await node.destroy()


@pytest.mark.timeout(180)
async def test_broker_restart_during_ingest_answers_503_and_loses_nothing_accepted(
    own_broker: RabbitMQNode,
    pipeline_settings: Settings,
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    auth: Auth,
    db: asyncpg.Pool,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    settings = dataclasses.replace(pipeline_settings, amqp_url=own_broker.url)
    shim = await WebhooksApp.start(settings)
    consumer = await ConsumerApp.start(settings, metrics=Metrics(), run_jobs=False)
    accepted: list[str] = []
    statuses: list[int] = []
    broker_down = asyncio.Event()
    try:
        async with aiohttp.ClientSession() as http:

            async def ingest(prefix: str, count: int) -> None:
                for event_id, body in _joins(ls.livekit_room_sid, room_name, count, prefix):
                    status = await _post_to(http, shim.port, body)
                    statuses.append(status)
                    if status == 200:
                        accepted.append(event_id)

            await ingest("a", 50)
            await own_broker.stop()
            broker_down.set()
            await ingest("b", 20)  # broker down: every one must be refused, none accepted
            assert statuses[-20:] == [503] * 20
            await own_broker.start()
            # Keep sending until the shim has reconnected and accepts again.
            attempt = 0
            while not statuses or statuses[-1] != 200:
                await ingest(f"c{attempt}-", 1)
                attempt += 1
            await ingest("d", 50)
        await eventually(db, "SELECT count(*) FROM webhook_inbox", len(accepted))
        applied = {r["event_id"] for r in await db.fetch("SELECT event_id FROM webhook_inbox")}
        assert applied == set(accepted)
        assert len(accepted) >= 101
    finally:
        await consumer.stop()
        await shim.stop()


async def test_a_channel_the_broker_closes_under_load_is_reopened_and_loses_nothing(
    shim: WebhooksApp, pipeline_settings: Settings, db: asyncpg.Pool
) -> None:
    # A channel-level error (here an ack of a tag the broker never delivered) makes RabbitMQ
    # close the consumer's channel with hundreds of messages in flight on it: the robust channel
    # must come back, consume again, and every message be applied exactly once.
    count = 10_000
    bodies = [
        event_body("room_started", room_sid=sid("RM_"), room_name=f"c{i}") for i in range(count)
    ]
    event_ids = [event_id for event_id, _ in bodies]
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        for start in range(0, count, 500):
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(
                            body,
                            message_id=event_id,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=pipeline_settings.webhook_queue,
                    )
                    for event_id, body in bodies[start : start + 500]
                )
            )

    async def applied() -> int:
        found: int = await db.fetchval(
            "SELECT count(*) FROM webhook_inbox WHERE event_id = ANY($1)", event_ids
        )
        return found

    # The queue (declared by the shim) is full before the consumer starts: it drains at full
    # speed, and the channel closes with thousands still to deliver.
    consumer = await ConsumerApp.start(pipeline_settings, metrics=Metrics(), run_jobs=False)
    try:
        await until(lambda: _at_least(applied, 200))
        underlay = await consumer.consumers[0][0].channel.get_underlay_channel()
        await underlay.basic_ack(delivery_tag=10_000_000)  # the broker closes the channel
        await until(lambda: underlay.is_closed)
        assert await applied() < count
        await until(lambda: _at_least(applied, count))
        assert await applied() == count
    finally:
        await consumer.stop()


async def _at_least(count: Callable[[], Awaitable[int]], expected: int) -> bool:
    return await count() >= expected
