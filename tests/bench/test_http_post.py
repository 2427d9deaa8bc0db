"""The bench's keep-alive HTTP client against a real aiohttp server (the shim's server library)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from bench.http_post import KeepAlivePoster, ResponseError


class Server:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.peers: set[object] = set()
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        assert request.transport is not None
        self.peers.add(request.transport.get_extra_info("peername"))
        if body == b"close":
            # Answer, then drop the connection: the client must not reuse it.
            response = web.Response(status=200, body=b"bye")
            response.force_close()
            return response
        if body == b"big":
            return web.Response(status=503, body=b"not now, try later " * 10_000)
        return web.Response(status=200, body=b'{"ok":true}')


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    app = web.Application()
    app.router.add_post("/hook", srv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    srv.url = f"http://127.0.0.1:{port}/hook"
    yield srv
    await runner.cleanup()


async def test_posts_reuse_one_connection_and_carry_body_and_headers(server: Server) -> None:
    poster = KeepAlivePoster(server.url, max_connections=4)
    try:
        for i in range(5):
            assert await poster.post(f"body-{i}".encode(), {"Authorization": f"t{i}"}) == 200
    finally:
        await poster.close()
    assert server.bodies == [f"body-{i}".encode() for i in range(5)]
    assert [h["Authorization"] for h in server.headers] == [f"t{i}" for i in range(5)]
    assert len(server.peers) == 1  # sequential posts share one keep-alive connection


async def test_concurrent_posts_stay_within_the_connection_bound(server: Server) -> None:
    poster = KeepAlivePoster(server.url, max_connections=3)
    try:
        statuses = await asyncio.gather(*(poster.post(b"x", {}) for _ in range(30)))
    finally:
        await poster.close()
    assert statuses == [200] * 30
    assert len(server.bodies) == 30
    assert 1 <= len(server.peers) <= 3


async def test_status_and_a_body_in_many_reads_come_back_whole(server: Server) -> None:
    poster = KeepAlivePoster(server.url, max_connections=1)
    try:
        assert await poster.post(b"big", {}) == 503
        # The 190 KB body was consumed: the next response on the same connection parses.
        assert await poster.post(b"after", {}) == 200
    finally:
        await poster.close()
    assert len(server.peers) == 1


async def test_a_connection_the_server_closed_is_not_reused(server: Server) -> None:
    poster = KeepAlivePoster(server.url, max_connections=1)
    try:
        assert await poster.post(b"close", {}) == 200
        assert await poster.post(b"next", {}) == 200
    finally:
        await poster.close()
    assert server.bodies == [b"close", b"next"]
    assert len(server.peers) == 2


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def _poster_to(
    handler: Handler, *, timeout_s: float = 30.0
) -> AsyncIterator[KeepAlivePoster]:
    """A KeepAlivePoster (one connection at a time) to a raw TCP server running `handler`."""
    tcp = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    poster = KeepAlivePoster(
        f"http://127.0.0.1:{port}/hook", max_connections=1, timeout_s=timeout_s
    )
    try:
        yield poster
    finally:
        await poster.close()
        tcp.close()
        await tcp.wait_closed()


def _answering(answer: bytes, connections: list[int], *, byte_by_byte: bool = False) -> Handler:
    """A handler that answers every request with `answer`; counts its connections."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            # Until the client closes the connection.
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = next(
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    )
                    await reader.readexactly(length)
                    if byte_by_byte:
                        for i in range(len(answer)):
                            writer.write(answer[i : i + 1])
                            await writer.drain()
                    else:
                        writer.write(answer)
        finally:
            writer.close()

    return serve


async def test_a_dropped_connection_fails_the_call() -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async with _poster_to(drop) as poster:
        with pytest.raises(ResponseError):
            await poster.post(b"x", {})


async def test_a_response_head_split_over_many_reads_is_parsed() -> None:
    answer = b"HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n\r\nhello"
    connections: list[int] = []
    async with _poster_to(_answering(answer, connections, byte_by_byte=True)) as poster:
        assert [await poster.post(b"x", {}) for _ in range(3)] == [202, 202, 202]
    assert len(connections) == 1


async def test_connection_close_in_a_token_list_is_honoured() -> None:
    answer = b"HTTP/1.1 200 OK\r\nConnection:Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n"
    connections: list[int] = []
    async with _poster_to(_answering(answer, connections)) as poster:
        assert [await poster.post(b"x", {}) for _ in range(2)] == [200, 200]
    assert len(connections) == 2


async def test_a_server_that_never_answers_fails_the_call_and_loses_the_connection() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # until the client gives up and closes
        finally:
            writer.close()

    async with _poster_to(silent, timeout_s=0.2) as poster:
        with pytest.raises(TimeoutError):
            await poster.post(b"x", {})
