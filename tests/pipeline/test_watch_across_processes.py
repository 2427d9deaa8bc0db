"""A watcher on one `favorited api` process sees changes made through another API process and
through the webhook consumer, in order."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from favorited.app import ConsumerApp
from favorited.config import Settings
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from favorited_api.v1 import participant_service_pb2 as ppb
from favorited_api.v1 import participant_service_pb2_grpc as ps_grpc
from tests.api.helpers import create, join
from tests.conftest import JWT_SECRET, LIVEKIT_KEY, LIVEKIT_SECRET, Metadata
from tests.pipeline.conftest import Post
from tests.support.livekit_webhooks import event_body, sid
from tests.support.streams import read

Auth = Callable[..., Metadata]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def api_process(pipeline_settings: Settings) -> AsyncIterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": pipeline_settings.database_url or "",
        "LIVEKIT_URL": pipeline_settings.livekit_url or "",
        "LIVEKIT_API_KEY": LIVEKIT_KEY,
        "LIVEKIT_API_SECRET": LIVEKIT_SECRET,
        "FAVORITED_JWT_SECRET": JWT_SECRET,
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "favorited",
        "api",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    target = f"127.0.0.1:{port}"
    try:
        async with grpc.aio.insecure_channel(target) as channel:
            health: Any = health_pb2_grpc.HealthStub(channel)
            # Wait for readiness: the health service answers SERVING once the process is up.
            await health.Check(health_pb2.HealthCheckRequest(), wait_for_ready=True, timeout=30)
        yield target
    finally:
        proc.terminate()
        assert await proc.wait() == 0  # SIGTERM: drain and exit cleanly


async def test_watch_on_another_process_sees_rpc_and_webhook_changes(
    api_process: str,
    consumer: ConsumerApp,
    post: Post,
    livestreams: ls_grpc.LivestreamServiceAsyncStub,
    participants: ps_grpc.ParticipantServiceAsyncStub,
    auth: Auth,
    room_name: str,
) -> None:
    ls = await create(livestreams, auth("alice"), room_name)
    async with grpc.aio.insecure_channel(api_process) as channel:
        stream = ps_grpc.ParticipantServiceStub(channel).WatchParticipants(
            ppb.WatchParticipantsRequest(livestream_id=ls.id), metadata=auth("w")
        )
        first = await read(stream)
        assert first.snapshot.complete
        await join(participants, auth("bob"), ls.id)  # through the in-test API process
        bob_sid = sid("PA_")
        _, joined = event_body(
            "participant_joined",
            room_sid=ls.livekit_room_sid,
            room_name=room_name,
            participant_sid=bob_sid,
            identity="bob",
            joined_at_ms=int(time.time() * 1000),
        )
        assert await post(joined) == 200  # through the shim and the consumer
        seen: list[ppb.ParticipantEvent] = []
        while len(seen) < 2:
            message = await read(stream)
            if message.WhichOneof("event") == "change":
                seen.append(message.change)
        assert [(c.sequence, c.type) for c in seen] == [
            (1, ppb.PARTICIPANT_EVENT_TYPE_JOINED),
            (2, ppb.PARTICIPANT_EVENT_TYPE_CONNECTED),
        ]
        assert seen[1].participant.livekit_participant_sid == bob_sid
        assert seen[1].participant.connected
        stream.cancel()
