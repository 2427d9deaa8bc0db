"""Composition root of `favorited webhooks`, the HTTP shim."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import web

from favorited.app.signals import wait_for_termination
from favorited.broker.publisher import QueueStats, WebhookPublisher
from favorited.broker.topology import Topology
from favorited.config import Settings
from favorited.metrics import Metrics
from favorited.store.dead_letters import PgDeadLetterStore
from favorited.store.pool import create_pool
from favorited.webhooks.app import create_app
from favorited.webhooks.health import Probe, ShimHealth
from favorited.webhooks.verify import WebhookVerifier

log = logging.getLogger(__name__)


@dataclass
class WebhooksApp:
    runner: web.AppRunner
    port: int
    publisher: WebhookPublisher
    pool: asyncpg.Pool | None

    @classmethod
    async def start(cls, settings: Settings, *, metrics: Metrics | None = None) -> WebhooksApp:
        settings.require("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
        assert settings.livekit_api_key and settings.livekit_api_secret
        metrics = metrics or Metrics()
        topology = Topology(settings.webhook_queue, settings.webhook_max_deliveries)
        publisher = WebhookPublisher(
            settings.amqp_url, topology, timeout_s=settings.webhook_publish_timeout_s
        )
        await publisher.start()
        stats = QueueStats(publisher)

        async def broker_probe() -> dict[str, Any]:
            return {"queue": await stats.read()}

        probes: dict[str, Probe] = {"broker": broker_probe}
        pool = None
        if settings.database_url is not None:
            # Optional: the shim accepts webhooks without PostgreSQL; it only reports on it.
            pool = await create_pool(settings.database_url, settings)
            dead_letters = PgDeadLetterStore(pool)

            async def database_probe() -> dict[str, Any]:
                return {"dead_letters": await dead_letters.count_pending()}

            probes["database"] = database_probe
        app = create_app(
            verifier=WebhookVerifier(settings.livekit_api_key, settings.livekit_api_secret),
            publisher=publisher,
            health=ShimHealth(probes),
            metrics=metrics,
        )
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=settings.shutdown_grace_s)
        await runner.setup()
        site = web.TCPSite(runner, settings.http_host, settings.http_port)
        await site.start()
        port: int = runner.addresses[0][1]
        log.info("webhook shim listening", extra={"port": port})
        return cls(runner, port, publisher, pool)

    async def stop(self) -> None:
        # Stop accepting, let in-flight requests finish their publish, then close the broker.
        await self.runner.cleanup()
        await self.publisher.close()
        if self.pool is not None:
            await self.pool.close()
        log.info("webhook shim stopped")


async def run_webhooks(settings: Settings) -> None:
    app = await WebhooksApp.start(settings)
    try:
        await wait_for_termination()
    finally:
        await app.stop()
