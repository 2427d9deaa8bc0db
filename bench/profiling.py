"""Optional sampling profiles of the service processes (`--profile DIR`).

py-spy attaches to each favorited child as soon as it is ready and samples it until it exits,
writing `<child>.<format>` into DIR. py-spy is not a project dependency: install it into the venv
by hand (`uv pip install py-spy`); it needs ptrace rights (root, or CAP_SYS_PTRACE).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from pathlib import Path

log = logging.getLogger(__name__)

FORMATS = ("speedscope", "raw", "flamegraph")
_SUFFIX = {"speedscope": "speedscope.json", "raw": "collapsed.txt", "flamegraph": "svg"}


def py_spy() -> str | None:
    """The py-spy next to the interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    def __init__(self, directory: Path, fmt: str) -> None:
        executable = py_spy()
        if executable is None:
            raise RuntimeError("--profile needs py-spy: `uv pip install py-spy` into the venv")
        self._py_spy = executable
        self._directory = directory
        self._format = fmt
        self._recorders: list[asyncio.subprocess.Process] = []
        directory.mkdir(parents=True, exist_ok=True)

    async def attach(self, name: str, pid: int) -> None:
        output = self._directory / f"{name}.{_SUFFIX[self._format]}"
        recorder = await asyncio.create_subprocess_exec(
            self._py_spy,
            "record",
            "--pid",
            str(pid),
            "--format",
            self._format,
            "--output",
            str(output),
            # Blocking sampling pauses the process for each sample (~1 % at 100 Hz) but gives whole
            # stacks; --nonblocking tears a third of them. A profiled run is for finding where the
            # time goes, not for the figures of the table.
            "--rate",
            "100",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self._recorders.append(recorder)

    async def close(self) -> None:
        """Recorders end when their process exits; wait (bounded) for them to write."""
        for recorder in self._recorders:
            try:
                async with asyncio.timeout(30):
                    await recorder.wait()
            except TimeoutError:
                recorder.terminate()
                await recorder.wait()
        log.info("profiles in %s", self._directory)
