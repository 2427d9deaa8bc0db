"""Ending a livestream of 100,000 JOINED participants: by DeleteLivestream, and by a
room_finished webhook applied by the consumer. Both must be one statement, under 2 s."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import ClassVar

import aiohttp
import grpc

from bench.fixtures import Stream, bind_sids, joined_participants
from bench.livekit_webhooks import Signer, room_event
from bench.procs import Child
from bench.results import Measurement, Spec, Yardstick
from bench.scenario import Env, Scenario
from bench.yardsticks import PG_COMMIT, channel_options
from favorited.store.livestreams import _END  # the service's own end statement, timed as is
from favorited_api.v1 import livestream_pb2
from favorited_api.v1 import livestream_service_pb2 as lpb
from favorited_api.v1 import livestream_service_pb2_grpc as ls_grpc

log = logging.getLogger("bench")

HOST_USER = "bench-end-host"
POLL_S = 0.005
WEBHOOK_BOUND_S = 30.0  # 15x the target: an end slower than this has failed
# Every row version written by one statement carries that statement's transaction id (xmin)
# and command id (cmin): one distinct pair over all the participants is one statement.
_STATEMENTS = """
SELECT count(*) FILTER (WHERE status = 'JOINED') AS joined,
       count(DISTINCT (xmin::text, cmin::text)) AS commands
FROM participants WHERE livestream_id = $1
"""


class End100k(Scenario):
    spec: ClassVar[Spec] = Spec(
        name="end_100k",
        what="seconds to end a livestream of 100,000 JOINED (DeleteLivestream RPC)",
        unit="s",
        yardstick=PG_COMMIT,
        target="< 2 s, one statement (RPC and room_finished webhook)",
        checks={
            "rpc<2s": lambda s: s.value < 2 and s.get("rpc_failed") == 0,
            "webhook<2s": lambda s: s.get("webhook_end_s") < 2 and s.get("webhook_failed") == 0,
            "one statement": lambda s: (
                s.get("rpc_commands") == 1 and s.get("webhook_commands") == 1
            ),
            "all left": lambda s: s.get("joined_after") == 0,
        },
    )

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.round = 0
        self.children: list[Child] = []
        self.signer = Signer(env.ctx.livekit_key, env.ctx.livekit_secret)
        self.host_md = env.ctx.authorization(HOST_USER)

    async def setup(self) -> None:
        target, _ = await self.env.services.api()
        self.channel = grpc.aio.insecure_channel(target, options=channel_options())
        self.stub = ls_grpc.LivestreamServiceStub(self.channel)
        queue = self.env.ctx.queue("end")
        self.shim_url, shim = await self.env.services.start_shim("shim-end", queue)
        self.children.append(shim)
        self.children.append(await self.env.services.start_consumer("consumer-end", queue))

    async def yardstick(self) -> Yardstick:
        return await self.env.pg_commit()

    async def close(self) -> None:
        await self.channel.close()
        for child in self.children:
            await self.env.services.stop(child)

    async def _livestream(self, size: int) -> Stream:
        """A LIVE livestream created through the API (its room exists), filled with SQL."""
        self.round += 1
        reply = await self.stub.CreateLivestream(
            lpb.CreateLivestreamRequest(
                livestream=livestream_pb2.Livestream(
                    room_name=f"end-{self.env.ctx.run_id}-{self.round}",
                    title="Bench end",
                    max_participants=10_000,
                )
            ),
            metadata=self.host_md,
            timeout=30,
        )
        stream = Stream(
            reply.livestream.id, reply.livestream.room_name, reply.livestream.livekit_room_sid
        )
        async with self.env.db.acquire() as conn:
            # Joined first, connected by their webhooks after, as in production: the end's
            # update then meets pages that already hold the sid updates' row versions.
            await joined_participants(
                conn, stream, size, user_prefix=f"e{self.round}-", connected=False
            )
            await bind_sids(conn, stream, size, user_prefix=f"e{self.round}-")
            # As autovacuum would have by then: the planner knows the table's size.
            await conn.execute("ANALYZE participants")
        return stream

    async def once(self, *, warmup: bool) -> Measurement:
        size = self.sizes.end_participants // (100 if warmup else 1)
        by_rpc = await self._livestream(size)
        by_webhook = await self._livestream(size)

        started = time.perf_counter()
        rpc_failed, sql_s = 0, math.nan
        try:
            await self.stub.DeleteLivestream(
                lpb.DeleteLivestreamRequest(livestream_id=by_rpc.id),
                metadata=self.host_md,
                timeout=60,
            )
        except grpc.aio.AioRpcError as exc:
            # A failed end is a result, not a crash of the suite: record it, and time the
            # statement itself without the service's statement timeout, to say how far off it is.
            log.warning("end_100k: DeleteLivestream failed: %s %s", exc.code().name, exc.details())
            rpc_failed = 1
            sql_s = await self._end_untimed(by_rpc.id, commit=False)
        rpc_s = time.perf_counter() - started if not rpc_failed else math.nan

        hook = self.signer.sign(
            room_event("room_finished", by_webhook, event_id=f"EV_end_{self.round}")
        )
        async with aiohttp.ClientSession() as http:
            started = time.perf_counter()
            async with http.post(self.shim_url, data=hook.body, headers=hook.headers) as response:
                assert response.status == 200, response.status
            webhook_s = await self._until_ended(by_webhook.id, started)

        rpc_check = await self.env.db.fetchrow(_STATEMENTS, by_rpc.id)
        hook_check = await self.env.db.fetchrow(_STATEMENTS, by_webhook.id)
        assert rpc_check is not None and hook_check is not None
        # Whatever the service could not end is ended here (no statement timeout), so that the
        # next repeat starts from the same state and a consumer retrying the room_finished
        # message finds nothing left to do.
        for stream, failed in ((by_rpc, rpc_failed), (by_webhook, math.isnan(webhook_s))):
            if failed:
                await self._end_untimed(stream.id, commit=True)
        return Measurement(
            value=rpc_s,
            # Rows ended per second, against single-row commits per second: how much the one
            # statement beats ending participants one transaction at a time.
            ratio_basis=size / rpc_s if not rpc_failed else math.nan,
            details={
                "participants": size,
                "rpc_failed": rpc_failed,
                "sql_end_s_untimed": sql_s,
                "webhook_end_s": webhook_s,
                "webhook_failed": int(math.isnan(webhook_s)),
                "rpc_commands": rpc_check["commands"],
                "webhook_commands": hook_check["commands"],
                "joined_after": rpc_check["joined"] + hook_check["joined"],
            },
        )

    async def _end_untimed(self, livestream_id: str, *, commit: bool) -> float:
        """Seconds the service's own end statement takes with no statement timeout."""
        async with self.env.db.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                await conn.execute("SET LOCAL statement_timeout = 0")
                started = time.perf_counter()
                await conn.execute(_END, livestream_id)
                return time.perf_counter() - started
            finally:
                await (transaction.commit() if commit else transaction.rollback())

    async def _until_ended(self, livestream_id: str, started: float) -> float:
        """Seconds from the POST until the ENDED row is visible (polled every 5 ms, bounded)."""
        deadline = started + min(self.sizes.deadline_s, WEBHOOK_BOUND_S)
        while time.perf_counter() < deadline:
            status = await self.env.db.fetchval(
                "SELECT status::text FROM livestreams WHERE id = $1", livestream_id
            )
            if status == "ENDED":
                return time.perf_counter() - started
            await asyncio.sleep(POLL_S)
        return math.nan
