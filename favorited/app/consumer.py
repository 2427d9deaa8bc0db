"""Composition root of `favorited consumer`: queue workers, dead-letter recorder, periodic jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import aio_pika
import asyncpg
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from aiohttp import web

from favorited.app.livekit import LiveKitClients, open_livekit
from favorited.app.signals import wait_for_termination
from favorited.broker.topology import Topology
from favorited.config import Settings
from favorited.consumer.acks import Settlements
from favorited.consumer.batching import BatchApplier
from favorited.consumer.dead_letters import DeadLetterRecorder
from favorited.consumer.jobs import JobRunner
from favorited.consumer.worker import MessageHandler
from favorited.domain.livekit_events import LiveKitEventService
from favorited.domain.reconciliation import Reconciler
from favorited.metrics import Metrics, serve_metrics
from favorited.store.database import PgDatabase
from favorited.store.dead_letters import PgDeadLetterStore
from favorited.store.pool import create_pool

log = logging.getLogger(__name__)

# Dead letters are rare and each is one insert: a few at a time is plenty.
DLQ_PREFETCH = 16


@dataclass
class ConsumerApp:
    connection: AbstractRobustConnection
    consumers: list[tuple[AbstractQueue, str]]
    handler: MessageHandler
    settlements: Settlements
    applier: BatchApplier
    jobs: JobRunner
    jobs_task: asyncio.Task[None]
    stopping: asyncio.Event
    pool: asyncpg.Pool
    livekit: LiveKitClients
    grace_s: float
    metrics: Metrics
    metrics_runner: web.AppRunner | None

    @classmethod
    async def start(
        cls, settings: Settings, *, metrics: Metrics | None = None, run_jobs: bool = True
    ) -> ConsumerApp:
        settings.require("DATABASE_URL")
        assert settings.database_url is not None
        metrics = metrics or Metrics()
        stopping = asyncio.Event()
        pool = await create_pool(settings.database_url, settings)
        db = PgDatabase(pool, acquire_timeout_s=settings.db_timeout_s)
        livekit = open_livekit(settings)
        rooms = livekit.gateway()
        applier = BatchApplier(
            LiveKitEventService(db=db, inbox_retention_s=settings.inbox_retention_hours * 3600),
            lanes=settings.webhook_apply_lanes,
            transactions=settings.webhook_queue_concurrency,
            batch_size=settings.webhook_batch_size,
            overlap_after_s=settings.webhook_apply_overlap_ms / 1000,
        )
        applier.start()
        metrics.webhook_events_waiting.set_function(applier.waiting)
        # Prefetch bounds the messages held: enough to fill every lane's batch.
        prefetch = settings.webhook_apply_lanes * settings.webhook_batch_size
        settlements = Settlements(
            on_error=lambda exc: log.warning("ack failed; the broker redelivers", exc_info=exc),
            # Behind an older message still being applied, at most half the window waits for
            # the multiple ack; beyond that they are acked one by one (acks.py).
            held_back_max=max(1, prefetch // 2),
        )
        handler = MessageHandler(
            applier=applier, settlements=settlements, metrics=metrics, stopping=stopping
        )
        recorder = DeadLetterRecorder(
            store=PgDeadLetterStore(pool),
            metrics=metrics,
            stopping=stopping,
            max_deliveries=settings.webhook_max_deliveries,
        )
        topology = Topology(settings.webhook_queue, settings.webhook_max_deliveries)
        connection = await aio_pika.connect_robust(settings.amqp_url, timeout=10)
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue, _ = await topology.declare(channel)
        # The dead-letter queue has a channel of its own: the main channel's acks are `multiple`
        # (favorited/consumer/acks.py) and would otherwise cover its deliveries too.
        dlq_channel = await connection.channel()
        await dlq_channel.set_qos(prefetch_count=DLQ_PREFETCH)
        dlq = await dlq_channel.get_queue(topology.dead_letter_queue)  # declared just above
        consumers = [
            (queue, await queue.consume(handler, no_ack=False)),
            (dlq, await dlq.consume(recorder, no_ack=False)),
        ]
        jobs = JobRunner(
            dsn=settings.database_url,
            reconciler=Reconciler(db=db, rooms=rooms, grace_s=settings.reconciliation_grace_s),
            reconcile_interval_s=settings.reconciliation_interval_minutes * 60.0,
            event_retention_s=settings.event_retention_hours * 3600,
            stopping=stopping,
        )
        # Kept and awaited in stop(); with run_jobs=False (tests) it just waits for the stop.
        jobs_task = asyncio.create_task(
            jobs.run() if run_jobs else _until(stopping), name="periodic-jobs"
        )
        metrics_runner = (
            await serve_metrics(metrics, settings.http_host, settings.metrics_port)
            if settings.metrics_port
            else None
        )
        log.info("consumer started", extra={"queue": topology.queue})
        return cls(
            connection,
            consumers,
            handler,
            settlements,
            applier,
            jobs,
            jobs_task,
            stopping,
            pool,
            livekit,
            settings.shutdown_grace_s,
            metrics,
            metrics_runner,
        )

    async def stop(self) -> None:
        self.stopping.set()
        for queue, tag in self.consumers:
            with contextlib.suppress(aio_pika.exceptions.AMQPError, ConnectionError):
                await queue.cancel(tag)
        # Drain: messages being applied finish and are acked; unstarted prefetched ones are
        # returned to the queue when the channel closes.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.grace_s):
                await self.handler.idle.wait()
        await self.settlements.drain()
        await self.jobs_task
        await self.applier.stop()
        await self.connection.close()
        await self.livekit.aclose()
        await self.pool.close()
        if self.metrics_runner is not None:
            await self.metrics_runner.cleanup()
        log.info("consumer stopped")


async def _until(event: asyncio.Event) -> None:
    await event.wait()


async def run_consumer(settings: Settings) -> None:
    app = await ConsumerApp.start(settings)
    try:
        await wait_for_termination()
    finally:
        await app.stop()
