"""The watch readers' gRPC client (bench/grpc_h2.py) against a real grpc.aio server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from bench import grpc_h2

SERVICE = "bench.test.S"
Context = grpc.aio.ServicerContext[Any, Any]


class Server:
    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []
        self.cancelled = asyncio.Event()
        self.port = 0
        self.server: grpc.aio.Server | None = None

    async def stream(self, request: bytes, context: Context) -> Any:
        """`count:size`: that many messages of that size, each filled with its index's digit."""
        self.metadata.append({k: str(v) for k, v in context.invocation_metadata() or ()})
        count, size = (int(part) for part in request.split(b":"))
        for index in range(count):
            yield str(index % 10).encode() * size

    async def fail_after_one(self, request: bytes, context: Context) -> Any:
        yield b"first"
        await context.abort(grpc.StatusCode.NOT_FOUND, "gone")

    async def fail_at_once(self, request: bytes, context: Context) -> Any:
        if request != b"never":  # always: the yield below only makes this an async generator
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "no")
        yield b""

    async def forever(self, request: bytes, context: Context) -> Any:
        yield b"hello"
        try:
            await asyncio.Event().wait()
        finally:
            self.cancelled.set()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    server = grpc.aio.server()
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        name: grpc.unary_stream_rpc_method_handler(getattr(state, name))
        for name in ("stream", "fail_after_one", "fail_at_once", "forever")
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    state.port = server.add_insecure_port("127.0.0.1:0")
    state.server = server
    await server.start()
    yield state
    await server.stop(grace=None)


class Collect:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.answered = asyncio.Event()  # the first message arrived
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_message(self, data: bytes) -> None:
        self.messages.append(data)
        self.answered.set()

    def on_end(self, code: str) -> None:
        assert not self.ended.done(), "a call ends once"
        self.ended.set_result(code)


async def _call(
    connection: grpc_h2.Connection, method: str, request: bytes, **metadata: str
) -> Collect:
    collect = Collect()
    connection.call(f"/{SERVICE}/{method}", request, list(metadata.items()), collect)
    return collect


async def test_messages_arrive_whole_in_order_with_the_callers_metadata(server: Server) -> None:
    connection = await grpc_h2.Connection.open("127.0.0.1", server.port)
    try:
        # Many small messages (several per frame and per read) and large ones (each split over
        # several 16 KiB frames) on one stream each, and several streams at once.
        small = await _call(connection, "stream", b"200:7", authorization="Bearer a")
        large = await _call(connection, "stream", b"5:100000", authorization="Bearer b")
        assert await asyncio.wait_for(small.ended, 10) == "OK"
        assert await asyncio.wait_for(large.ended, 10) == "OK"
    finally:
        await connection.close()
    assert small.messages == [str(i % 10).encode() * 7 for i in range(200)]
    assert large.messages == [str(i).encode() * 100_000 for i in range(5)]
    assert sorted(m["authorization"] for m in server.metadata) == ["Bearer a", "Bearer b"]


async def test_more_than_the_receive_windows_hold(server: Server) -> None:
    # 40 MiB on one stream is more than its window and the connection's: the reader must hand
    # the space back as it reads, or the server stops sending.
    connection = await grpc_h2.Connection.open("127.0.0.1", server.port)
    try:
        count = (grpc_h2.STREAM_WINDOW * 5 // 2) // 1_000_000
        big = await _call(connection, "stream", f"{count}:1000000".encode())
        assert await asyncio.wait_for(big.ended, 60) == "OK"
    finally:
        await connection.close()
    assert len(big.messages) == count
    assert all(len(m) == 1_000_000 for m in big.messages)


async def test_a_failed_call_reports_its_status(server: Server) -> None:
    connection = await grpc_h2.Connection.open("127.0.0.1", server.port)
    try:
        after_one = await _call(connection, "fail_after_one", b"")
        at_once = await _call(connection, "fail_at_once", b"")  # a trailers-only answer
        missing = await _call(connection, "no_such_method", b"")
        assert await asyncio.wait_for(after_one.ended, 10) == "NOT_FOUND"
        assert await asyncio.wait_for(at_once.ended, 10) == "PERMISSION_DENIED"
        assert await asyncio.wait_for(missing.ended, 10) == "UNIMPLEMENTED"
    finally:
        await connection.close()
    assert after_one.messages == [b"first"]
    assert at_once.messages == missing.messages == []


async def test_cancel_ends_the_call_at_the_server_and_tells_no_one(server: Server) -> None:
    connection = await grpc_h2.Connection.open("127.0.0.1", server.port)
    try:
        call = Collect()
        stream_id = connection.call(f"/{SERVICE}/forever", b"", [], call)
        other = await _call(connection, "forever", b"")
        await asyncio.wait_for(call.answered.wait(), 10)
        await asyncio.wait_for(other.answered.wait(), 10)
        connection.cancel(stream_id)
        await asyncio.wait_for(server.cancelled.wait(), 10)
        assert not call.ended.done()
        assert not other.ended.done()  # the connection and its other call go on
    finally:
        await connection.close()
    assert not other.ended.done()  # close() tells no handler either


async def test_the_servers_going_away_ends_open_calls_unavailable(server: Server) -> None:
    connection = await grpc_h2.Connection.open("127.0.0.1", server.port)
    try:
        call = await _call(connection, "forever", b"")
        assert server.server is not None
        await asyncio.wait_for(call.answered.wait(), 10)
        await server.server.stop(grace=None)
        assert await asyncio.wait_for(call.ended, 10) == "UNAVAILABLE"
    finally:
        await connection.close()
