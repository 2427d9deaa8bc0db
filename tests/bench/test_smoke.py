"""The benchmark suite runs end to end at tiny sizes and reports every scenario.

No timing is asserted, ever: this only proves that `python -m bench` starts what it needs,
drives every scenario, cleans up and prints one JSON line per scenario.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.scenarios import SCENARIOS

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_smoke_run_reports_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "bench.jsonl"
    # A process of its own, as documented: the suite runs its own event loop and children.
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json-out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    printed = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert printed == written
    assert [r["scenario"] for r in printed] == list(SCENARIOS)
    for record in printed:
        assert record["smoke"] is True
        assert set(record) >= {"value", "p50_ms", "p99_ms", "yardstick", "ratio", "met", "checks"}
        assert record["yardstick"]["value"], record  # every scenario measured its yardstick
        assert len(record["repeats"]) == 1
    # Correctness, not speed: these hold at any size on any machine.
    checks = {r["scenario"]: r["checks"] for r in printed}
    assert checks["webhook_drain"]["exactly once"]
    assert checks["end_100k"]["one statement"] and checks["end_100k"]["all left"]
    assert checks["viewer_counts"]["0 lost updates"]
    # The watch scenarios' readers saw every change, in order.
    assert checks["watch_fanout"]["every event to every watcher"]
    assert checks["watch_fanout_many"]["every event to every watcher"]
    # The scenarios that report where their CPU went name the service's processes and the
    # shared services they drove (bench/machine_cpu.py).
    details = {r["scenario"]: r["details"] for r in printed}
    assert details["create"]["cpu_ms_per_op.livekit-emulator"] > 0
    assert details["join"]["cpu_ms_per_op.api"] > 0
    assert details["join"]["cpu_ms_per_op.postgres"] > 0
    assert details["webhook_e2e"]["cpu_ms_per_op.rabbitmq"] > 0
    # Accepted -> committed is part of sent -> committed, webhook by webhook, so its
    # percentiles cannot exceed the whole's.
    e2e = next(r for r in printed if r["scenario"] == "webhook_e2e")
    assert 0 <= e2e["details"]["accept_commit_p99_ms"] <= e2e["p99_ms"]
