"""What one open grpc.aio server stream costs before favorited adds anything: the floor under
`watch_fanout`'s memory per watcher.

Run as `python -m bench.stream_floor [--streams N] [--per-connection N]`. It starts a bare grpc.aio
server in a child process (uvloop, a generic unary-stream handler that sends one 64-byte message
and then waits, as a watcher with nothing new to see does), opens `--streams` streams to it from
this process with a 300-byte `authorization` header (a caller's token), 200 at a time as the
bench's watchers are opened, waits for every stream's first message, and prints the growth of the
server's resident memory per stream. The connections open before the first reading, so the figure
is the streams' own. grpc reads `GRPC_EXPERIMENTS` from the environment, which the child inherits:
that is how grpc's experimental transports and filters were compared (docs/performance.md,
session 13).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import grpc

from bench.procs import rss_kib

_SERVER = """
import asyncio, grpc, uvloop

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
_METADATA = (("authorization", "Bearer " + "t" * 293),)
_OPENING_AT_ONCE = 200  # as the bench's watchers: grpc.aio resets streams beyond its pending limit


async def measure(streams: int, per_connection: int) -> float:
    """KiB of the server's RSS per open stream."""
    channels: list[grpc.aio.Channel] = []
    calls: list[grpc.aio.UnaryStreamCall[bytes, bytes]] = []
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SERVER, stdout=asyncio.subprocess.PIPE
    )
    assert server.stdout is not None
    try:
        port = int(await server.stdout.readline())
        for index in range(max(1, -(-streams // per_connection))):
            # A distinct argument per channel, or grpc would share one connection among them.
            channel = grpc.aio.insecure_channel(
                f"127.0.0.1:{port}", options=[("bench.floor.channel", index)]
            )
            await channel.channel_ready()
            channels.append(channel)
        # One stream first, so the server's one-time start-up is not counted per stream.
        watch: list[grpc.aio.UnaryStreamMultiCallable[bytes, bytes]] = [
            channel.unary_stream(_METHOD) for channel in channels
        ]
        first = watch[0](b"", metadata=_METADATA)
        await first.read()
        first.cancel()
        before = rss_kib(server.pid)
        opening = asyncio.Semaphore(_OPENING_AT_ONCE)

        async def open_one(index: int) -> None:
            async with opening:
                call = watch[index % len(watch)](b"", metadata=_METADATA)
                await call.read()
                calls.append(call)

        await asyncio.gather(*(open_one(i) for i in range(streams)))
        return (rss_kib(server.pid) - before) / streams
    finally:
        for call in calls:
            call.cancel()
        for channel in channels:
            await channel.close()
        server.kill()
        await server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--per-connection", type=int, default=100)
    args = parser.parse_args()
    per_stream = asyncio.run(measure(args.streams, args.per_connection))
    experiments = os.environ.get("GRPC_EXPERIMENTS") or "none"
    print(
        f"{per_stream:.2f} KiB per stream ({args.streams} streams, {args.per_connection} per"
        f" connection, GRPC_EXPERIMENTS={experiments})"
    )


if __name__ == "__main__":
    main()
