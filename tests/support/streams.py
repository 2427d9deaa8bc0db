"""Reading server streams in tests."""

from __future__ import annotations

from typing import Any

import grpc


async def read(stream: Any) -> Any:
    """The next message of a grpc.aio stream, which must not have ended."""
    message = await stream.read()
    assert message is not grpc.aio.EOF, "the stream ended"
    return message
