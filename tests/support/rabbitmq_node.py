"""A RabbitMQ node of the test's own (own name, port and data directory), so a test may stop and
restart a broker without touching the machine's shared one."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path

from tests.support.waiting import until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RabbitMQNode:
    def __init__(self) -> None:
        self.port = _free_port()
        self.name = f"favtest-{uuid.uuid4().hex[:8]}@localhost"
        self._dir = Path(tempfile.mkdtemp(prefix="favorited-rmq-"))
        self._dir.chmod(0o777)  # the server drops to the rabbitmq user

    @staticmethod
    def available() -> bool:
        return shutil.which("rabbitmq-server") is not None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(_free_port()),
            "RABBITMQ_MNESIA_BASE": str(self._dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self._dir / "log"),
            "RABBITMQ_PID_FILE": str(self._dir / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self._dir / "plugins"),
            "RABBITMQ_CONFIG_FILE": str(self._dir / "rabbitmq"),
        }

    async def start(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            "rabbitmq-server",
            "-detached",
            env=self._env(),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.wait()
        await until(self._accepts)

    async def stop(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            "rabbitmqctl",
            "-n",
            self.name,
            "stop",
            env=self._env(),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.wait()

        async def refuses() -> bool:
            return not await self._accepts()

        await until(refuses)

    async def destroy(self) -> None:
        await self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    async def _accepts(self) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        return True
