"""What one open grpc.aio server stream costs before favorited adds anything: the floor under
`watch_fanout`'s memory per watcher.

Run as `python -m bench.stream_floor [--streams N] [--per-connection N]`. It starts a bare grpc.aio
server in a child process (uvloop, a generic unary-stream handler that sends one 64-byte message
and then waits, as a watcher with nothing new to see does) and reads its resident memory; then it
opens `--streams` streams to it the way `watch_fanout`'s readers open theirs (bench/grpc_h2.py,
`--per-connection` streams per HTTP/2 connection, 200 at a time, each with its own 300-byte
`authorization` header), waits for every stream's first message, and prints the server's growth
per stream. As in `watch_fanout`, the connections open after the first reading, so their share
counts; one stream on a connection of its own runs before it, so the server's one-time start-up
does not. grpc reads `GRPC_EXPERIMENTS` from the environment, which the child inherits: that is
how grpc's experimental transports and filters were compared (docs/performance.md, session 13).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys

from bench.context import HOST
from bench.grpc_h2 import Connection
from bench.procs import rss_kib

# Ends when its stdin closes, so it cannot outlive a probe that was killed.
_SERVER = """
import asyncio, os, sys, threading, grpc, uvloop

threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()

async def watch(request, context):
    yield b"x" * 64
    await asyncio.Event().wait()

async def main():
    server = grpc.aio.server(options=[("grpc.max_concurrent_streams", 1_000_000)])
    handler = grpc.unary_stream_rpc_method_handler(watch)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Floor", {"Watch": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()

uvloop.run(main())
"""
_METHOD = "/bench.Floor/Watch"
_OPENING_AT_ONCE = 200  # as the bench's watchers: grpc.aio resets streams beyond its pending limit


class _FirstMessage:
    """A stream's handler: done once its first message arrived; an error if it ended first."""

    def __init__(self) -> None:
        self.arrived: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_message(self, data: bytes) -> None:
        if not self.arrived.done():
            self.arrived.set_result(None)

    def on_end(self, code: str) -> None:
        if not self.arrived.done():
            self.arrived.set_exception(RuntimeError(f"a stream ended before its message: {code}"))


def _token(index: int) -> tuple[tuple[str, str], ...]:
    # Every watcher of the bench is a caller of its own, with a token of its own.
    return (("authorization", f"Bearer {index:0293d}"),)


async def _first_message(connection: Connection, index: int) -> None:
    handler = _FirstMessage()
    connection.call(_METHOD, b"", _token(index), handler)
    await handler.arrived


async def measure(streams: int, per_connection: int, *, timeout_s: float = 300.0) -> float:
    """KiB of the server's RSS per open stream, connections included."""
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _SERVER,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert server.stdin is not None and server.stdout is not None
    connections: list[Connection] = []
    try:
        async with asyncio.timeout(timeout_s):
            port = int(await server.stdout.readline())
            warm = await Connection.open(HOST, port)
            connections.append(warm)
            await _first_message(warm, -1)
            before = rss_kib(server.pid)
            for _ in range(-(-streams // per_connection)):
                connections.append(await Connection.open(HOST, port))
            opening = asyncio.Semaphore(_OPENING_AT_ONCE)

            async def open_one(index: int) -> None:
                async with opening:
                    await _first_message(connections[1 + index // per_connection], index)

            async with asyncio.TaskGroup() as group:
                for index in range(streams):
                    group.create_task(open_one(index))
            return (rss_kib(server.pid) - before) / streams
    finally:
        for connection in connections:
            await connection.close()
        server.stdin.close()
        if server.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                server.kill()
        await server.wait()


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--streams", type=_positive, default=10_000)
    parser.add_argument("--per-connection", type=_positive, default=100)
    args = parser.parse_args()
    per_stream = asyncio.run(measure(args.streams, args.per_connection))
    experiments = os.environ.get("GRPC_EXPERIMENTS") or "none"
    print(
        f"{per_stream:.2f} KiB per stream ({args.streams} streams, {args.per_connection} per"
        f" connection, GRPC_EXPERIMENTS={experiments})"
    )


if __name__ == "__main__":
    main()
