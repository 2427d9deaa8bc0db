"""Where a scenario's CPU goes: every process's CPU time over a window, grouped by kind.

Everything in a run shares two cores: the service's processes, PostgreSQL, RabbitMQ, the LiveKit
emulator and the load generator. Rates on these shared machines move by tens of percent between
runs; CPU time per operation, per process, moves far less, so it is what changes are judged by
(docs/performance.md) and what a scenario reports next to its rate (`cpu_ms_per_op.<group>`).

The ledger reads `/proc/<pid>/stat` of every process at the start and the end of a window: no
sampling thread, nothing running in between. A process that started inside the window counts
whole; one that ended inside it is lost (the servers and PostgreSQL's pooled backends live
through a measurement, so that loses little).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")
# Process names (the kernel's `comm`) of the shared services.
_KINDS = {
    "postgres": "postgres",
    "beam.smp": "rabbitmq",
    "erl_child_setup": "rabbitmq",
    "epmd": "rabbitmq",
    "inet_gethost": "rabbitmq",
}
OTHER = "other"


@dataclass(frozen=True, slots=True)
class Reading:
    """CPU seconds used so far, by pid, with each pid's group."""

    seconds: Mapping[int, float]
    groups: Mapping[int, str]


def parse_stat(stat: str) -> tuple[str, float]:
    """(comm, user + system CPU seconds of all threads) from a /proc/<pid>/stat line."""
    # The command name sits in parentheses and may itself contain spaces or parentheses; the
    # fields after the last ")" are fixed: utime and stime are the 12th and 13th of them.
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return comm, (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


class CpuLedger:
    """`named()` gives the pids the run knows by name (its children, itself); the rest are
    grouped by their process name, or as `other`."""

    def __init__(self, named: Callable[[], Mapping[int, str]]) -> None:
        self._named = named

    def read(self) -> Reading:
        named = self._named()
        seconds: dict[int, float] = {}
        groups: dict[int, str] = {}
        for entry in _PROC.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                comm, cpu = parse_stat((entry / "stat").read_text())
            except (OSError, ValueError, IndexError):  # gone meanwhile, or a kernel oddity
                continue
            pid = int(entry.name)
            seconds[pid] = cpu
            groups[pid] = named.get(pid) or _KINDS.get(comm, OTHER)
        return Reading(seconds, groups)

    def since(self, start: Reading) -> dict[str, float]:
        """CPU seconds per group from `start` to now."""
        now = self.read()
        spent: defaultdict[str, float] = defaultdict(float)
        for pid, cpu in now.seconds.items():
            # A pid not seen at the start began inside the window (pid reuse within a window of
            # seconds is not a concern at these process counts).
            spent[now.groups[pid]] += cpu - start.seconds.get(pid, 0.0)
        return dict(spent)


def per_op_ms(spent: Mapping[str, float], ops: float) -> dict[str, float]:
    """`cpu_ms_per_op.<group>` details, with the total; empty when nothing was done."""
    if ops <= 0:
        return {}
    details = {f"cpu_ms_per_op.{group}": 1000 * s / ops for group, s in sorted(spent.items())}
    details["cpu_ms_per_op.total"] = 1000 * sum(spent.values()) / ops
    return details
