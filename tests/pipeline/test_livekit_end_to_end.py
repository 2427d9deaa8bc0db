"""The whole loop with the emulator sending real signed webhooks over HTTP: a participant joins
through the API, "connects" to LiveKit with the token, and the service learns of it; the room is
deleted and the service learns that too. Also the reconciler healing what webhooks never said."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable

import asyncpg
import grpc
import pytest
from livekit import api

from favorited.app import ApiApp, ConsumerApp, WebhooksApp
from favorited.config import Settings
from favorited.domain.reconciliation import Reconciler
from favorited.livekit.gateway import LiveKitRoomGateway
from favorited.livekit_emulator import LiveKitEmulator, WebhookFaults, WebhookOptions
from favorited.metrics import Metrics
from favorited.store.database import PgDatabase
from favorited.store.pool import create_pool
from favorited_api.v1 import livestream_pb2
from favorited_api.v1 import livestream_service_pb2 as lpb
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc
from favorited_api.v1 import participant_service_pb2_grpc as ps_grpc
from tests.api.helpers import create, join
from tests.conftest import LIVEKIT_KEY, LIVEKIT_SECRET, Metadata
from tests.pipeline.conftest import WEBHOOK_PATH, eventually

Auth = Callable[..., Metadata]


@dataclasses.dataclass
class World:
    emulator: LiveKitEmulator
    livestreams: ls_grpc.LivestreamServiceAsyncStub
    participants: ps_grpc.ParticipantServiceAsyncStub
    settings: Settings


@pytest.fixture
async def world(
    pipeline_settings: Settings, shim: WebhooksApp, clean: None
) -> AsyncIterator[World]:
    """A LiveKit emulator of its own that posts its webhooks to the shim, and an API using it."""
    emulator = LiveKitEmulator(
        LIVEKIT_KEY,
        LIVEKIT_SECRET,
        webhook_urls=[f"http://127.0.0.1:{shim.port}{WEBHOOK_PATH}"],
        webhook_options=WebhookOptions(backoff_base_s=0.01),
    )
    async with emulator:
        settings = dataclasses.replace(pipeline_settings, livekit_url=emulator.url)
        api_app = await ApiApp.start(settings)
        consumer = await ConsumerApp.start(settings, metrics=Metrics(), run_jobs=False)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{api_app.port}") as channel:
                yield World(
                    emulator,
                    ls_grpc.LivestreamServiceStub(channel),
                    ps_grpc.ParticipantServiceStub(channel),
                    settings,
                )
        finally:
            await consumer.stop()
            await api_app.stop()


async def test_a_connection_and_the_room_end_reach_the_database(
    world: World, auth: Auth, db: asyncpg.Pool, room_name: str
) -> None:
    ls = await create(world.livestreams, auth("alice"), room_name)
    viewer = await join(world.participants, auth("bob"), ls.id)
    info = world.emulator.connect(viewer.token)
    await eventually(
        db,
        "SELECT connected FROM participants WHERE user_id = 'bob' AND livekit_participant_sid = $1",
        True,
        info.sid,
    )
    assert await db.fetchval("SELECT viewer_count FROM livestreams WHERE id = $1", ls.id) == 1

    world.emulator.disconnect(room_name, "bob")
    await eventually(db, "SELECT status::text FROM participants WHERE user_id = 'bob'", "LEFT")

    async with api.LiveKitAPI(world.emulator.url, LIVEKIT_KEY, LIVEKIT_SECRET) as lk:
        await lk.room.delete_room(api.DeleteRoomRequest(room=room_name))
    await eventually(db, "SELECT status::text FROM livestreams WHERE id = $1", "ENDED", ls.id)


async def test_duplicated_and_reordered_deliveries_still_converge(
    world: World, auth: Auth, db: asyncpg.Pool, room_name: str
) -> None:
    from favorited.livekit_emulator import Reorder

    world.emulator.webhooks.faults = WebhookFaults(
        duplicate=1.0, reorder=frozenset({Reorder.OLD_SID_LEFT_AFTER_NEW_JOINED})
    )
    ls = await create(world.livestreams, auth("alice"), room_name)
    viewer = await join(world.participants, auth("bob"), ls.id)
    world.emulator.connect(viewer.token)
    second = world.emulator.connect(viewer.token)  # a full reconnect: new sid, same identity
    await world.emulator.webhooks.wait_idle()
    await eventually(
        db,
        "SELECT count(*) FROM participants WHERE user_id = 'bob' AND status = 'JOINED'"
        " AND connected AND livekit_participant_sid = $1",
        1,
        second.sid,
    )
    await eventually(db, "SELECT count(*) FROM webhook_inbox WHERE outcome = 'pending'", 0)
    assert await db.fetchval("SELECT viewer_count FROM livestreams WHERE id = $1", ls.id) == 1


async def test_reconciliation_heals_dropped_webhooks(
    world: World, auth: Auth, db: asyncpg.Pool, room_name: str
) -> None:
    world.emulator.webhooks.faults = WebhookFaults(drop=1.0)
    gone = await create(world.livestreams, auth("alice"), room_name)
    kept = await create(world.livestreams, auth("alice"), room_name + "-kept")
    ghost = await join(world.participants, auth("ghost"), kept.id)  # never connects
    present = await join(world.participants, auth("present"), kept.id)
    world.emulator.connect(present.token)
    async with api.LiveKitAPI(world.emulator.url, LIVEKIT_KEY, LIVEKIT_SECRET) as lk:
        await lk.room.delete_room(api.DeleteRoomRequest(room=room_name))

    assert world.settings.database_url is not None
    pool = await create_pool(world.settings.database_url, world.settings)
    try:
        async with api.LiveKitAPI(world.emulator.url, LIVEKIT_KEY, LIVEKIT_SECRET) as lk:
            reconciler = Reconciler(
                db=PgDatabase(pool, acquire_timeout_s=5),
                rooms=LiveKitRoomGateway(lk, timeout_s=2),
                grace_s=0,
            )
            report = await reconciler.run_once()
    finally:
        await pool.close()
    assert (report.livestreams_ended, report.participants_left) == (1, 1)
    got = await world.livestreams.GetLivestream(
        lpb.GetLivestreamRequest(livestream_id=gone.id), metadata=auth("alice")
    )
    assert got.livestream.status == livestream_pb2.LIVESTREAM_STATUS_ENDED
    rows = await db.fetch(
        "SELECT user_id, status::text FROM participants WHERE livestream_id = $1", kept.id
    )
    statuses = {r["user_id"]: r["status"] for r in rows}
    assert statuses == {"ghost": "LEFT", "present": "JOINED"}
    assert ghost.participant.id
