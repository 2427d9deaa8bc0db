"""Running the emulator as a standalone process (``favorited livekit-emulator``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from typing import TYPE_CHECKING

import uvloop

from .auth import validate_credentials
from .server import LiveKitEmulator

if TYPE_CHECKING:
    from collections.abc import Sequence

logger = logging.getLogger(__name__)

DEV_API_KEY = "devkey"
# Development only. Long enough for PyJWT's HMAC key-length check (>= 32 bytes).
DEV_API_SECRET = "favorited-livekit-emulator-development-secret"
DEFAULT_PORT = 7880
# LiveKit's server checks for empty rooms every second.
ROOM_CHECK_INTERVAL_S = 1.0
WEBHOOK_URLS_ENV = "LIVEKIT_EMULATOR_WEBHOOK_URLS"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def serve(
    host: str,
    port: int,
    api_key: str,
    api_secret: str,
    *,
    webhook_urls: Sequence[str] = (),
) -> None:
    """Serve until cancelled, closing idle rooms and sending webhooks like LiveKit."""
    async with LiveKitEmulator(
        api_key,
        api_secret,
        host=host,
        port=port,
        webhook_urls=webhook_urls,
        room_check_interval_s=ROOM_CHECK_INTERVAL_S,
    ) as emulator:
        logger.info("LiveKit emulator listening on %s (API key %s)", emulator.url, api_key)
        for url in webhook_urls:
            logger.info("sending webhooks to %s", url)
        await asyncio.Event().wait()


async def _cancel_when_set(event: asyncio.Event, task: asyncio.Task[None]) -> None:
    await event.wait()
    task.cancel()


async def _serve_until_signalled(
    host: str, port: int, api_key: str, api_secret: str, webhook_urls: Sequence[str]
) -> None:
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, signalled.set)
    try:
        # A TaskGroup, so a failure to bind ends the watcher too and surfaces here.
        async with asyncio.TaskGroup() as tasks:
            serving = tasks.create_task(
                serve(host, port, api_key, api_secret, webhook_urls=webhook_urls)
            )
            tasks.create_task(_cancel_when_set(signalled, serving))
    finally:
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(text)
    return port


def _split_urls(text: str) -> list[str]:
    return [url.strip() for url in text.split(",") if url.strip()]


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse arguments, serve until SIGINT/SIGTERM, return an exit code."""
    parser = argparse.ArgumentParser(
        prog="favorited livekit-emulator",
        description="Wire-level LiveKit RoomService emulator for development and tests. "
        "Credentials come from LIVEKIT_API_KEY / LIVEKIT_API_SECRET; webhooks are signed "
        "with them.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument(
        "--port",
        type=_port,
        # A string default goes through type=, so a bad env value is reported like a bad flag.
        default=os.environ.get("LIVEKIT_EMULATOR_PORT", str(DEFAULT_PORT)),
        help="port to bind, 0 for any free port (default $LIVEKIT_EMULATOR_PORT or "
        f"{DEFAULT_PORT})",
    )
    parser.add_argument(
        "--webhook-url",
        action="append",
        metavar="URL",
        help="POST signed webhooks here; repeatable (default: the comma-separated "
        f"${WEBHOOK_URLS_ENV})",
    )
    args = parser.parse_args(argv)
    webhook_urls: list[str] = args.webhook_url or _split_urls(os.environ.get(WEBHOOK_URLS_ENV, ""))
    api_key = os.environ.get("LIVEKIT_API_KEY") or DEV_API_KEY
    api_secret = os.environ.get("LIVEKIT_API_SECRET") or DEV_API_SECRET
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        validate_credentials(api_key, api_secret)
    except ValueError as exc:
        logger.error("invalid LiveKit credentials: %s", exc)
        return 2
    exit_code = 0
    try:
        # uvloop, as the service's own processes: the emulator stands in for a LiveKit that runs
        # on other machines, so on a shared machine it should take as little CPU as it can.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(
                _serve_until_signalled(args.host, args.port, api_key, api_secret, webhook_urls)
            )
    except* OSError as group:
        logger.error("cannot serve on %s:%s: %s", args.host, args.port, group.exceptions[0])
        exit_code = 1
    return exit_code
