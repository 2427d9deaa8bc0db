"""The CPU ledger: every process's CPU over a window, by the group it belongs to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from bench.machine_cpu import CpuLedger, Stat, parse_stat, per_op_ms
from tests.support.waiting import until

# Burns until this process has used 0.3 s of CPU, then waits to be told to go.
_BURN = (
    "import sys, time\n"
    "while time.process_time() < 0.3: pass\n"
    "print('done', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_parse_stat_reads_past_a_command_name_with_spaces_and_parentheses() -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    rest = ["S", "17", "1", "1", "0", "-1", "4194560", "1", "0", "0", "0"]
    times = f"{3 * ticks} {2 * ticks} {4 * ticks} {2 * ticks}"
    line = f"4242 (a (b) c) {' '.join(rest)} {times} 20 0 1 0 987654 12345 300"

    assert parse_stat(line) == Stat(
        comm="a (b) c", ppid=17, started=987654, seconds=5.0, children_seconds=6.0
    )


def test_a_named_child_gets_its_cpu_and_the_rest_is_grouped() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _BURN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        ledger = CpuLedger(lambda: {child.pid: "burner", os.getpid(): "loadgen"})
        start = ledger.read()
        assert child.stdout is not None and child.stdout.readline() == "done\n"
        spent = ledger.since(start)
    finally:
        child.communicate("")

    # The child may have used some of its 0.3 s before the window opened.
    assert 0 < spent["burner"] <= 0.3 + 0.05
    assert "loadgen" in spent


# Starts a child that burns 0.3 s of CPU and says so; on "go" the child burns 0.3 s more and
# ends, this process reaps it and says "reaped"; it ends itself when its stdin closes.
_PARENT = (
    "import subprocess, sys\n"
    "burn = 'import sys, time\\nwhile time.process_time() < 0.3: pass\\n"
    "print(1, flush=True)\\nsys.stdin.readline()\\n"
    "while time.process_time() < 0.6: pass\\n'\n"
    "child = subprocess.Popen([sys.executable, '-c', burn], stdin=subprocess.PIPE,\n"
    "                         stdout=subprocess.PIPE, text=True)\n"
    "child.stdout.readline()\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "child.communicate('go\\n')\n"
    "print('reaped', flush=True)\n"
    "sys.stdin.read()\n"
)


# As _PARENT, but the parent ignores SIGCHLD: the kernel then reaps the child itself and adds
# its time to no one (Python's wait copes with that).
_CARELESS_PARENT = _PARENT.replace(
    "import subprocess, sys\n",
    "import signal, subprocess, sys\nsignal.signal(signal.SIGCHLD, signal.SIG_IGN)\n",
)


def _parent_spent_while_its_child_ends(script: str) -> float:
    """Run a _PARENT-like script; its group's CPU over a window in which the child burns its
    second 0.3 s, ends and is reaped."""
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdin is not None and parent.stdout is not None
    try:
        assert parent.stdout.readline() == "ready\n"  # the child has used its first 0.3 s
        ledger = CpuLedger(lambda: {parent.pid: "parent"})
        start = ledger.read()
        parent.stdin.write("go\n")
        parent.stdin.flush()
        assert parent.stdout.readline() == "reaped\n"
        return ledger.since(start)["parent"]
    finally:
        parent.communicate("")


def test_a_child_that_ends_inside_the_window_counts_for_its_window_part_only() -> None:
    # Lost with the child before (~0); counted whole, with the 0.3 s before the window, if the
    # parent's reaped time were taken as it is (~0.6).
    assert 0.25 <= _parent_spent_while_its_child_ends(_PARENT) <= 0.45


def test_a_child_whose_time_nobody_takes_in_is_not_taken_off_its_parent() -> None:
    # The child's time is lost (the kernel adds it to no one); without the cap its 0.3 s from
    # before the window would be taken off the parent, which used next to nothing itself.
    assert -0.05 <= _parent_spent_while_its_child_ends(_CARELESS_PARENT) <= 0.05


async def test_a_postgres_backend_that_ends_inside_the_window_still_counts(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    backend = Path(f"/proc/{conn.get_server_pid()}")
    # Its postmaster reaps it: named on its own, so no other backend's work can pass the test.
    postmaster = parse_stat((backend / "stat").read_text()).ppid
    ledger = CpuLedger(lambda: {postmaster: "postmaster"})
    start = ledger.read()
    await conn.fetchval("SELECT count(*) FROM generate_series(1, 3000000)")
    await conn.close()
    await until(lambda: not backend.exists())  # ended, and reaped by the postmaster
    spent = ledger.since(start)

    # The postmaster itself only forks and waits; lost with the backend before (~0).
    assert spent["postmaster"] >= 0.1


async def test_postgres_backends_are_grouped_by_their_process_name(db: asyncpg.Pool) -> None:
    ledger = CpuLedger(dict)
    start = ledger.read()
    await db.fetchval("SELECT count(*) FROM generate_series(1, 3000000)")
    spent = ledger.since(start)

    assert spent["postgres"] >= 0.05


def test_per_op_ms_divides_by_the_operations_and_adds_the_total() -> None:
    assert per_op_ms({"api": 1.0, "postgres": 0.5}, 500) == {
        "cpu_ms_per_op.api": 2.0,
        "cpu_ms_per_op.postgres": 1.0,
        "cpu_ms_per_op.total": 3.0,
    }


@pytest.mark.parametrize("ops", [-1, 0])
def test_nothing_done_reports_nothing(ops: int) -> None:
    assert per_op_ms({"api": 1.0}, ops) == {}
