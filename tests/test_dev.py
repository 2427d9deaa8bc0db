"""`favorited dev` — the README's first command — from a process start to the printed grpcurl
examples working exactly as printed, on embedded PostgreSQL and the LiveKit emulator."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest

from tests.support.waiting import until

GRPCURL = Path(sys.executable).parent / "grpcurl"


async def _grpcurl(*argv: str) -> dict[str, Any]:
    run = await asyncio.create_subprocess_exec(
        str(GRPCURL), *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await run.communicate()
    assert run.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


async def _newcomer_connects(banner: list[str], create_command: str, livestream_id: str) -> None:
    """README: join with a token, "connect" through the emulator, see the participant appear."""
    argv = shlex.split(create_command)
    auth, target = argv[argv.index("-H") + 1], argv[-2]
    livekit_url = next(line.split()[1] for line in banner if line.strip().startswith("LiveKit "))
    request = json.dumps({"livestream_id": livestream_id, "display_name": "Alice", "role": 1})
    joined = await _grpcurl(
        "-plaintext",
        "-H",
        auth,
        "-d",
        request,
        target,
        "favorited.v1.ParticipantService/JoinLivestream",
    )
    connect = f"{livekit_url}/_emulator/connect"
    async with aiohttp.ClientSession() as http, http.post(connect, data=joined["token"]) as r:
        assert r.status == 200
        sid = (await r.json())["sid"]

    async def connected() -> bool:
        listed = await _grpcurl(
            "-plaintext",
            "-H",
            auth,
            "-d",
            json.dumps({"livestream_id": livestream_id}),
            target,
            "favorited.v1.ParticipantService/ListParticipants",
        )
        return any(
            p.get("livekit_participant_sid") == sid and p.get("connected")
            for p in listed.get("participants", [])
        )

    await until(connected)  # webhook → shim → RabbitMQ → consumer → PostgreSQL


@pytest.mark.timeout(120)
async def test_dev_runs_everything_and_its_examples_work_as_printed() -> None:
    if not GRPCURL.exists():
        pytest.skip("grpcurl is not installed in this environment")
    dev_dir = tempfile.mkdtemp(prefix="favorited-dev-test-", dir="/tmp")
    queue = f"favorited.test.dev.{uuid.uuid4().hex[:8]}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "LIVEKIT_URL", "FAVORITED_JWT_SECRET"}
    }
    env.update(
        FAVORITED_DEV_DIR=dev_dir,
        GRPC_PORT="0",
        HTTP_PORT="0",
        LIVEKIT_EMULATOR_PORT="0",
        WEBHOOK_QUEUE=queue,
        LOG_LEVEL="WARNING",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "favorited",
        "dev",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    banner: list[str] = []
    try:
        while not banner or "Press Ctrl-C" not in banner[-1]:
            line = await proc.stdout.readline()
            assert line, "favorited dev exited before it was ready"
            banner.append(line.decode())
        commands = [line.strip() for line in banner if line.strip().startswith("grpcurl ")]
        assert len(commands) == 4
        outputs = []
        for command in commands:
            argv = shlex.split(command)
            run = await asyncio.create_subprocess_exec(
                str(GRPCURL),
                *argv[1:],
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await run.communicate()
            assert run.returncode == 0, f"{command}\n{err.decode()}"
            outputs.append(out.decode())
        assert "favorited.v1.LivestreamService" in outputs[0]
        assert json.loads(outputs[1]) == {"status": "SERVING"}
        created = json.loads(outputs[2])["livestream"]
        assert created["status"] == "LIVESTREAM_STATUS_LIVE"
        assert created["room_name"] == "my-first-stream"
        listed = json.loads(outputs[3])["livestreams"]
        assert [ls["id"] for ls in listed] == [created["id"]]
        await _newcomer_connects(banner, commands[2], created["id"])
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        exit_code = await proc.wait()
        shutil.rmtree(dev_dir, ignore_errors=True)
        connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
        async with connection:
            channel = await connection.channel()
            for name in (queue, f"{queue}.dlq"):
                await channel.queue_delete(name)
    assert exit_code == 0
