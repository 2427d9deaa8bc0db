"""The human table (medians of the repeats) and the JSON lines."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

_COLUMNS = ("scenario", "value", "unit", "p50 ms", "p99 ms", "yardstick", "ratio", "met")


def _num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def table(records: Iterable[dict[str, Any]]) -> str:
    rows = []
    for r in records:
        ys = r["yardstick"]
        rows.append(
            (
                r["scenario"],
                _num(r["value"], 2),
                r["unit"],
                _num(r["p50_ms"]),
                _num(r["p99_ms"]),
                f"{ys['name']} {_num(ys['value'])} {ys['unit']}",
                _num(r["ratio"], 3),
                "met" if r["met"] else "NOT MET",
            )
        )
    widths = [max(len(str(x)) for x in col) for col in zip(_COLUMNS, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(_COLUMNS, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def targets(records: Iterable[dict[str, Any]]) -> str:
    """Each scenario's target and the verdict of each of its checks."""
    lines = []
    for r in records:
        checks = ", ".join(
            f"{name}: {'ok' if ok else 'FAILED'}" for name, ok in r["checks"].items()
        )
        lines.append(f"{r['scenario']}: {r['target']}  [{checks}]")
    return "\n".join(lines)


def json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=False, separators=(",", ":"))
