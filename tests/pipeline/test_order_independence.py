"""Property: whatever the delivery order and however many duplicates, the consumer's effects
converge to the state in-order delivery gives.

Applied through the real LiveKitEventService on real PostgreSQL (the part of the consumer that
decides effects); transport is covered by the other pipeline tests. Compared state: the
livestream's status, viewer and unique-viewer counts, and for each identity whether it is JOINED
(with which LiveKit session, connected or not) or LEFT; how many rows a LEFT user accumulated on
the way depends on the order and is not compared. The peak is order-dependent by nature
(it is the highest count seen while applying) and is not compared.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from favorited.domain.livekit_events import LiveKitEvent, LiveKitEventService
from tests.support.livekit_webhooks import sid


@dataclass(frozen=True)
class Step:
    event: str  # participant_joined | participant_left | room_finished
    identity: str = ""
    session: int = 0  # index of the identity's session
    joined_at_ms: int = 0


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Step], set[str]]:
    """A realistic in-order history: per identity, sessions in time order; every session but the
    last one ends (LiveKit ends the old session on a reconnect); maybe a final room_finished."""
    t0 = 1_800_000_000_000
    per_identity: dict[str, list[Step]] = {}
    for i in range(draw(st.integers(1, 3))):
        identity = f"u{i}"
        sessions = draw(st.integers(1, 3))
        steps: list[Step] = []
        for s in range(sessions):
            at = t0 + s * 1000 + i
            steps.append(Step("participant_joined", identity, s, at))
            if s < sessions - 1 or draw(st.booleans()):
                steps.append(Step("participant_left", identity, s))
        per_identity[identity] = steps
    order = draw(st.permutations([k for k, v in per_identity.items() for _ in v]))
    cursors = dict.fromkeys(per_identity, 0)
    history: list[Step] = []
    for identity in order:
        history.append(per_identity[identity][cursors[identity]])
        cursors[identity] += 1
    if draw(st.booleans()):
        history.append(Step("room_finished"))
    joined_by_rpc = draw(st.sets(st.sampled_from(sorted(per_identity))))
    return history, joined_by_rpc


async def _run(
    livekit_events: LiveKitEventService,
    db: asyncpg.Pool,
    steps: list[Step],
    joined_by_rpc: set[str],
    *,
    batch_sizes: list[int] | None = None,
    with_log: bool = False,
) -> dict[str, object]:
    """Apply `steps` (which may repeat) to a fresh livestream; return the compared state.

    One event per transaction, or, with `batch_sizes`, consecutive events in batches of those
    sizes as the consumer applies them (the last size repeats). `with_log` adds what only an
    in-order delivery fixes: the peak and the participant event log.
    """
    livestream_id, room_sid = str(uuid.uuid4()), sid("RM_")
    await db.execute(
        "INSERT INTO livestreams (id, room_name, title, created_by, max_participants,"
        " room_capacity, empty_timeout_s, status, start_time, livekit_room_sid)"
        " VALUES ($1, $2, 't', 'host', 100, 101, 60, 'LIVE', now(), $3)",
        livestream_id,
        f"prop-{livestream_id[:8]}",
        room_sid,
    )
    for identity in sorted(joined_by_rpc):
        await db.execute(
            "INSERT INTO participants (id, livestream_id, user_id, display_name, role)"
            " VALUES (gen_random_uuid(), $1, $2, $2, 'VIEWER')",
            livestream_id,
            identity,
        )
    sids: dict[tuple[str, int], str] = {}
    event_ids: dict[Step, str] = {}
    events = [
        LiveKitEvent(
            event_id=event_ids.setdefault(step, sid("EV_")),
            event=step.event,
            created_at=None,
            room_sid=room_sid,
            room_name=f"prop-{livestream_id[:8]}",
            participant_sid=sids.setdefault((step.identity, step.session), sid("PA_"))
            if step.identity
            else "",
            identity=step.identity,
            joined_at_ms=step.joined_at_ms,
        )
        for step in steps
    ]
    if batch_sizes is None:
        for event in events:
            await livekit_events.apply(event)
    else:
        sizes = iter(batch_sizes)
        size = 1
        while events:
            size = next(sizes, size)
            await livekit_events.apply_many(events[:size])
            events = events[size:]
    stream = await db.fetchrow(
        "SELECT status::text, viewer_count, unique_viewer_count FROM livestreams WHERE id = $1",
        livestream_id,
    )
    # Whatever the order and batching, the seat count capacity reads (migrations/0009) is the
    # number of JOINED viewer rows.
    seats = await db.fetchrow(
        "SELECT l.joined_viewer_count AS counted, (SELECT count(*) FROM participants p"
        " WHERE p.livestream_id = l.id AND p.status = 'JOINED' AND p.role = 'VIEWER') AS rows"
        " FROM livestreams l WHERE l.id = $1",
        livestream_id,
    )
    assert seats is not None and seats["counted"] == seats["rows"]
    rows = await db.fetch(
        "SELECT DISTINCT ON (user_id) user_id, status::text, livekit_participant_sid, connected"
        " FROM participants WHERE livestream_id = $1 ORDER BY user_id, join_time DESC",
        livestream_id,
    )
    by_sid = {v: k for k, v in sids.items()}
    state: dict[str, object] = {
        "livestream": tuple(stream) if stream else None,
        "participants": {
            r["user_id"]: (
                (r["status"], by_sid.get(r["livekit_participant_sid"]), r["connected"])
                if r["status"] == "JOINED"
                else ("LEFT",)
            )
            for r in rows
        },
    }
    if with_log:
        state["peak"] = await db.fetchval(
            "SELECT peak_viewer_count FROM livestreams WHERE id = $1", livestream_id
        )
        log = await db.fetch(
            "SELECT sequence, type::text, participant->>'user_id' AS user_id,"
            " participant->>'status' AS status, participant->>'connected' AS connected,"
            " participant->>'livekit_participant_sid' AS sid"
            " FROM participant_events WHERE livestream_id = $1 ORDER BY sequence",
            livestream_id,
        )
        state["log"] = [
            (
                r["sequence"],
                r["type"],
                r["user_id"],
                r["status"],
                r["connected"],
                by_sid.get(r["sid"]),
            )
            for r in log
        ]
    return state


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), history=histories())
async def test_any_order_with_duplicates_converges_to_in_order_state(
    livekit_events: LiveKitEventService,
    db: asyncpg.Pool,
    data: st.DataObject,
    history: tuple[list[Step], set[str]],
) -> None:
    steps, joined_by_rpc = history
    expected = await _run(livekit_events, db, steps, joined_by_rpc)
    duplicated = steps + data.draw(st.lists(st.sampled_from(steps), max_size=len(steps)))
    delivered = data.draw(st.permutations(duplicated))
    assert await _run(livekit_events, db, delivered, joined_by_rpc) == expected


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), history=histories())
async def test_a_batch_publishes_exactly_what_its_events_one_by_one_would(
    livekit_events: LiveKitEventService,
    db: asyncpg.Pool,
    data: st.DataObject,
    history: tuple[list[Step], set[str]],
) -> None:
    """The consumer's batches publish their participant changes once, at the end of the batch
    (and before a room's end): the event log (sequences, types, images), the figures and the
    peak must be those of applying the same events one transaction each."""
    steps, joined_by_rpc = history
    with_duplicates = steps + data.draw(st.lists(st.sampled_from(steps), max_size=3))
    sizes = data.draw(st.lists(st.integers(1, 8), min_size=1, max_size=4))
    expected = await _run(livekit_events, db, with_duplicates, joined_by_rpc, with_log=True)
    batched = await _run(
        livekit_events, db, with_duplicates, joined_by_rpc, batch_sizes=sizes, with_log=True
    )
    assert batched == expected
    assert expected["log"], "every history has at least one participant event"
