"""`favorited api`, `webhooks` and `consumer` run on the loop EVENT_LOOP names (uvloop unless told
otherwise), and the pipeline and the API's streams work end to end on it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import aiohttp
import asyncpg
import grpc
import pytest

from favorited.config import Settings
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from favorited_api.v1 import participant_service_pb2 as ppb
from favorited_api.v1 import participant_service_pb2_grpc as ps_grpc
from tests.api.helpers import create, join
from tests.conftest import JWT_SECRET, LIVEKIT_KEY, LIVEKIT_SECRET, Metadata
from tests.pipeline.conftest import WEBHOOK_PATH, eventually
from tests.support.livekit_webhooks import event_body, sid, sign
from tests.support.streams import read


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    # The default is under test unless a test sets EVENT_LOOP itself.
    inherited = {k: v for k, v in os.environ.items() if k != "EVENT_LOOP"}
    return {
        **inherited,
        "DATABASE_URL": settings.database_url or "",
        "LIVEKIT_URL": settings.livekit_url or "",
        "LIVEKIT_API_KEY": LIVEKIT_KEY,
        "LIVEKIT_API_SECRET": LIVEKIT_SECRET,
        "FAVORITED_JWT_SECRET": JWT_SECRET,
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": "0",
        "AMQP_URL": settings.amqp_url,
        "WEBHOOK_QUEUE": settings.webhook_queue,
        "WEBHOOK_MAX_DELIVERIES": str(settings.webhook_max_deliveries),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": "0",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        **extra,
    }


class _Process:
    """A favorited subprocess whose JSON log records are read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, command: str, env: dict[str, str]) -> _Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "favorited",
            command,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def record(self, message: str) -> dict[str, Any]:
        """The first log record with this message (the test timeout bounds the wait)."""
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            try:
                entry: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            if entry.get("message") == message:
                return entry
        raise AssertionError(f"exited ({await self.proc.wait()}) before logging {message!r}")

    async def terminate(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        # Keep reading stderr so that a chatty shutdown cannot block on a full pipe.
        await self.proc.communicate()
        return await self.proc.wait()


async def test_shim_and_consumer_run_on_uvloop_by_default_and_apply_webhooks(
    pipeline_settings: Settings, db: asyncpg.Pool, clean: None
) -> None:
    env = _env(pipeline_settings)
    shim = await _Process.start("webhooks", env)
    consumer = await _Process.start("consumer", env)
    try:
        assert (await shim.record("process starting"))["event_loop"] == "uvloop"
        port = (await shim.record("webhook shim listening"))["port"]
        assert (await consumer.record("process starting"))["event_loop"] == "uvloop"
        await consumer.record("consumer started")
        event_id, body = event_body("room_started", room_sid=sid("RM_"), room_name="uv")
        headers = {"Authorization": sign(body, LIVEKIT_KEY, LIVEKIT_SECRET)}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", data=body, headers=headers) as r,
        ):
            assert r.status == 200
        await eventually(db, "SELECT count(*) FROM webhook_inbox WHERE event_id = $1", 1, event_id)
    finally:
        shim_exit, consumer_exit = await shim.terminate(), await consumer.terminate()
    assert (shim_exit, consumer_exit) == (0, 0)  # SIGTERM still drains and exits cleanly


async def test_api_runs_on_uvloop_by_default_and_streams_batches(
    pipeline_settings: Settings, auth: Callable[..., Metadata], room_name: str, clean: None
) -> None:
    api = await _Process.start("api", _env(pipeline_settings))
    try:
        assert (await api.record("process starting"))["event_loop"] == "uvloop"
        target = f"127.0.0.1:{(await api.record('gRPC API listening'))['port']}"
        async with grpc.aio.insecure_channel(target) as channel:
            livestreams = ls_grpc.LivestreamServiceStub(channel)
            participants = ps_grpc.ParticipantServiceStub(channel)
            ls = await create(livestreams, auth("alice"), room_name)  # through LiveKit's API
            stream = participants.WatchParticipants(
                ppb.WatchParticipantsRequest(livestream_id=ls.id, batch_changes=True),
                metadata=auth("w"),
            )
            assert (await read(stream)).snapshot.complete
            for user in ("bob", "carol"):
                await join(participants, auth(user), ls.id)
            # A batch goes out as bytes serialized once (favorited/api/wire.py); the client
            # reads the same changes, in order, however they were grouped.
            users: list[str] = []
            while len(users) < 2:
                message = await read(stream)
                assert message.WhichOneof("event") == "changes"
                users += [e.participant.user_id for e in message.changes.events]
            assert users == ["bob", "carol"]
            stream.cancel()
    finally:
        exit_code = await api.terminate()
    assert exit_code == 0  # SIGTERM: drain and exit cleanly, on uvloop too


@pytest.mark.parametrize("command", ["api", "webhooks", "consumer"])
async def test_event_loop_asyncio_turns_uvloop_off(
    pipeline_settings: Settings, command: str, clean: None
) -> None:
    process = await _Process.start(command, _env(pipeline_settings, EVENT_LOOP="asyncio"))
    try:
        assert (await process.record("process starting"))["event_loop"] == "asyncio"
    finally:
        # Killed: the clean SIGTERM exit is covered above, and here the signal could arrive
        # before the process installs its handler.
        await process.terminate(signal.SIGKILL)
