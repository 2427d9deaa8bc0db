"""Where a scenario's CPU goes: every process's CPU time over a window, grouped by kind.

Everything in a run shares two cores: the service's processes, PostgreSQL, RabbitMQ, the LiveKit
emulator and the load generator. Rates on these shared machines move by tens of percent between
runs; CPU time per operation, per process, moves far less, so it is what changes are judged by
(docs/performance.md) and what a scenario reports next to its rate (`cpu_ms_per_op.<group>`).

The ledger reads `/proc/<pid>/stat` of every process at the start and the end of a window: no
sampling thread, nothing running in between. A process that started inside the window counts
whole. One that ended inside it is gone from /proc by the end, but not its CPU: the kernel adds a
reaped child's time to its parent's (`cutime`, `cstime`), so the parent's growth there counts, less
what the child had used before the window, under the parent's group. That matters for
PostgreSQL: asyncpg replaces a pooled connection after 50,000 queries, and the backend that did
most of a minute's work can end inside the window (it happened in `webhook_e2e`: PostgreSQL's
share read 0.06 ms per webhook in one repeat, 0.40 in the others).

A process is its pid and its start time, so a pid the kernel reuses inside a window is a new
process. What the ledger still cannot see: an orphan's parent ended first, so the orphan's time
goes to whoever adopts it (pid 1 here), whole; a process named by the run (a service) that ends
inside the window is booked to its parent's group; and a reading is a pass over /proc, not an
instant, so a child that ends between its parent's line and its own is counted twice (at the
start) or lost (at the end). None of these happens to the servers or to PostgreSQL's backends,
whose postmaster reaps them, in the few milliseconds a reading takes.
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
class Stat:
    """What the ledger reads of one /proc/<pid>/stat line."""

    comm: str
    ppid: int
    started: int  # clock ticks after boot: with the pid, which process this is
    seconds: float  # user + system CPU of all its threads
    children_seconds: float  # the same, of its children that ended and were reaped


@dataclass(frozen=True, slots=True)
class Reading:
    """Every process's `Stat` at one moment, by pid, with each pid's group."""

    stats: Mapping[int, Stat]
    groups: Mapping[int, str]


def parse_stat(stat: str) -> Stat:
    # The command name sits in parentheses and may itself contain spaces or parentheses; the
    # fields after the last ")" are fixed (proc(5) numbers them from the pid, so field N is
    # fields[N - 3] here): ppid is field 4, utime, stime, cutime and cstime 14 to 17, starttime 22.
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return Stat(
        comm=comm,
        ppid=int(fields[1]),
        started=int(fields[19]),
        seconds=(utime + stime) / _CLOCK_TICKS,
        children_seconds=(cutime + cstime) / _CLOCK_TICKS,
    )


class CpuLedger:
    """`named()` gives the pids the run knows by name (its children, itself); the rest are
    grouped by their process name, or as `other`."""

    def __init__(self, named: Callable[[], Mapping[int, str]]) -> None:
        self._named = named

    def read(self) -> Reading:
        named = self._named()
        stats: dict[int, Stat] = {}
        groups: dict[int, str] = {}
        for entry in _PROC.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = parse_stat((entry / "stat").read_text())
            except (OSError, ValueError, IndexError):  # gone meanwhile, or a kernel oddity
                continue
            pid = int(entry.name)
            stats[pid] = stat
            groups[pid] = named.get(pid) or _KINDS.get(stat.comm, OTHER)
        return Reading(stats, groups)

    def since(self, start: Reading) -> dict[str, float]:
        """CPU seconds per group from `start` to now."""
        now = self.read()
        spent: defaultdict[str, float] = defaultdict(float)
        reaped: dict[int, float] = {}  # pid -> growth of its children_seconds in the window
        for pid, stat in now.stats.items():
            # A process not seen at the start began inside the window: all its time is the
            # window's.
            before = _same(start, pid, stat)
            own = stat.seconds - (before.seconds if before else 0.0)
            reaped[pid] = stat.children_seconds - (before.children_seconds if before else 0.0)
            spent[now.groups[pid]] += own + reaped[pid]
        # Ended inside the window: its whole time (with its own reaped children's) went into the
        # first living ancestor's children_seconds; what it had used before the window is not
        # the window's. At most what that ancestor took in, should a parent not account for its
        # children (one that ignores SIGCHLD): then the child's time is lost, as it used to be.
        before_window: defaultdict[int, float] = defaultdict(float)
        for pid, before in start.stats.items():
            if not _alive(now, pid, before):
                ancestor = _living_ancestor(before.ppid, start, now)
                if ancestor is not None:
                    before_window[ancestor] += before.seconds + before.children_seconds
        for ancestor, seconds in before_window.items():
            spent[now.groups[ancestor]] -= min(seconds, reaped[ancestor])
        return dict(spent)


def _same(reading: Reading, pid: int, stat: Stat) -> Stat | None:
    """The reading's stat of that very process (not of an earlier one with the same pid)."""
    earlier = reading.stats.get(pid)
    return earlier if earlier is not None and earlier.started == stat.started else None


def _alive(now: Reading, pid: int, before: Stat) -> bool:
    current = now.stats.get(pid)
    return current is not None and current.started == before.started


def _living_ancestor(pid: int, start: Reading, now: Reading) -> int | None:
    """The first ancestor, going up from `pid` as the start saw the tree, still alive now."""
    for _ in range(len(start.stats)):  # a bound: the start's pids cannot form a longer chain
        parent = start.stats.get(pid)
        if parent is None:
            return None  # an ancestor the start never saw: the chain is lost
        if _alive(now, pid, parent):
            return pid
        pid = parent.ppid
    return None


def per_op_ms(spent: Mapping[str, float], ops: float) -> dict[str, float]:
    """`cpu_ms_per_op.<group>` details, with the total; empty when nothing was done."""
    if ops <= 0:
        return {}
    details = {f"cpu_ms_per_op.{group}": 1000 * s / ops for group, s in sorted(spent.items())}
    details["cpu_ms_per_op.total"] = 1000 * sum(spent.values()) / ops
    return details
