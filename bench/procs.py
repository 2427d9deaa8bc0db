"""Child processes: start with a log file, wait until ready, read their memory and CPU, stop.

Servers run as subprocesses so that the load generator and the server never share an event loop
or a GIL, and so that a server's memory and CPU can be read from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.context import HOST
from bench.machine_cpu import parse_stat

STOP_TIMEOUT_S = 20.0


def rss_kib(pid: int) -> int:
    """Resident memory of a process now (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ProcessFailedError(f"process {pid}: no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (all threads)."""
    return parse_stat(Path(f"/proc/{pid}/stat").read_text()).seconds


class ProcessFailedError(RuntimeError):
    """A child exited or never became ready; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def check(self) -> None:
        if not self.running:
            raise ProcessFailedError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    async def stop(self) -> int | None:
        """SIGTERM (the services drain and exit 0), then SIGKILL after STOP_TIMEOUT_S."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await self.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        self.log_file.close()
        return self.process.returncode


async def spawn(name: str, args: list[str], env: Mapping[str, str], workdir: Path) -> Child:
    """Start `python <args>` with the same interpreter (the project's venv)."""
    log_path = workdir / f"{name}.log"
    log_file = log_path.open("ab")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log_file,
        stderr=asyncio.subprocess.STDOUT,
    )
    return Child(name, process, log_path, log_file)


async def wait_ready(
    child: Child, probe: Callable[[], Awaitable[bool]], *, timeout_s: float = 60.0
) -> None:
    """Poll `probe` (a readiness check in another process: nothing to await) until it holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        child.check()
        with contextlib.suppress(OSError, TimeoutError):
            if await probe():
                return
        await asyncio.sleep(0.1)
    raise ProcessFailedError(f"{child.name} not ready after {timeout_s:.0f} s:\n{child.log_tail()}")


async def port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
