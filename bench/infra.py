"""Create and remove the run's database and queues."""

from __future__ import annotations

import contextlib
import logging

import aio_pika
import aiormq
import asyncpg

from bench.context import ADMIN_DSN, AMQP_URL, RunContext
from favorited.store.migrate import migrate

log = logging.getLogger(__name__)

SCRATCH_TABLE = "bench_scratch"


async def create_database(ctx: RunContext) -> None:
    admin = await asyncpg.connect(ADMIN_DSN, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{ctx.database}"')
    finally:
        await admin.close()
    await migrate(ctx.dsn)
    conn = await asyncpg.connect(ctx.dsn, timeout=10)
    try:
        # The PostgreSQL yardstick's table: one narrow row per commit, WAL-logged like ours.
        await conn.execute(
            f"CREATE TABLE {SCRATCH_TABLE} (id bigserial PRIMARY KEY, v text NOT NULL)"
        )
    finally:
        await conn.close()


async def drop_database(ctx: RunContext) -> None:
    admin = await asyncpg.connect(ADMIN_DSN, timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{ctx.database}" WITH (FORCE)')
    finally:
        await admin.close()


async def delete_queues(ctx: RunContext) -> None:
    connection = await aio_pika.connect(AMQP_URL, timeout=10)
    async with connection:
        for name in ctx.queues:
            for queue in (name, f"{name}.dlq"):
                # A fresh channel per delete: a failed delete closes its channel.
                with contextlib.suppress(aio_pika.exceptions.AMQPError, aiormq.AMQPError):
                    channel = await connection.channel()
                    await channel.queue_delete(queue)
                    await channel.close()
