"""Composition root: builds every component from Settings and owns start/stop order.

Start: pool → LiveKit client → use cases → gRPC server → health probe.
Stop:  health NOT_SERVING → server.stop(grace) drains in-flight RPCs → probe → LiveKit → pool.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import grpc
from aiohttp import web
from grpc_health.v1 import health

from favorited.api.auth import Authenticator
from favorited.api.livestreams import LivestreamServicer
from favorited.api.participants import ParticipantServicer
from favorited.api.server import build_server, probe_health
from favorited.api.watch import StreamLimiter, Watcher, encode_change
from favorited.api.write_slots import WriteSlots
from favorited.app.livekit import LiveKitClients, open_livekit
from favorited.app.signals import wait_for_termination
from favorited.config import Settings
from favorited.domain.livestreams import LivestreamService
from favorited.domain.pagination import PageTokens
from favorited.domain.participants import ParticipantService
from favorited.livekit.tokens import LiveKitTokenMinter
from favorited.metrics import Metrics, serve_metrics
from favorited.store.database import PgDatabase
from favorited.store.events import PgEventLog
from favorited.store.pool import create_pool
from favorited.streams.livestreams import LivestreamHub
from favorited.streams.notifier import LIVESTREAM_CHANGES, PARTICIPANT_EVENTS, PgNotifier
from favorited.streams.participants import ParticipantHub
from favorited.tasks import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass
class ApiApp:
    """A running API server and everything it owns."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    pool: asyncpg.Pool
    livekit: LiveKitClients
    probe: asyncio.Task[None]
    grace_s: float
    notifier: PgNotifier
    participant_hub: ParticipantHub
    livestream_hub: LivestreamHub
    metrics_runner: web.AppRunner | None

    @classmethod
    async def start(cls, settings: Settings, *, metrics: Metrics | None = None) -> ApiApp:
        settings.require(
            "DATABASE_URL",
            "LIVEKIT_URL",
            "LIVEKIT_API_KEY",
            "LIVEKIT_API_SECRET",
            "FAVORITED_JWT_SECRET",
        )
        assert settings.database_url and settings.livekit_url and settings.jwt_secret
        assert settings.livekit_api_key and settings.livekit_api_secret
        pool = await create_pool(settings.database_url, settings)
        livekit = open_livekit(settings)
        db = PgDatabase(pool, acquire_timeout_s=settings.db_timeout_s)
        rooms = livekit.gateway()
        page_tokens = PageTokens(hashlib.sha256(settings.jwt_secret.encode()).digest())
        tokens = LiveKitTokenMinter(
            api_key=settings.livekit_api_key,
            api_secret=settings.livekit_api_secret,
            client_url=settings.livekit_client_url or settings.livekit_url,
            ttl=timedelta(hours=settings.token_expiration_hours),
        )
        event_log = PgEventLog(pool, timeout_s=settings.db_timeout_s)
        participant_hub = ParticipantHub(
            event_log,
            ring_size=settings.watch_buffer_events,
            stall_s=settings.watch_stall_s,
            encode=encode_change,
            # Heartbeats go out after WATCH_HEARTBEAT_SECONDS of silence, a quarter later at most.
            tick_s=settings.watch_heartbeat_s / 4,
        )
        livestream_hub = LivestreamHub(event_log)
        notifier = PgNotifier(
            settings.database_url,
            on_notify=_dispatch(participant_hub, livestream_hub),
            on_reconnect=_wake_all(participant_hub, livestream_hub),
        )
        await notifier.start()
        writes = WriteSlots(settings.watch_write_slots)
        watcher = Watcher(
            log=event_log,
            participants=participant_hub,
            livestreams=livestream_hub,
            limiter=StreamLimiter(settings.watch_max_streams_per_caller),
            heartbeat_s=settings.watch_heartbeat_s,
            coalesce_s=settings.watch_coalesce_s,
            writes=writes,
        )
        metrics = metrics or Metrics()
        metrics.watch_write_slots.labels("in_use").set_function(writes.in_use)
        metrics.watch_write_slots.labels("waiting").set_function(writes.waiting)
        health_servicer = health.aio.HealthServicer()
        server = build_server(
            livestreams=LivestreamServicer(
                LivestreamService(db=db, rooms=rooms, page_tokens=page_tokens), watcher
            ),
            participants=ParticipantServicer(
                ParticipantService(db=db, rooms=rooms, tokens=tokens, page_tokens=page_tokens),
                watcher,
            ),
            health_servicer=health_servicer,
            authenticator=Authenticator(settings.jwt_secret),
            metrics=metrics,
            max_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
        )
        metrics_runner = (
            await serve_metrics(metrics, settings.grpc_host, settings.metrics_port)
            if settings.metrics_port
            else None
        )
        port = server.add_insecure_port(f"{settings.grpc_host}:{settings.grpc_port}")
        await server.start()
        probe = asyncio.create_task(
            probe_health(health_servicer, db.ping, interval_s=settings.health_probe_interval_s),
            name="health-probe",
        )
        log.info("gRPC API listening", extra={"port": port})
        return cls(
            server,
            port,
            health_servicer,
            pool,
            livekit,
            probe,
            settings.shutdown_grace_s,
            notifier,
            participant_hub,
            livestream_hub,
            metrics_runner,
        )

    async def stop(self) -> None:
        # Tell load balancers first, then drain: new calls are refused, in-flight ones finish.
        await self.health.enter_graceful_shutdown()
        # Watch streams never finish by themselves: end them (UNAVAILABLE, so clients resume
        # elsewhere) before draining the unary calls.
        await self.participant_hub.close()
        await self.livestream_hub.close()
        await self.server.stop(self.grace_s)
        await self.notifier.close()
        if self.metrics_runner is not None:
            await self.metrics_runner.cleanup()
        await cancel_and_wait(self.probe)
        await self.livekit.aclose()
        await self.pool.close()
        log.info("gRPC API stopped")


def _dispatch(
    participants: ParticipantHub, livestreams: LivestreamHub
) -> Callable[[str, str], None]:
    def on_notify(channel: str, livestream_id: str) -> None:
        if channel == PARTICIPANT_EVENTS:
            participants.on_participant_events(livestream_id)
        elif channel == LIVESTREAM_CHANGES:
            participants.on_livestream_change(livestream_id)
            livestreams.on_livestream_change(livestream_id)

    return on_notify


def _wake_all(participants: ParticipantHub, livestreams: LivestreamHub) -> Callable[[], None]:
    def wake() -> None:
        participants.wake_all()
        livestreams.wake_all()

    return wake


async def run_api(settings: Settings) -> None:
    app = await ApiApp.start(settings)
    try:
        await wait_for_termination()
    finally:
        await app.stop()
