"""What a scenario measures once, and how repeats are summarised and judged.

A scenario returns one `Measurement` per repeat; the runner attaches the yardstick measured just
before that repeat, takes medians across repeats and asks the scenario's `Spec` whether the
target is met. Judging uses the medians, never the best repeat.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.stats import median

Number = float | int
Details = dict[str, Number]


@dataclass(frozen=True, slots=True)
class Yardstick:
    """A raw-infrastructure rate measured in the same run (see bench/yardsticks.py)."""

    name: str
    unit: str
    value: float
    p50_ms: float = math.nan
    p99_ms: float = math.nan


@dataclass(slots=True)
class Measurement:
    """One repeat of a scenario."""

    value: float
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    details: Details = field(default_factory=dict)
    yardstick: Yardstick | None = None
    # The ratio is value / yardstick, unless the value is not a rate (a duration): then this
    # rate is compared instead.
    ratio_basis: float | None = None

    @property
    def ratio(self) -> float:
        if self.yardstick is None or not self.yardstick.value:
            return math.nan
        basis = self.value if self.ratio_basis is None else self.ratio_basis
        return basis / self.yardstick.value


@dataclass(frozen=True, slots=True)
class Summary:
    """Medians across repeats; what the table shows and the targets are judged on."""

    value: float
    p50_ms: float
    p99_ms: float
    yardstick: float
    ratio: float
    details: dict[str, float]

    def get(self, key: str) -> float:
        return self.details.get(key, math.nan)


def summarise(measurements: list[Measurement]) -> Summary:
    keys = sorted({k for m in measurements for k in m.details})
    return Summary(
        value=median([m.value for m in measurements]),
        p50_ms=median([m.p50_ms for m in measurements]),
        p99_ms=median([m.p99_ms for m in measurements]),
        yardstick=median([m.yardstick.value for m in measurements if m.yardstick is not None]),
        ratio=median([m.ratio for m in measurements]),
        details={
            k: median([float(m.details[k]) for m in measurements if k in m.details]) for k in keys
        },
    )


Check = Callable[[Summary], bool]


@dataclass(frozen=True, slots=True)
class Spec:
    """A scenario's identity, its yardstick and its target (a set of named checks)."""

    name: str
    what: str  # the primary value, e.g. "accepted webhooks/s"
    unit: str
    yardstick: str  # a key of bench.yardsticks.YARDSTICKS
    target: str  # the target as written in the issue
    checks: Mapping[str, Check]

    def judge(self, summary: Summary) -> dict[str, bool]:
        return {name: bool(check(summary)) for name, check in self.checks.items()}


def as_json(spec: Spec, measurements: list[Measurement], *, smoke: bool) -> dict[str, Any]:
    """The machine-readable record of one scenario (one JSON line)."""
    summary = summarise(measurements)
    checks = spec.judge(summary)
    yardstick = next((m.yardstick for m in measurements if m.yardstick is not None), None)
    return {
        "scenario": spec.name,
        "metric": spec.what,
        "unit": spec.unit,
        "value": _clean(summary.value),
        "p50_ms": _clean(summary.p50_ms),
        "p99_ms": _clean(summary.p99_ms),
        "yardstick": {
            "name": spec.yardstick,
            "unit": yardstick.unit if yardstick is not None else "",
            "value": _clean(summary.yardstick),
        },
        "ratio": _clean(summary.ratio),
        "target": spec.target,
        "checks": checks,
        "met": all(checks.values()),
        "details": {k: _clean(v) for k, v in summary.details.items()},
        "repeats": [
            {
                "value": _clean(m.value),
                "p50_ms": _clean(m.p50_ms),
                "p99_ms": _clean(m.p99_ms),
                "yardstick": _clean(m.yardstick.value) if m.yardstick is not None else None,
                "ratio": _clean(m.ratio),
                "details": {k: _clean(float(v)) for k, v in m.details.items()},
            }
            for m in measurements
        ],
        "smoke": smoke,
    }


def _clean(value: float) -> float | None:
    """JSON has no NaN: a value that could not be measured is null."""
    if math.isnan(value) or math.isinf(value):
        return None
    return round(value, 4)
