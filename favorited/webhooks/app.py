"""The shim's HTTP surface (aiohttp): the LiveKit webhook route, /health and /metrics.

Never rate-limited: LiveKit's deliveries are the system's input, and refusing them only makes
LiveKit retry (and eventually drop) them.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from favorited.broker.publisher import PublishFailedError, WebhookPublisher
from favorited.metrics import Metrics
from favorited.webhooks.health import ShimHealth
from favorited.webhooks.verify import MalformedEventError, SignatureError, WebhookVerifier

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/v1/webhooks/livekit"
MAX_BODY_BYTES = 1024 * 1024


def create_app(
    *,
    verifier: WebhookVerifier,
    publisher: WebhookPublisher,
    health: ShimHealth,
    metrics: Metrics,
) -> web.Application:
    # client_max_size makes aiohttp stop reading at 1 MiB and answer 413, whatever the
    # Content-Length claims.
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    # Bound once: a labelled child costs a locked dict lookup on every request otherwise.
    accepted = metrics.webhooks.labels("accepted")
    unavailable = metrics.webhooks.labels("unavailable")
    publish_seconds = metrics.webhook_publish_seconds

    async def receive(request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            metrics.webhooks.labels("too_large").inc()
            raise
        try:
            verified = verifier.verify(body, request.headers.get("Authorization"))
        except SignatureError as exc:
            metrics.webhooks.labels("unauthorized").inc()
            log.warning("webhook rejected", extra={"why": str(exc)})
            return web.json_response({"error": "invalid signature"}, status=401)
        except MalformedEventError as exc:
            metrics.webhooks.labels("malformed").inc()
            log.warning("webhook rejected", extra={"why": str(exc)})
            return web.json_response({"error": "malformed event"}, status=400)
        try:
            await publisher.publish(verified.body, event_id=verified.event_id, event=verified.event)
        except PublishFailedError as exc:
            unavailable.inc()
            log.warning(
                "webhook not queued; asking LiveKit to retry",
                extra={"event_id": verified.event_id, "why": str(exc)},
            )
            return web.json_response(
                {"error": "queue unavailable"}, status=503, headers={"Retry-After": "1"}
            )
        accepted.inc()
        publish_seconds.observe(time.perf_counter() - started)
        return web.json_response({"id": verified.event_id})

    async def health_route(request: web.Request) -> web.Response:
        report = await health.report()
        return web.json_response(report, status=200 if report["status"] == "ok" else 503)

    async def metrics_route(request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app.router.add_post(WEBHOOK_PATH, receive)
    app.router.add_get("/health", health_route)
    app.router.add_get("/metrics", metrics_route)
    return app
