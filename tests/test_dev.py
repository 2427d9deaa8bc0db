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

import aio_pika
import pytest

GRPCURL = Path(sys.executable).parent / "grpcurl"


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
