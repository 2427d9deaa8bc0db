"""The CPU ledger: every process's CPU over a window, by the group it belongs to."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg
import pytest

from bench.machine_cpu import CpuLedger, parse_stat, per_op_ms

# Burns until this process has used 0.3 s of CPU, then waits to be told to go.
_BURN = (
    "import sys, time\n"
    "while time.process_time() < 0.3: pass\n"
    "print('done', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_parse_stat_reads_past_a_command_name_with_spaces_and_parentheses() -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    rest = ["S", "1", "1", "1", "0", "-1", "4194560", "1", "0", "0", "0"]
    line = f"4242 (a (b) c) {' '.join(rest)} {3 * ticks} {2 * ticks} 7 8 20 0 1 0"

    assert parse_stat(line) == ("a (b) c", 5.0)


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
