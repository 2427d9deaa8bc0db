"""Percentiles and medians: the only statistics the suite reports."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; NaN for no values.

    Nearest rank, not interpolation: a p99 is then a latency some request really had.
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_ms(seconds: Sequence[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds of latencies given in seconds."""
    return percentile(seconds, 50) * 1000, percentile(seconds, 99) * 1000


def median(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.median(finite) if finite else math.nan
