"""Prometheus instruments, on a registry each process creates and passes down (no globals)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.rpcs = Counter(
            "favorited_rpcs", "gRPC calls by method and status code", ["method", "code"], registry=r
        )
        self.rpc_seconds = Histogram(
            "favorited_rpc_seconds",
            "gRPC call latency",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.webhooks = Counter(
            "favorited_webhooks",
            "Webhooks received by the shim, by outcome (accepted, unauthorized, malformed, "
            "too_large, unavailable)",
            ["outcome"],
            registry=r,
        )
        self.webhook_publish_seconds = Histogram(
            "favorited_webhook_publish_seconds",
            "Time from request to broker confirm",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.events = Counter(
            "favorited_events",
            "Webhook events handled by the consumer, by event and outcome",
            ["event", "outcome"],
            registry=r,
        )
        self.event_lag_seconds = Histogram(
            "favorited_event_lag_seconds",
            "Queue lag: from LiveKit's created_at to the commit of the event's effects",
            buckets=(*_LATENCY_BUCKETS, 30, 60, 300),
            registry=r,
        )
        self.consumer_retries = Counter(
            "favorited_consumer_retries",
            "Transient failures retried in place (database down, deadlock, serialization)",
            registry=r,
        )
        self.dead_letters = Counter(
            "favorited_dead_letters", "Messages recorded from the dead-letter queue", registry=r
        )
        # Read when scraped, not kept up to date per message: the numbers to tune
        # WATCH_WRITE_SLOTS by (in use near the limit with writers waiting = the fan-out is
        # slot-bound) cost the hot path nothing.
        self.watch_write_slots = Gauge(
            "favorited_watch_write_slots",
            "Watch write slots of this API process: in_use (held, not past their hold) and "
            "waiting (writers waiting for one)",
            ["state"],
            registry=r,
        )

        self.webhook_events_waiting = Gauge(
            "favorited_webhook_events_waiting",
            "Webhook events this consumer holds that are not yet in a transaction (waiting for "
            "their lane or for their turn: WEBHOOK_QUEUE_CONCURRENCY, WEBHOOK_APPLY_OVERLAP_MS); "
            "read when scraped",
            registry=r,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


async def serve_metrics(metrics: Metrics, host: str, port: int) -> web.AppRunner:
    """A /metrics endpoint of its own, for processes without an HTTP server (api, consumer)."""

    async def route(request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", route)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
