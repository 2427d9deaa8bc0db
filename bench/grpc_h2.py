"""The watch scenarios' gRPC client: server-streaming calls over HTTP/2 with h2, read by callback.

Why not grpc.aio, which the rest of the suite uses: its client completes every message it reads
as an operation of its own (a batch started, its completion through grpc's poller thread, a
socket write to wake the event loop, a future and a task switch). In the 10,000-watcher fan-out
that cost the readers 96-117 µs of CPU per message, and the server, sharing the two cores with
them, ~100 µs per message instead of the ~55 µs a bare grpc.aio server needs. Here one
`receive_data` of h2 takes everything the kernel has for a connection of 100 streams, and each
gRPC message goes straight to its stream's handler: 46-63 µs per message in the readers, 37-54
µs in the server (docs/performance.md, session 11).

Only what the readers need: one request message, a stream of response messages without
compression, and the call's status from its trailers (or a trailers-only response). The
HTTP/2 framing, HPACK and flow control are h2's; this module adds gRPC's five-byte message
prefix and status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol, cast

import grpc
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from h2.connection import ConnectionState

# A stream's own receive window, and the connection's: generous, so the readers never hold the
# server back on flow control; h2 still hands the space back as the messages are read.
STREAM_WINDOW = 16 * 1024 * 1024
CONNECTION_WINDOW = 1 << 30

_CODES = {code.value[0]: code.name for code in grpc.StatusCode}
# A stream the server resets, as grpc's own client reports it.
_RESET_CODES: dict[int, str] = {
    h2.errors.ErrorCodes.NO_ERROR: "INTERNAL",
    h2.errors.ErrorCodes.CANCEL: "CANCELLED",
    h2.errors.ErrorCodes.REFUSED_STREAM: "UNAVAILABLE",
    h2.errors.ErrorCodes.ENHANCE_YOUR_CALM: "RESOURCE_EXHAUSTED",
}
# A response that is not gRPC's, by HTTP status, as grpc's own client reports it.
_HTTP_CODES = {
    400: "INTERNAL",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "UNIMPLEMENTED",
    429: "UNAVAILABLE",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "UNAVAILABLE",
}


class StreamHandler(Protocol):
    def on_message(self, data: bytes) -> None:
        """One whole response message (its serialized bytes)."""

    def on_end(self, code: str) -> None:
        """The call ended: "OK", or the name of its grpc.StatusCode (UNAVAILABLE when the
        connection was lost or the server sent GOAWAY, CANCELLED when the server reset the
        stream, INTERNAL when a message could not be read or on_message raised)."""


class _Stream:
    __slots__ = ("buffer", "code", "handler")

    def __init__(self, handler: StreamHandler) -> None:
        self.handler = handler
        self.buffer = bytearray()
        self.code = ""  # the status, once its headers or trailers carried it

    def feed(self, data: bytes) -> str:
        """Hand every whole message in `data` (and what came before it) to the handler; "" or
        the status that ends the call (a message this client cannot read)."""
        buffer = self.buffer
        if not buffer and len(data) >= 5 and data[0] == 0:
            # The usual case: a frame that carries exactly one message.
            length = int.from_bytes(data[1:5], "big")
            if len(data) == 5 + length:
                self.handler.on_message(data[5:])
                return ""
        buffer += data
        while len(buffer) >= 5:
            if buffer[0] != 0:
                return "INTERNAL"  # compressed: never asked for
            length = int.from_bytes(buffer[1:5], "big")
            end = 5 + length
            if len(buffer) < end:
                break
            message = bytes(buffer[5:end])
            del buffer[:end]
            self.handler.on_message(message)
        return ""


class Connection(asyncio.Protocol):
    """One HTTP/2 connection carrying any number of server-streaming calls.

    `await Connection.open(host, port)`, then `call(...)` for each stream; `close()` ends them all
    without telling their handlers (the caller is done with them).
    """

    def __init__(self, authority: str) -> None:
        self._authority = authority.encode()
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self._h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        self._transport: asyncio.Transport | None = None
        self._streams: dict[int, _Stream] = {}
        self._lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(lambda: cls(f"{host}:{port}"), host, port)
        return connection

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports are not asyncio.Transport subclasses.
        self._transport = cast(asyncio.Transport, transport)
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(CONNECTION_WINDOW)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            stream.handler.on_end("UNAVAILABLE")
        if not self._lost.done():
            self._lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        h2conn, streams = self._h2, self._streams
        try:
            events = h2conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            # Typically a frame after the server's GOAWAY, which h2 takes as the connection's
            # end: calls are not drained, every open one ends UNAVAILABLE (never silently).
            self._abort()
            return
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                stream_id = event.stream_id
                h2conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                stream = streams.get(stream_id)
                if stream is None:
                    continue
                try:
                    failed = stream.feed(event.data)
                except Exception:  # noqa: BLE001 - a handler's failure ends its call only
                    failed = "INTERNAL"
                if failed:
                    self._end(stream_id, failed, reset=True)
            elif isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                self._headers(event.stream_id, event.headers)
            elif isinstance(event, h2.events.StreamEnded):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    # A call whose trailers had no grpc-status failed (as grpc's client says),
                    # and so did one that ended inside a message.
                    code = "INTERNAL" if stream.buffer else stream.code or "UNKNOWN"
                    self._end(event.stream_id, code)
            elif isinstance(event, h2.events.StreamReset):
                self._end(event.stream_id, _RESET_CODES.get(event.error_code, "INTERNAL"))
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._abort()  # GOAWAY: as above
                return
        self._flush()

    # -- calls --------------------------------------------------------------------------------

    def call(
        self,
        path: str,
        request: bytes,
        metadata: Sequence[tuple[str, str]],
        handler: StreamHandler,
    ) -> int:
        """Start a call: its headers and its one request message go out now. Raises
        ConnectionError if the connection is closed or going away."""
        if self._transport is None or self._h2.state_machine.state is ConnectionState.CLOSED:
            raise ConnectionError("the connection is closed")
        stream_id: int = self._h2.get_next_available_stream_id()
        headers = [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", path.encode()),
            (b":authority", self._authority),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            *((key.encode(), value.encode()) for key, value in metadata),
        ]
        self._h2.send_headers(stream_id, headers)
        self._h2.send_data(
            stream_id, b"\x00" + len(request).to_bytes(4, "big") + request, end_stream=True
        )
        self._streams[stream_id] = _Stream(handler)
        self._flush()
        return stream_id

    def cancel(self, stream_id: int) -> None:
        """End a call from this side; its handler is not told."""
        if self._streams.pop(stream_id, None) is not None and self._transport is not None:
            self._reset(stream_id)
            self._flush()

    async def close(self) -> None:
        """Close the connection and wait until it is; the calls' handlers are not told."""
        self._streams.clear()
        if self._transport is not None:
            self._transport.close()
        await self._lost

    # -- internals ----------------------------------------------------------------------------

    def _headers(self, stream_id: int, headers: Sequence[tuple[bytes, bytes]]) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        for key, value in headers:
            if key == b"grpc-status":
                stream.code = _CODES.get(int(value), "UNKNOWN")
            elif key == b":status" and value != b"200" and not stream.code:
                # Not a gRPC answer: as grpc's client maps the HTTP status.
                stream.code = _HTTP_CODES.get(int(value), "UNKNOWN")

    def _end(self, stream_id: int, code: str, *, reset: bool = False) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return
        try:
            if reset:
                self._reset(stream_id)
        finally:
            stream.handler.on_end(code)

    def _reset(self, stream_id: int) -> None:
        # The stream may have closed in the same read (its trailers after the bad message).
        with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)

    def _abort(self) -> None:
        """End the connection now; connection_lost ends its calls UNAVAILABLE."""
        if self._transport is not None:
            self._transport.abort()

    def _flush(self) -> None:
        out = self._h2.data_to_send()
        if out and self._transport is not None:
            self._transport.write(out)
