"""The `favorited` command: one subcommand per process.

Every subcommand reads Settings from the environment once, here, and passes them down.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import re
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from favorited import logs
from favorited.config import ConfigError, Settings

log = logging.getLogger(__name__)

_TTL_RE = re.compile(r"^(\d+)([smhd])$")
_TTL_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_ttl(text: str) -> timedelta:
    """`90s`, `30m`, `1h`, `7d` → timedelta."""
    match = _TTL_RE.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"invalid TTL {text!r}: use e.g. 90s, 30m, 1h or 7d")
    return timedelta(**{_TTL_UNITS[match.group(2)]: int(match.group(1))})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="favorited", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("api", help="serve the gRPC API (GRPC_PORT)")
    sub.add_parser("webhooks", help="serve the LiveKit webhook shim (HTTP_PORT)")
    sub.add_parser("consumer", help="apply queued webhooks; run the periodic jobs")
    dead = sub.add_parser("dead-letters", help="inspect or replay dead-lettered webhooks")
    dead_sub = dead.add_subparsers(dest="action", required=True)
    dead_sub.add_parser("list", help="list dead letters not yet replayed")
    replay = dead_sub.add_parser("replay", help="republish dead letters through the inbox")
    replay.add_argument("ids", nargs="*", type=int, help="dead letter ids (default: all)")
    sub.add_parser("migrate", help="apply the SQL migrations to DATABASE_URL")
    token = sub.add_parser("token", help="print a caller JWT signed with FAVORITED_JWT_SECRET")
    token.add_argument("--user", required=True, help="the user id (token subject)")
    token.add_argument("--admin", action="store_true", help="add the favorited:admin scope")
    token.add_argument("--ttl", type=parse_ttl, default=timedelta(hours=1), help="lifetime (1h)")
    sub.add_parser(
        "livekit-emulator",
        help="serve the LiveKit emulator (port 7880 or LIVEKIT_EMULATOR_PORT)",
        add_help=False,
    )
    sub.add_parser("dev", help="run everything on embedded defaults, for development")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["livekit-emulator"]:
        # The emulator has its own flags (--port, --host); hand them over untouched.
        from favorited.livekit_emulator import main as emulator_main

        return emulator_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"favorited: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    try:
        return _run(args, settings)
    except ConfigError as exc:
        print(f"favorited: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


# The API's young-generation threshold: net new GC-tracked objects between two young collections
# (CPython's default: 700). Objects that outlive a couple of collections are promoted to the
# oldest generation, and a Watch stream waiting for its write slot holds a future for a whole pass
# over every watcher (~1 s with 10,000 of them). At the default, the bench's 10,000-watcher
# fan-out promoted enough for a full collection every ~3 s, each 320-380 ms over every stream's
# objects (collecting almost nothing) and stalling every stream and call meanwhile: p99 delivery
# 1.13-1.22 s. At 50,000: one full collection in the process's life, p99 0.65-0.69 s. The shim
# and the consumer keep the default: there it saved nothing and cost the shim ~10 % more CPU per
# webhook (docs/performance.md, session 11). The price: cyclic garbage waits for up to 50,000
# allocations instead of 700.
API_YOUNG_GC_THRESHOLD = 50_000


def tune_gc(*, young_threshold: int | None = None) -> None:
    """Collect once, then exempt everything alive now from the cyclic GC's later passes; with
    `young_threshold`, collect the young generation after that many net allocations.

    The modules, classes and functions imported at start-up (grpc, protobuf, asyncpg, aiohttp,
    livekit: 60,000-80,000 tracked objects) live as long as the process, yet every full
    collection walked them all: 35-43 ms pauses, each stalling every request in flight, in a
    shim whose p99 target is 35 ms. Frozen, a full collection took at most 1.3 ms (shim) and
    4 ms (API) over the same bench run (docs/performance.md, session 5).
    """
    gc.collect()  # garbage made while importing is freed, not frozen for good
    gc.freeze()
    if young_threshold is not None:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(young_threshold, older, oldest)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "api":
        from favorited.app import run_api

        tune_gc(young_threshold=API_YOUNG_GC_THRESHOLD)
        _run_service("api", run_api, settings)
        return 0
    if args.command == "webhooks":
        from favorited.app import run_webhooks

        tune_gc()
        _run_service("webhooks", run_webhooks, settings)
        return 0
    if args.command == "consumer":
        from favorited.app import run_consumer

        tune_gc()
        _run_service("consumer", run_consumer, settings)
        return 0
    if args.command == "dead-letters":
        from favorited.consumer.admin import dead_letters_command

        return asyncio.run(dead_letters_command(settings, args.action, args.__dict__.get("ids")))
    if args.command == "migrate":
        from favorited.store.migrate import migrate

        settings.require("DATABASE_URL")
        assert settings.database_url is not None
        applied = asyncio.run(migrate(settings.database_url))
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
        return 0
    if args.command == "token":
        from favorited.api.auth import Authenticator

        settings.require("FAVORITED_JWT_SECRET")
        assert settings.jwt_secret is not None
        print(Authenticator(settings.jwt_secret).mint(args.user, admin=args.admin, ttl=args.ttl))
        return 0
    if args.command == "dev":
        from favorited.dev import run_dev

        return asyncio.run(run_dev(settings))
    raise AssertionError(f"unhandled command {args.command}")


def _run_service(
    command: str, main: Callable[[Settings], Coroutine[Any, Any, None]], settings: Settings
) -> None:
    """Run the API, the shim or the consumer on the loop EVENT_LOOP names.

    uvloop's C loop and transports cost these I/O-bound processes less CPU per message than
    asyncio's. grpc.aio is loop-agnostic (its poller thread wakes the loop through a socket the
    loop reads); the test suite runs on uvloop, and the 10,000-watcher fan-out's p99 fell ~10 %
    on it (docs/performance.md, session 9).
    """

    async def started() -> None:
        # Named from the running loop itself, so the log (and the test reading it) shows the loop
        # the process really runs on, not the one configured.
        loop_module = type(asyncio.get_running_loop()).__module__.partition(".")[0]
        log.info("process starting", extra={"command": command, "event_loop": loop_module})
        await main(settings)

    if settings.event_loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(started())
    else:
        asyncio.run(started())
