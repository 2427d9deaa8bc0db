"""The standalone entry point: ``python -m favorited.livekit_emulator``."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys

import pytest
from livekit import api

from favorited.livekit_emulator import DEV_API_SECRET, main

from ._support import API_KEY, API_SECRET

URL_PATTERN = re.compile(rb"listening on (http://127\.0\.0\.1:\d+)")


async def _spawn(*args: str, **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "favorited.livekit_emulator",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )


async def _read_url(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    async for line in process.stderr:
        if match := URL_PATTERN.search(line):
            return match.group(1).decode()
    raise AssertionError("emulator exited without printing its URL")


def test_dev_secret_is_long_enough_for_hs256() -> None:
    assert len(DEV_API_SECRET.encode()) >= 32


async def test_serves_until_sigterm() -> None:
    process = await _spawn("--port", "0", LIVEKIT_API_KEY=API_KEY, LIVEKIT_API_SECRET=API_SECRET)
    try:
        async with asyncio.timeout(30):
            url = await _read_url(process)
            async with api.LiveKitAPI(url, API_KEY, API_SECRET) as client:
                room = await client.room.create_room(api.CreateRoomRequest(name="stage"))

            process.send_signal(signal.SIGTERM)
            await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert room.sid.startswith("RM_")
    assert process.returncode == 0


async def test_port_in_use_exits_with_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await _spawn("--port", str(port), LIVEKIT_API_KEY="", LIVEKIT_API_SECRET="")
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()

    assert process.returncode == 1
    assert b"cannot serve" in stderr


def test_short_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_API_SECRET", "short")

    assert main(["--port", "0"]) == 2


def test_bad_port_in_env_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_EMULATOR_PORT", "not-a-port")

    with pytest.raises(SystemExit) as exc:
        main([])

    assert exc.value.code == 2
