"""The bench's keep-alive HTTP client against a real aiohttp server (the shim's server library)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

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


async def test_a_dropped_connection_fails_the_call() -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    tcp = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    poster = KeepAlivePoster(f"http://127.0.0.1:{port}/hook", max_connections=1)
    try:
        with pytest.raises(ResponseError):
            await poster.post(b"x", {})
    finally:
        await poster.close()
        tcp.close()
        await tcp.wait_closed()
