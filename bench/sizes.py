"""How big each scenario is: the issue's sizes, and tiny ones for --smoke."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sizes:
    yardstick_s: float  # each yardstick runs this long (or yardstick_max operations)
    yardstick_max: int
    ingest_events: int
    drain_events: int
    e2e_rate: float  # offered webhooks/s (the target is 1,350/s; offered 5 % above it)
    e2e_seconds: float
    e2e_drain_bound_s: float
    join_calls: int
    create_calls: int
    end_participants: int
    list_participants: int
    page_repeats: int
    watchers: int
    watch_join_rate: float
    watch_seconds: float
    watch_many_livestreams: int
    watch_many_per_livestream: int
    watch_delivery_bound_s: float
    viewer_streams: int
    viewer_users: int
    deadline_s: float  # the bound on any one timed loop

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            yardstick_s=3.0,
            yardstick_max=200_000,
            ingest_events=10_000,
            drain_events=6_000,
            e2e_rate=1_420.0,
            e2e_seconds=60.0,
            e2e_drain_bound_s=30.0,
            join_calls=3_000,
            create_calls=1_000,
            end_participants=100_000,
            list_participants=100_000,
            page_repeats=20,
            watchers=10_000,
            watch_join_rate=50.0,
            watch_seconds=10.0,
            watch_many_livestreams=1_000,
            watch_many_per_livestream=5,
            watch_delivery_bound_s=60.0,
            viewer_streams=4,
            viewer_users=1_000,
            deadline_s=120.0,
        )

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(
            yardstick_s=0.5,
            yardstick_max=2_000,
            ingest_events=300,
            drain_events=300,
            e2e_rate=100.0,
            e2e_seconds=5.0,
            e2e_drain_bound_s=10.0,
            join_calls=200,
            # Enough for the emulator's CPU to span several of /proc's 10 ms ticks on a fast
            # machine (~0.16 ms per create): the smoke test checks that it is reported.
            create_calls=400,
            end_participants=2_000,
            list_participants=2_000,
            page_repeats=3,
            watchers=200,
            watch_join_rate=50.0,
            watch_seconds=2.0,
            watch_many_livestreams=20,
            watch_many_per_livestream=5,
            watch_delivery_bound_s=15.0,
            viewer_streams=2,
            viewer_users=50,
            deadline_s=30.0,
        )
