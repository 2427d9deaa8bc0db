"""`python -m bench`: start what the scenarios need, run them, print a table and JSON lines.

Progress goes to stderr; stdout carries the results only (the table, then one JSON line per
scenario), so `python -m bench | grep '^{'` is the machine-readable output.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench import infra, report
from bench.context import RunContext
from bench.machine_cpu import CpuLedger
from bench.profiling import FORMATS, Profiler
from bench.results import Measurement, as_json
from bench.scenario import Env, Scenario
from bench.scenarios import SCENARIOS
from bench.services import Services
from bench.sizes import Sizes

log = logging.getLogger("bench")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        metavar="NAME",
        help=f"run only these (repeatable); default all: {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--repeats", type=int, default=None, help="repeats per scenario (3)")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, 1 repeat: checks that it all works"
    )
    parser.add_argument("--json-out", type=Path, help="also write the JSON lines to this file")
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the service logs (printed path)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample every api/shim/consumer process with py-spy into DIR (needs py-spy)",
    )
    parser.add_argument(
        "--profile-format", choices=FORMATS, default="speedscope", help="py-spy output format"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s bench %(message)s", stream=sys.stderr
    )
    for noisy in ("aio_pika", "aiormq", "favorited"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    repeats = args.repeats if args.repeats is not None else (1 if args.smoke else 3)
    if repeats < 1:
        print("--repeats must be at least 1", file=sys.stderr)
        return 2
    names = args.scenario or list(SCENARIOS)
    sizes = Sizes.smoke() if args.smoke else Sizes.full()
    profiler = Profiler(args.profile, args.profile_format) if args.profile else None
    records = asyncio.run(
        _run(names, sizes, repeats, smoke=args.smoke, keep=args.keep_logs, profiler=profiler)
    )
    print(report.table(records))
    print()
    print(report.targets(records))
    lines = [report.json_line(r) for r in records]
    for line in lines:
        print(line)
    if args.json_out is not None:
        args.json_out.write_text("".join(f"{line}\n" for line in lines))
    return 0


async def _run(
    names: list[str],
    sizes: Sizes,
    repeats: int,
    *,
    smoke: bool,
    keep: bool,
    profiler: Profiler | None,
) -> list[dict[str, Any]]:
    ctx = RunContext.new()
    log.info("run %s: database %s, logs in %s", ctx.run_id, ctx.database, ctx.workdir)
    started = time.monotonic()
    records: list[dict[str, Any]] = []
    await infra.create_database(ctx)
    services = Services(ctx, profiler)
    try:
        await services.hold_jobs_lock()
        pool = await asyncpg.create_pool(ctx.dsn, min_size=1, max_size=4)
        assert pool is not None
        try:
            env = Env(
                ctx, services, sizes, pool, ctx.queue("yardstick-amqp"), CpuLedger(services.named)
            )
            await services.emulator()
            for name in names:
                scenario = SCENARIOS[name](env)
                records.append(await _scenario(scenario, repeats, smoke=smoke))
        finally:
            await pool.close()
    finally:
        await services.close()
        with contextlib.suppress(Exception):
            await infra.delete_queues(ctx)
        await infra.drop_database(ctx)
        if not keep:
            for path in ctx.workdir.iterdir():
                path.unlink()
            ctx.workdir.rmdir()
    log.info("run %s finished in %.0f s", ctx.run_id, time.monotonic() - started)
    return records


async def _scenario(scenario: Scenario, repeats: int, *, smoke: bool) -> dict[str, Any]:
    name = scenario.spec.name
    began = time.monotonic()
    measurements: list[Measurement] = []
    try:
        log.info("%s: setting up", name)
        await scenario.setup()
        log.info("%s: warm-up", name)
        await scenario.once(warmup=True)
        for repeat in range(repeats):
            yardstick = await scenario.yardstick()
            measurement = await scenario.once(warmup=False)
            measurement.yardstick = yardstick
            measurements.append(measurement)
            log.info(
                "%s: repeat %d: %.2f %s (p99 %.1f ms), %s %.1f %s, ratio %.3f",
                name,
                repeat + 1,
                measurement.value,
                scenario.spec.unit,
                measurement.p99_ms,
                yardstick.name,
                yardstick.value,
                yardstick.unit,
                measurement.ratio,
            )
    finally:
        await scenario.close()
    record = as_json(scenario.spec, measurements, smoke=smoke)
    record["seconds"] = round(time.monotonic() - began, 1)
    record["service_version"] = _service_version()
    return record


def _service_version() -> str:
    """The commit the measured service code is at, `+dirty` if favorited/ or migrations/ differ.

    The service changes under a benchmark that runs for half an hour; the record says which
    code it measured (as of the end of the scenario).
    """
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "favorited", "migrations"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{commit or 'unknown'}{'+dirty' if dirty else ''}"
