"""Shared fixtures: a real PostgreSQL database, the LiveKit emulator, and a real grpc.aio server
built by the production composition root, called through the generated stubs."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import asyncpg
import grpc
import pytest
import uvloop

from favorited.api.auth import Authenticator
from favorited.app import ApiApp
from favorited.config import Settings
from favorited.livekit_emulator import LiveKitEmulator
from favorited.store.migrate import migrate
from favorited_api.v1 import livestream_service_pb2_grpc, participant_service_pb2_grpc

JWT_SECRET = "test-caller-secret-0123456789abcdef-0123456789"
LIVEKIT_KEY = "APItestkey"
LIVEKIT_SECRET = "test-livekit-secret-0123456789abcdef-0123456789"
ADMIN_DSN = os.environ.get(
    "FAVORITED_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)

Metadata = tuple[tuple[str, str], ...]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The loop the tests, and the servers they start in-process, run on: uvloop, the one every
    favorited process runs on by default; FAVORITED_TEST_EVENT_LOOP=asyncio runs them on
    asyncio's own (EVENT_LOOP=asyncio's)."""
    loops = {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}
    name = os.environ.get("FAVORITED_TEST_EVENT_LOOP", "uvloop")
    if name not in loops:
        raise pytest.UsageError(f"FAVORITED_TEST_EVENT_LOOP={name!r}: uvloop or asyncio")
    return {name: loops[name]}


def make_settings(database_url: str, livekit_url: str, **extra: str) -> Settings:
    env = {
        "DATABASE_URL": database_url,
        "LIVEKIT_URL": livekit_url,
        "LIVEKIT_API_KEY": LIVEKIT_KEY,
        "LIVEKIT_API_SECRET": LIVEKIT_SECRET,
        "LIVEKIT_TIMEOUT_SECONDS": "1",
        "FAVORITED_JWT_SECRET": JWT_SECRET,
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": "0",
        "DATABASE_TIMEOUT_SECONDS": "2",
        "HEALTH_PROBE_INTERVAL_SECONDS": "0.1",
        "SHUTDOWN_GRACE_SECONDS": "5",
        "LOG_FORMAT": "text",
        **extra,
    }
    return Settings.from_env(env)


def dsn_for(database: str, *, port: int | None = None) -> str:
    base = ADMIN_DSN.rsplit("/", 1)[0]
    if port is not None:
        base = base.rsplit(":", 1)[0] + f":{port}"
    return f"{base}/{database}"


@pytest.fixture(scope="session")
async def database_name() -> AsyncIterator[str]:
    """A database of our own per test run, so parallel runs on one server never collide."""
    name = f"favorited_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        await migrate(dsn_for(name))
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
async def database_url(database_name: str) -> str:
    return dsn_for(database_name)


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """Direct access for assertions on what is really stored."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def emulator() -> AsyncIterator[LiveKitEmulator]:
    async with LiveKitEmulator(LIVEKIT_KEY, LIVEKIT_SECRET) as emu:
        yield emu


@pytest.fixture(scope="session")
async def api(database_url: str, emulator: LiveKitEmulator) -> AsyncIterator[ApiApp]:
    app = await ApiApp.start(make_settings(database_url, emulator.url))
    yield app
    await app.stop()


@pytest.fixture(scope="session")
async def channel(api: ApiApp) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as ch:
        yield ch


@pytest.fixture
async def clean(db: asyncpg.Pool, emulator: LiveKitEmulator) -> AsyncIterator[None]:
    await db.execute(
        "TRUNCATE participants, livestreams, idempotency_keys, participant_events,"
        " livestream_viewers, livekit_sessions, webhook_inbox, dead_letters"
    )
    yield
    emulator.heal()


@pytest.fixture
def livestreams(
    channel: grpc.aio.Channel, clean: None
) -> livestream_service_pb2_grpc.LivestreamServiceAsyncStub:
    return livestream_service_pb2_grpc.LivestreamServiceStub(channel)


@pytest.fixture
def participants(
    channel: grpc.aio.Channel, clean: None
) -> participant_service_pb2_grpc.ParticipantServiceAsyncStub:
    return participant_service_pb2_grpc.ParticipantServiceStub(channel)


@pytest.fixture(scope="session")
def authenticator() -> Authenticator:
    return Authenticator(JWT_SECRET)


@pytest.fixture(scope="session")
def auth(authenticator: Authenticator) -> Callable[..., Metadata]:
    """auth("alice") → call metadata carrying a valid token for alice."""

    def make(user: str, *, admin: bool = False, ttl: timedelta = timedelta(hours=1)) -> Metadata:
        token = authenticator.mint(user, admin=admin, ttl=ttl)
        return (("authorization", f"Bearer {token}"),)

    return make


@pytest.fixture
def room_name() -> str:
    return f"room-{uuid.uuid4().hex[:10]}"
