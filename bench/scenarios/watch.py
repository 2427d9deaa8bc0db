"""WatchParticipants fan-out: many watchers on one API process, joins at a steady rate.

The watchers opt in to batched changes (`batch_changes`): a watcher that falls behind gets every
change it has not seen in one message, which is what lets one process serve 10,000 of them.
Deliveries are counted per change, whatever message carried it.

Every watcher must receive every change after its snapshot, in order; delivery latency is from
the event's commit (its row's create_time) to the watcher's receipt; memory is the API process's
RSS growth per open watcher.

The readers are kept lean, because they share the two cores with the server and stand for
10,000 clients that would run elsewhere: they read through bench/grpc_h2.py (h2, by callback,
not a grpc.aio call each: with grpc.aio's client the API needed ~100 µs of CPU per message
instead of 64-88, on the same machine, docs/performance.md, session 11); a watcher records each
message as the run of sequences it carries (first, last, receipt time), checking that its
length matches; one watcher in SAMPLE_EVERY also checks every sequence in it; and it parses only
the sequences of a message (bench/sequences.py). Latency is still per change: every change of a
run counts from its own commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import grpc

from bench import grpc_h2, sequences
from bench.fixtures import Stream, live_livestreams
from bench.procs import Child, cpu_seconds
from bench.results import Measurement, Spec, Yardstick
from bench.scenario import Env, Scenario
from bench.stats import latency_ms
from bench.waiting import until
from bench.yardsticks import GRPC_ECHO, channel_options
from favorited_api.v1 import participant_service_pb2 as ppb
from favorited_api.v1 import participant_service_pb2_grpc as ps_grpc

STREAMS_PER_CHANNEL = 100  # watch streams multiplexed on one HTTP/2 connection
OPEN_CONCURRENCY = 200  # watchers opening (snapshot in flight) at once
SAMPLE_EVERY = 10  # one watcher in this many checks every sequence of every message
# create_time is the trigger's clock_timestamp() inside the committing transaction: the commit
# follows within milliseconds, so receipt - create_time slightly overstates delivery latency. (The
# JoinLivestream return time would understate it: a busy server answers the join late too.)
_EVENT_TIMES = """
SELECT livestream_id::text, sequence, extract(epoch FROM create_time)::float8 AS at
FROM participant_events WHERE livestream_id = ANY($1::uuid[])
"""


@dataclass(slots=True)
class Watcher:
    livestream: int
    sampled: bool = False  # checks every sequence of every message, not only the run's length
    snapshot_sequence: int = -1
    # One entry per change-carrying message after the snapshot: the run of sequences it carried.
    firsts: array[int] = field(default_factory=lambda: array("q"))
    lasts: array[int] = field(default_factory=lambda: array("q"))
    received: array[float] = field(default_factory=lambda: array("d"))
    broken_runs: int = 0  # messages whose changes were not consecutive sequences in order
    done: bool = False  # has seen its livestream's last sequence
    error: str = ""

    def seen(self) -> int:
        return self.lasts[-1] if self.lasts else self.snapshot_sequence


@dataclass
class Progress:
    """Shared by the watcher tasks: how many opened, and how many have seen their last event."""

    opened: int = 0
    targets: dict[int, int] | None = None  # livestream index → last sequence, once known
    expected: int = 0  # watchers that opened by the time the targets were known
    done: int = 0
    all_done: asyncio.Event = field(default_factory=asyncio.Event)

    def arrived(self, watcher: Watcher, sequence: int) -> None:
        if (
            self.targets is not None
            and not watcher.done
            and sequence >= self.targets[watcher.livestream]
        ):
            watcher.done = True
            self.done += 1
            if self.done >= self.expected:
                self.all_done.set()


def _cpu_self() -> float:
    return cpu_seconds(os.getpid())


class WatchScenario(Scenario):
    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.round = 0
        self.md_sample = env.ctx.authorization("bench-watcher")

    def shape(self, warmup: bool) -> tuple[int, int]:
        """(livestreams, watchers per livestream)."""
        raise NotImplementedError

    async def yardstick(self) -> Yardstick:
        # Informational: a unary call rate, next to which the delivered messages/s can be read.
        return await self.env.grpc_echo(concurrency=32, channels=1, metadata=self.md_sample)

    async def once(self, *, warmup: bool) -> Measurement:
        self.round += 1
        n_streams, per_stream = self.shape(warmup)
        total = n_streams * per_stream
        # A fresh API process per repeat: its RSS growth is the watchers' alone, not memory
        # freed by an earlier repeat and reused.
        target, api = await self.env.services.start_api(
            f"api-{self.spec.name}-{self.round}",
            # Watch streams are RPCs: the default cap (1,000) would refuse most watchers.
            GRPC_MAX_CONCURRENT_RPCS=str(min(total + 1_000, 100_000)),
        )
        try:
            return await self._measure(target, api, n_streams, per_stream, warmup)
        finally:
            await self.env.services.stop(api)

    async def _measure(
        self, target: str, api: Child, n_streams: int, per_stream: int, warmup: bool
    ) -> Measurement:
        ctx = self.env.ctx
        async with self.env.db.acquire() as conn:
            streams = await live_livestreams(
                conn,
                n_streams + 1,
                prefix=f"{self.spec.name.replace('_', '-')}-{ctx.run_id}-{self.round}",
            )
        warm, streams = streams[0], streams[1:]
        total = n_streams * per_stream
        # grpc.aio for the warm-up's few calls; the watchers read through bench/grpc_h2.py.
        channel = grpc.aio.insecure_channel(target, options=channel_options())
        connections: list[grpc_h2.Connection] = []
        tasks: list[asyncio.Task[None]] = []
        try:
            stub = ps_grpc.ParticipantServiceStub(channel)
            await self._warm_up(stub, warm)
            rss_before = api.rss_kib()

            watchers = [
                # Every livestream's first watcher too, so each livestream has a sampled one.
                Watcher(i // per_stream, sampled=i % SAMPLE_EVERY == 0 or i % per_stream == 0)
                for i in range(total)
            ]
            progress = Progress()
            opening = asyncio.Semaphore(OPEN_CONCURRENCY)
            mds = [ctx.authorization(f"w{self.round}-{i}") for i in range(total)]
            requests = [
                ppb.WatchParticipantsRequest(
                    livestream_id=s.id, batch_changes=True
                ).SerializeToString()
                for s in streams
            ]
            open_started = time.perf_counter()
            # Connected after rss_before: a connection's memory counts as its watchers' (real
            # watchers would each bring a connection of their own).
            host, port = target.rsplit(":", 1)
            for _ in range(math.ceil(total / STREAMS_PER_CHANNEL)):
                connections.append(await grpc_h2.Connection.open(host, int(port)))
            for i, watcher in enumerate(watchers):
                tasks.append(
                    asyncio.create_task(
                        _watch(
                            connections[i % len(connections)],
                            requests[watcher.livestream],
                            mds[i],
                            watcher,
                            progress,
                            opening,
                        )
                    )
                )
            await until(lambda: progress.opened >= total, timeout_s=self.sizes.deadline_s)
            open_s = time.perf_counter() - open_started
            rss_open = api.rss_kib()

            cpu_server, cpu_client = api.cpu_seconds(), _cpu_self()
            joins_started, joins_started_wall = time.perf_counter(), time.time()
            joins, join_latencies = await self._joins(target, streams, warmup)
            last_sequences = await self._last_sequences(streams)
            progress.targets = last_sequences
            progress.expected = progress.opened
            # Watchers that already saw their last event before the targets were known.
            for watcher in watchers:
                if watcher.snapshot_sequence >= 0:
                    progress.arrived(watcher, watcher.seen())
            if progress.done < progress.expected:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.sizes.watch_delivery_bound_s):
                        await progress.all_done.wait()
            delivery_end = time.perf_counter()
            cpu_server = api.cpu_seconds() - cpu_server
            cpu_client = _cpu_self() - cpu_client
            rss_end = api.rss_kib()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for connection in connections:
                await connection.close()
            await channel.close()

        committed = await self._event_times(streams)
        latencies: list[float] = []
        delivered = complete = duplicates = messages = 0
        errors: Counter[str] = Counter()
        expected_total = 0
        for watcher in watchers:
            if watcher.error:
                errors[watcher.error] += 1
            if watcher.snapshot_sequence < 0:
                continue  # never opened: counted by complete_fraction
            last = last_sequences[watcher.livestream]
            expected_total += last - watcher.snapshot_sequence
            messages += len(watcher.firsts)
            # The runs must chain from the snapshot: each starts right after the one before.
            # Joins still in flight when `last` was read may add events after it: not required.
            cursor, gaps, overlap = watcher.snapshot_sequence, 0, 0
            times = committed[streams[watcher.livestream].id]
            for first, end, at in zip(watcher.firsts, watcher.lasts, watcher.received, strict=True):
                gaps += first > cursor + 1
                overlap += max(0, min(cursor, end) - first + 1)
                delivered += max(0, min(end, last) - first + 1)
                cursor = max(cursor, end)
                latencies.extend(max(at - times[seq], 0.0) for seq in range(first, end + 1))
            duplicates += overlap
            complete += not gaps and not overlap and not watcher.broken_runs and cursor >= last
        window = delivery_end - joins_started
        p50, p99 = latency_ms(latencies)
        join_p50, join_p99 = latency_ms(join_latencies)
        # The joins' commits, from the schedule's start to the last: the rate the watchers were
        # really offered (a join the API admits late commits late, and its change's latency
        # counts from the commit).
        commit_times = [at for by_sequence in committed.values() for at in by_sequence.values()]
        commit_span = max(commit_times) - joins_started_wall if commit_times else 0.0
        return Measurement(
            value=delivered / window if window > 0 else math.nan,
            p50_ms=p50,
            p99_ms=p99,
            details={
                "watchers": total,
                "opened": progress.opened,
                "open_s": open_s,
                "joins": joins,
                # Completed joins from the schedule's start to the last commit, not over the
                # schedule: joins the API admits late stretch it (offered: watch_join_rate).
                "join_rate_achieved": joins / commit_span if commit_span > 0 else math.nan,
                "join_commit_span_s": commit_span,
                "join_p50_ms": join_p50,
                "join_p99_ms": join_p99,
                "duplicates": duplicates,
                "broken_runs": sum(w.broken_runs for w in watchers),
                "expected_deliveries": expected_total,
                "delivered": delivered,
                "change_messages": messages,
                "changes_per_message": delivered / messages if messages else math.nan,
                "complete_fraction": complete / total if total else math.nan,
                "stream_errors": sum(errors.values()),
                **{f"errors_{code}": n for code, n in errors.items()},
                "rss_per_watcher_kib": (rss_open - rss_before) / max(progress.opened, 1),
                "rss_before_mib": rss_before / 1024,
                "rss_end_mib": rss_end / 1024,
                "server_cpu_pct": 100 * cpu_server / window,
                "client_cpu_pct": 100 * cpu_client / window,
                "connections": len(connections),
            },
        )

    async def _warm_up(self, stub: ps_grpc.ParticipantServiceAsyncStub, stream: Stream) -> None:
        """A few watchers and joins first: pools, prepared statements, grpc threads."""
        calls = [
            stub.WatchParticipants(
                ppb.WatchParticipantsRequest(livestream_id=stream.id, batch_changes=True),
                metadata=self.env.ctx.authorization(f"warm-{self.round}-{i}"),
            )
            for i in range(10)
        ]
        for call in calls:
            await call.read()
        for i in range(3):
            await stub.JoinLivestream(
                ppb.JoinLivestreamRequest(livestream_id=stream.id, display_name="Warm"),
                metadata=self.env.ctx.authorization(f"warm-joiner-{self.round}-{i}"),
                timeout=30,
            )
        for call in calls:
            seen = 0  # the snapshot was read above; then the three joins, however batched
            while seen < 3:
                seen += len(_events(cast(ppb.WatchParticipantsResponse, await call.read())))
            call.cancel()

    async def _joins(
        self, target: str, streams: list[Stream], warmup: bool
    ) -> tuple[int, list[float]]:
        """Joins at the configured rate (open loop) from a thread of their own; how many
        completed, and each completed call's latency (seconds).

        Paced apart from this event loop, which 10,000 watchers reading keep saturated: the
        offered rate is what the schedule says, whatever the readers are doing. (The joins that
        did not go through before were held up in the API process, not here:
        favorited/api/write_slots.py.)
        """
        rate = self.sizes.watch_join_rate
        seconds = self.sizes.watch_seconds / (4 if warmup else 1)
        calls = [
            (
                ppb.JoinLivestreamRequest(
                    livestream_id=streams[i % len(streams)].id, display_name="Joiner"
                ),
                self.env.ctx.authorization(f"joiner-{self.round}-{i}"),
            )
            for i in range(int(rate * seconds))
        ]
        return await asyncio.to_thread(_paced_joins, target, calls, rate)

    async def _last_sequences(self, streams: list[Stream]) -> dict[int, int]:
        rows = await self.env.db.fetch(
            "SELECT id::text, last_event_sequence FROM livestreams WHERE id = ANY($1::uuid[])",
            [s.id for s in streams],
        )
        by_id = {r["id"]: r["last_event_sequence"] for r in rows}
        return {i: by_id[s.id] for i, s in enumerate(streams)}

    async def _event_times(self, streams: list[Stream]) -> dict[str, dict[int, float]]:
        """livestream id → sequence → when the event was written (epoch seconds)."""
        times: dict[str, dict[int, float]] = {s.id: {} for s in streams}
        for row in await self.env.db.fetch(_EVENT_TIMES, [s.id for s in streams]):
            times[row["livestream_id"]][row["sequence"]] = row["at"]
        return times


def _events(message: ppb.WatchParticipantsResponse) -> list[ppb.ParticipantEvent]:
    """The changes a message carries: a batch, one change, or none (snapshot, heartbeat)."""
    kind = message.WhichOneof("event")
    if kind == "changes":
        return list(message.changes.events)
    return [message.change] if kind == "change" else []


class _Reading:
    """One watcher's stream, read by callback (bench/grpc_h2.py): until its snapshot is complete
    it is opening (`opened` resolves then, or when the call ends first); then every message that
    carries changes is recorded as the run of sequences it carries."""

    __slots__ = ("opened", "progress", "watcher")

    def __init__(self, watcher: Watcher, progress: Progress) -> None:
        self.watcher = watcher
        self.progress = progress
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_message(self, data: bytes) -> None:
        at = time.time()  # wall clock: compared with PostgreSQL's clock_timestamp()
        message: Any = sequences.parse(data)
        watcher = self.watcher
        if not self.opened.done():
            if message.HasField("snapshot") and message.snapshot.complete:
                watcher.snapshot_sequence = message.snapshot.sequence
                self.opened.set_result(None)
            return
        kind = message.WhichOneof("event")
        if kind == "changes":
            events = message.changes.events
            if not events:
                watcher.broken_runs += 1  # a `changes` message carries at least one
                return
            first, last = events[0].sequence, events[len(events) - 1].sequence
            if watcher.sampled:
                whole = [event.sequence for event in events] == list(range(first, last + 1))
            else:
                whole = last - first + 1 == len(events)
            watcher.broken_runs += not whole
        elif kind == "change":
            first = last = message.change.sequence
        else:
            return
        watcher.firsts.append(first)
        watcher.lasts.append(last)
        watcher.received.append(at)
        self.progress.arrived(watcher, last)

    def on_end(self, code: str) -> None:
        if not self.opened.done():
            self.watcher.error = "EOF" if code == "OK" else code
            self.opened.set_result(None)
        elif code != "OK":
            self.watcher.error = code


async def _watch(
    connection: grpc_h2.Connection,
    request: bytes,
    metadata: tuple[tuple[str, str], ...],
    watcher: Watcher,
    progress: Progress,
    opening: asyncio.Semaphore,
) -> None:
    """Open one watcher's stream (bounded concurrency) and wait until its snapshot is complete;
    from then on its _Reading records what arrives.

    The call starts inside the semaphore: thousands of unanswered streams at once make the
    server refuse the excess (grpc.server.max_pending_requests) with CANCELLED.
    """
    async with opening:
        reading = _Reading(watcher, progress)
        try:
            connection.call(sequences.METHOD, request, metadata, reading)
        except ConnectionError:
            watcher.error = "UNAVAILABLE"  # the connection was lost before the call: no retry
            return
        await reading.opened
    if watcher.snapshot_sequence >= 0:
        progress.opened += 1


Metadata = tuple[tuple[str, str], ...]


def _paced_joins(
    target: str, calls: list[tuple[ppb.JoinLivestreamRequest, Metadata]], rate: float
) -> tuple[int, list[float]]:
    """Start call i at t0 + i/rate on a blocking channel (grpc's own threads carry the calls);
    return how many succeeded and their latencies (s). Bounded: len(calls) calls, each with a
    30 s deadline."""
    with grpc.insecure_channel(target, options=channel_options()) as channel:
        stub = ps_grpc.ParticipantServiceStub(channel)
        started = time.perf_counter()
        pending: list[tuple[float, grpc.Future[ppb.JoinLivestreamResponse]]] = []
        finished: dict[int, float] = {}
        for index, (request, metadata) in enumerate(calls):
            # Pacing an open-loop schedule, not waiting for a condition.
            time.sleep(max(0.0, started + index / rate - time.perf_counter()))
            at = time.perf_counter()
            call = stub.JoinLivestream.future(request, metadata=metadata, timeout=30)
            call.add_done_callback(functools.partial(_finished_at, finished, index))
            pending.append((at, call))
        ok = [(i, at) for i, (at, call) in enumerate(pending) if call.exception() is None]
        # grpc runs a future's callbacks just after waking its waiters, so the last few may not
        # have run yet: those count as finished now (an overstatement of a few microseconds).
        now = time.perf_counter()
        return len(ok), [finished.get(i, now) - at for i, at in ok]


def _finished_at(finished: dict[int, float], index: int, _: object) -> None:
    finished.setdefault(index, time.perf_counter())


class WatchFanout(WatchScenario):
    spec: ClassVar[Spec] = Spec(
        name="watch_fanout",
        what="changes delivered/s (batched), 10,000 watchers of one livestream, joins at 50/s",
        unit="changes/s",
        yardstick=GRPC_ECHO,
        target="every event to every watcher; p99 delivery < 1 s; <= 20 KiB server RSS/watcher",
        checks={
            "every event to every watcher": lambda s: (
                s.get("complete_fraction") == 1 and s.get("duplicates") == 0
            ),
            "p99<1s": lambda s: s.p99_ms < 1000,
            "<=20KiB/watcher": lambda s: s.get("rss_per_watcher_kib") <= 20,
        },
    )

    def shape(self, warmup: bool) -> tuple[int, int]:
        return 1, self.sizes.watchers // (20 if warmup else 1)


class WatchFanoutMany(WatchScenario):
    spec: ClassVar[Spec] = Spec(
        name="watch_fanout_many",
        what="changes delivered/s (batched), 1,000 livestreams x 5 watchers, joins at 50/s",
        unit="changes/s",
        yardstick=GRPC_ECHO,
        target="every event to every watcher; p99 delivery < 1 s; <= 20 KiB server RSS/watcher",
        checks=WatchFanout.spec.checks,
    )

    def shape(self, warmup: bool) -> tuple[int, int]:
        return (
            self.sizes.watch_many_livestreams // (20 if warmup else 1),
            self.sizes.watch_many_per_livestream,
        )
