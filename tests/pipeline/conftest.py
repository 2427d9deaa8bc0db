"""The webhook pipeline, assembled from the production composition roots: shim → RabbitMQ (a
quorum queue of this run's own) → consumer → PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import aiohttp
import asyncpg
import pytest

from favorited.app import ConsumerApp, WebhooksApp
from favorited.config import Settings
from favorited.domain.livekit_events import LiveKitEventService
from favorited.livekit_emulator import LiveKitEmulator
from favorited.metrics import Metrics
from favorited.store.database import PgDatabase
from favorited.store.pool import create_pool
from tests.conftest import LIVEKIT_KEY, LIVEKIT_SECRET, make_settings
from tests.support.livekit_webhooks import sign
from tests.support.waiting import until

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
WEBHOOK_PATH = "/api/v1/webhooks/livekit"


@pytest.fixture
def queue_name() -> str:
    return f"favorited.test.{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def pipeline_settings(
    database_url: str, emulator: LiveKitEmulator, queue_name: str
) -> AsyncIterator[Settings]:
    settings = make_settings(
        database_url,
        emulator.url,
        AMQP_URL=AMQP_URL,
        WEBHOOK_QUEUE=queue_name,
        WEBHOOK_MAX_DELIVERIES="3",
        WEBHOOK_QUEUE_CONCURRENCY="8",
        WEBHOOK_APPLY_LANES="8",
        HTTP_HOST="127.0.0.1",
        HTTP_PORT="0",
        WEBHOOK_PUBLISH_TIMEOUT_SECONDS="1",
    )
    yield settings
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for name in (queue_name, f"{queue_name}.dlq"):
            await channel.queue_delete(name)


@pytest.fixture(scope="module")
async def livekit_events(
    database_url: str, emulator: LiveKitEmulator
) -> AsyncIterator[LiveKitEventService]:
    """The consumer's effects (LiveKitEventService) on the test database, without a broker."""
    pool = await create_pool(database_url, make_settings(database_url, emulator.url))
    yield LiveKitEventService(db=PgDatabase(pool, acquire_timeout_s=5), inbox_retention_s=3600)
    await pool.close()


@pytest.fixture
async def shim(pipeline_settings: Settings, clean: None) -> AsyncIterator[WebhooksApp]:
    app = await WebhooksApp.start(pipeline_settings)
    yield app
    await app.stop()


@pytest.fixture
async def consumer(pipeline_settings: Settings, shim: WebhooksApp) -> AsyncIterator[ConsumerApp]:
    app = await ConsumerApp.start(pipeline_settings, metrics=Metrics(), run_jobs=False)
    yield app
    await app.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


Post = Callable[[bytes], Awaitable[int]]


@pytest.fixture
def post(shim: WebhooksApp, http: aiohttp.ClientSession) -> Post:
    """POST a body signed like LiveKit signs it; return the HTTP status."""

    async def send(body: bytes) -> int:
        headers = {
            "Authorization": sign(body, LIVEKIT_KEY, LIVEKIT_SECRET),
            "Content-Type": "application/webhook+json",
        }
        url = f"http://127.0.0.1:{shim.port}{WEBHOOK_PATH}"
        async with http.post(url, data=body, headers=headers) as response:
            return response.status

    return send


async def eventually(db: asyncpg.Pool, query: str, expected: object, *args: object) -> None:
    """Wait until `query` returns `expected`: a condition, polled, bounded by the test timeout."""

    async def holds() -> bool:
        return bool(await db.fetchval(query, *args) == expected)

    await until(holds)
