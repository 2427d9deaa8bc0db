"""The watch readers' gRPC client (bench/grpc_h2.py) against a real grpc.aio server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import grpc
import h2.config
import h2.connection
import h2.errors
import h2.events
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
        # Many small messages and large ones (each split over several 16 KiB frames), on two
        # streams at once. (Several messages in one frame: the scripted server below.)
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
    # 40 MiB on one stream is more than its window (16 MiB): the reader must hand the space back
    # as it reads, or the server stops sending.
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


def _message(data: bytes) -> bytes:
    return b"\x00" + len(data).to_bytes(4, "big") + data


class _Record:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    def on_message(self, data: bytes) -> None:
        self.messages.append(data)

    def on_end(self, code: str) -> None:
        raise AssertionError("not ended by feed")


def test_messages_split_and_joined_anyhow_arrive_whole() -> None:
    sent = [b"", b"a", b"bc" * 3, bytes(range(256)) * 40, b"end"]
    wire = b"".join(_message(m) for m in sent)
    for size in (1, 2, 3, 4, 5, 6, 7, 64, 1000, len(wire)):
        record = _Record()
        stream = grpc_h2._Stream(record)
        for start in range(0, len(wire), size):
            assert stream.feed(wire[start : start + size]) == ""
        assert record.messages == sent, size
        assert not stream.buffer


def test_a_compressed_message_fails_the_call() -> None:
    stream = grpc_h2._Stream(_Record())
    assert stream.feed(b"\x01" + (3).to_bytes(4, "big") + b"abc") == "INTERNAL"


class ScriptedServer(asyncio.Protocol):
    """An HTTP/2 server (h2's server side) that answers each path with a scripted misbehaviour."""

    def __init__(self) -> None:
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.paths: dict[int, bytes] = {}
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.conn.initiate_connection()
        self.transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                self.paths[event.stream_id] = dict(event.headers or [])[b":path"]
            elif isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.answer(event.stream_id, self.paths[event.stream_id].rsplit(b"/", 1)[1])
        assert self.transport is not None
        self.transport.write(self.conn.data_to_send())

    def answer(self, stream_id: int, how: bytes) -> None:
        conn = self.conn
        if how == b"not_found":
            conn.send_headers(stream_id, [(b":status", b"404")], end_stream=True)
            return
        conn.send_headers(stream_id, [(b":status", b"200"), (b"content-type", b"application/grpc")])
        ok = [(b"grpc-status", b"0")]
        if how == b"two_in_one_frame":
            conn.send_data(stream_id, _message(b"one") + _message(b"two"))
            conn.send_headers(stream_id, ok, end_stream=True)
        elif how == b"truncated":
            conn.send_data(stream_id, _message(b"whole") + _message(b"0123456789")[:8])
            conn.send_headers(stream_id, ok, end_stream=True)
        elif how == b"reset":
            conn.send_data(stream_id, _message(b"first"))
            conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        elif how == b"goaway":
            conn.send_data(stream_id, _message(b"first"))
            conn.close_connection()
            conn.ping(b"12345678")  # a frame after GOAWAY, as grpc's graceful stop sends
        else:
            conn.send_data(stream_id, _message(how))
            conn.send_headers(stream_id, ok, end_stream=True)


@pytest.fixture
async def scripted() -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(ScriptedServer, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_answers_that_are_not_plain_grpc(scripted: int) -> None:
    connection = await grpc_h2.Connection.open("127.0.0.1", scripted)
    try:
        calls = {
            how: await _call(connection, how, b"")
            for how in ("two_in_one_frame", "truncated", "reset", "not_found")
        }
        ended = {how: await asyncio.wait_for(c.ended, 10) for how, c in calls.items()}
    finally:
        await connection.close()
    assert ended == {
        "two_in_one_frame": "OK",
        "truncated": "INTERNAL",  # the stream ended inside a message: never "OK"
        "reset": "CANCELLED",
        "not_found": "UNIMPLEMENTED",  # HTTP 404, as grpc's client maps it
    }
    assert calls["two_in_one_frame"].messages == [b"one", b"two"]
    assert calls["truncated"].messages == [b"whole"]
    assert calls["reset"].messages == [b"first"]


async def test_a_goaway_ends_every_open_call_unavailable(scripted: int) -> None:
    connection = await grpc_h2.Connection.open("127.0.0.1", scripted)
    try:
        goaway = await _call(connection, "goaway", b"")
        assert await asyncio.wait_for(goaway.ended, 10) == "UNAVAILABLE"
        with pytest.raises(ConnectionError):
            connection.call(f"/{SERVICE}/late", b"", [], Collect())
    finally:
        await connection.close()


class Raising(Collect):
    def on_message(self, data: bytes) -> None:
        raise ValueError("cannot read this")


async def test_a_handler_that_raises_ends_its_call_only(scripted: int) -> None:
    connection = await grpc_h2.Connection.open("127.0.0.1", scripted)
    try:
        failing = Raising()
        connection.call(f"/{SERVICE}/bad", b"", [], failing)
        fine = await _call(connection, "fine", b"")
        assert await asyncio.wait_for(failing.ended, 10) == "INTERNAL"
        assert await asyncio.wait_for(fine.ended, 10) == "OK"
    finally:
        await connection.close()
    assert fine.messages == [b"fine"]
