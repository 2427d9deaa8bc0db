"""Helpers for the client tests: subprocesses that never block the event loop the in-process
server runs on, and the runtime probe that skips WatchParticipants tests until it is implemented."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from favorited_api.v1 import participant_service_pb2 as ps
from favorited_api.v1 import participant_service_pb2_grpc as ps_grpc

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from tests.conftest import Metadata

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Result:
    cmd: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.cmd)}\n(exit {self.returncode})\n"
            f"--- stdout\n{self.stdout[-6000:]}\n--- stderr\n{self.stderr[-6000:]}"
        )


def env(**extra: str) -> dict[str, str]:
    """This environment, with the project's virtualenv first on PATH (grpcurl, buf, favorited)."""
    base = dict(os.environ)
    base["PATH"] = f"{VENV_BIN}{os.pathsep}{base.get('PATH', '')}"
    base.update(extra)
    return base


async def run(
    cmd: Sequence[str],
    *,
    cwd: Path = REPO,
    environ: Mapping[str, str] | None = None,
    stdin: str | None = None,
    time_limit: float = 50,
) -> Result:
    """Run a command to completion without blocking the loop (the server under test shares it)."""
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        cwd=cwd,
        env=dict(environ) if environ is not None else env(),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), time_limit
        )
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(
            f"timed out after {time_limit}s: {' '.join(cmd)}\n{out.decode()}\n{err.decode()}"
        ) from None
    assert proc.returncode is not None
    return Result(tuple(cmd), proc.returncode, out.decode(), err.decode())


async def skip_unless_watch_participants(channel: grpc.aio.Channel, metadata: Metadata) -> None:
    """Skip the calling test while the server answers WatchParticipants with UNIMPLEMENTED.

    Asks once about a livestream that does not exist: an implemented stream fails NOT_FOUND (or
    anything but UNIMPLEMENTED), so the test runs as soon as the stream lands.
    """
    stub = ps_grpc.ParticipantServiceStub(channel)
    call = stub.WatchParticipants(
        ps.WatchParticipantsRequest(livestream_id=str(uuid.uuid4())), metadata=metadata, timeout=10
    )
    try:
        async for _ in call:
            break
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
            pytest.skip("WatchParticipants not implemented yet")
    finally:
        call.cancel()
