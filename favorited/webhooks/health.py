"""The shim's /health: broker, queue depths and (when configured) the database's dead letters.

Every probe runs concurrently under its own short timeout, so /health answers within a second
even when a dependency hangs instead of failing fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

PROBE_TIMEOUT_S = 0.6

Probe = Callable[[], Awaitable[dict[str, Any]]]


class ShimHealth:
    def __init__(self, probes: dict[str, Probe]) -> None:
        self._probes = probes

    async def report(self) -> dict[str, Any]:
        names = list(self._probes)
        results = await asyncio.gather(*(self._run(self._probes[n]) for n in names))
        report: dict[str, Any] = dict(zip(names, results, strict=True))
        healthy = all(r.get("ok") for r in results)
        report["status"] = "ok" if healthy else "degraded"
        return report

    @staticmethod
    async def _run(probe: Probe) -> dict[str, Any]:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                return {"ok": True, **await probe()}
        except TimeoutError:
            return {"ok": False, "error": "timed out"}
        except Exception as exc:  # noqa: BLE001 - a failing probe is a degraded dependency
            return {"ok": False, "error": type(exc).__name__}
