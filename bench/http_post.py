"""The webhook scenarios' HTTP client: POSTs over a pool of keep-alive HTTP/1.1 connections.

Why not aiohttp's client, which the tests use: measured during `webhook_e2e`, it cost the load
generator 0.57 to 0.67 ms of CPU per request, a third of a core at the offered rate, taken from the
two cores the shim, RabbitMQ, the consumer and PostgreSQL share (docs/performance.md, "A leaner
load generator"). This client does only what the scenarios need: a request is one write of
ready bytes, a response is its status line, its Content-Length and that many body bytes. It
speaks to the shim, whose answers always carry a Content-Length; anything else fails the call. A
connection the server answers `Connection: close` on, or closes, is not used again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from typing import cast
from urllib.parse import urlsplit


class ResponseError(Exception):
    """The server answered something this client does not parse, or closed the connection."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream connection's transport; not an isinstance check: uvloop's transports are not
        # asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ResponseError(f"connection closed: {exc!r}"))

    def request(self, data: bytes) -> asyncio.Future[int]:
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buffer[:end]).split(b"\r\n")
        try:
            status = int(head[0].split(b" ", 2)[1])
            length = next(
                int(line.split(b":", 1)[1])
                for line in head[1:]
                if line[:15].lower() == b"content-length:"
            )
        except (IndexError, ValueError, StopIteration):
            self._fail(ResponseError(f"unparsed response head: {head[:1]!r}"))
            return
        if len(self._buffer) < end + 4 + length:
            return  # the body is not all here yet
        del self._buffer[: end + 4 + length]
        if any(_closes(line) for line in head[1:]) or head[0].startswith(b"HTTP/1.0"):
            # The server closes it after this answer: never hand it out again.
            self.closed = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(status)

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


def _closes(line: bytes) -> bool:
    name, _, value = line.partition(b":")
    if name.strip().lower() != b"connection":
        return False
    return b"close" in (token.strip().lower() for token in value.split(b","))


class KeepAlivePoster:
    """POST to one URL path over at most `max_connections` connections; returns the status."""

    def __init__(self, url: str, *, max_connections: int, timeout_s: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"an http://host:port/path URL, not {url!r}")
        self._host, self._port = parts.hostname, parts.port
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._start = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode()
        self._idle: deque[_Connection] = deque()
        self._all: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._timeout_s = timeout_s  # a server that never answers fails the call, not the run

    async def post(self, body: bytes, headers: Mapping[str, str]) -> int:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        data = b"".join(
            (self._start, head.encode(), b"Content-Length: %d\r\n\r\n" % len(body), body)
        )
        async with self._slots:
            connection = await self._connection()
            try:
                async with asyncio.timeout(self._timeout_s):
                    status = await connection.request(data)
            except BaseException:
                if connection.transport is not None:
                    connection.transport.close()
                raise
            if not connection.closed:
                self._idle.append(connection)
            return status

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        _, connection = await asyncio.get_running_loop().create_connection(
            _Connection, self._host, self._port
        )
        self._all = [c for c in self._all if not c.closed]
        self._all.append(connection)
        return connection

    async def close(self) -> None:
        for connection in self._all:
            if connection.transport is not None:
                connection.transport.close()
        self._all.clear()
        self._idle.clear()
