"""Operations: health follows PostgreSQL, UNAVAILABLE while it is unreachable, and SIGTERM drains
in-flight calls, reports NOT_SERVING first and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from favorited.app import ApiApp
from favorited.livekit_emulator import LiveKitEmulator
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from tests.api.helpers import create, fails
from tests.conftest import JWT_SECRET, LIVEKIT_KEY, LIVEKIT_SECRET, Metadata, dsn_for, make_settings
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import until

Auth = Callable[..., Metadata]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_postgres_outage_gives_unavailable_and_not_serving_then_recovers(
    database_name: str, emulator: LiveKitEmulator, clean: None, auth: Auth, room_name: str
) -> None:
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    app = await ApiApp.start(make_settings(dsn_for(database_name, port=proxy.port), emulator.url))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            health: Any = health_pb2_grpc.HealthStub(channel)
            stub = ls_grpc.LivestreamServiceStub(channel)

            async def status(service: str = "") -> int:
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
                return int(reply.status)

            async def not_serving() -> bool:
                return await status() == NOT_SERVING

            async def serving() -> bool:
                return await status() == SERVING

            assert await status() == SERVING
            await proxy.cut()
            await until(not_serving)
            assert await status("favorited.v1.LivestreamService") == NOT_SERVING
            failure = await fails(create(stub, auth("alice"), room_name))
            assert (failure.code, failure.reason) == (
                grpc.StatusCode.UNAVAILABLE,
                "DATABASE_UNAVAILABLE",
            )
            assert "postgres" not in failure.message.lower()
            await proxy.restore()
            await until(serving)
            created = await create(stub, auth("alice"), room_name)
            assert created.status == 2
    finally:
        await proxy.restore_if_cut()
        await app.stop()
        await proxy.cut()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_sigterm_reports_not_serving_drains_in_flight_calls_and_exits_0(
    database_url: str, emulator: LiveKitEmulator, clean: None, auth: Auth, room_name: str
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LIVEKIT_URL": emulator.url,
        "LIVEKIT_API_KEY": LIVEKIT_KEY,
        "LIVEKIT_API_SECRET": LIVEKIT_SECRET,
        "LIVEKIT_TIMEOUT_SECONDS": "30",
        "FAVORITED_JWT_SECRET": JWT_SECRET,
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(port),
        "SHUTDOWN_GRACE_SECONDS": "20",
        "LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "favorited",
        "api",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health: Any = health_pb2_grpc.HealthStub(channel)
            watch = health.Watch(health_pb2.HealthCheckRequest(), wait_for_ready=True)
            assert (await watch.read()).status == SERVING
            emulator.hang_all()  # the next CreateLivestream waits inside LiveKit
            in_flight = asyncio.ensure_future(
                create(ls_grpc.LivestreamServiceStub(channel), auth("alice"), room_name)
            )
            await emulator.wait_for_hung_requests(1)
            proc.send_signal(signal.SIGTERM)
            assert (await watch.read()).status == NOT_SERVING  # first thing on SIGTERM
            emulator.heal()  # LiveKit answers; the call completes during the drain
            created = await in_flight
            assert created.status == 2
        assert await proc.wait() == 0
    finally:
        emulator.heal()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_an_unexpected_failure_is_internal_with_a_reference_and_no_internals(
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    auth: Auth,
    db: Any,
    room_name: str,
    caplog: Any,
) -> None:
    # A constraint the code knows nothing about stands in for "a bug": the database refuses
    # the insert with an error no adapter maps.
    await db.execute(
        "ALTER TABLE livestreams ADD CONSTRAINT test_only_no_boom CHECK (title <> 'boom')"
    )
    try:
        failure = await fails(create(livestreams, auth("alice"), room_name, title="boom"))
    finally:
        await db.execute("ALTER TABLE livestreams DROP CONSTRAINT test_only_no_boom")
    assert (failure.code, failure.reason) == (grpc.StatusCode.INTERNAL, "INTERNAL")
    reference = failure.metadata["reference"]
    assert reference in failure.message
    for secret in ("test_only_no_boom", "CHECK", "livestreams", "Traceback", "asyncpg"):
        assert secret not in failure.message
    # The server logged the real cause once, under the same reference.
    logged = [r for r in caplog.records if getattr(r, "reference", None) == reference]
    assert len(logged) == 1 and logged[0].exc_info is not None
