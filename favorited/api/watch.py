"""The two Watch RPCs: snapshot or replay from the durable log, then live changes from the hubs.

Guarantees (documented in the protos): WatchParticipants delivers every change after the
snapshot's (or the client's) sequence exactly once, in sequence order, whichever API process
serves it (one change per message, or, for a watcher that asked for batches, every change it has
not seen yet, up to MAX_BATCH, per message); WatchLivestream sends the state now, then every
change, coalescing live-figure-only changes to one per WATCH_COALESCE_SECONDS per watcher while
status changes go out at once.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from favorited import errors
from favorited.api import convert
from favorited.api.write_slots import WriteSlots
from favorited.domain import models
from favorited.store.events import ParticipantChange, PgEventLog
from favorited.streams.livestreams import LatestState, LivestreamHub
from favorited.streams.participants import ParticipantHub
from favorited.streams.subscribers import Broken, Closing, Finished, Overflowed
from favorited_api.v1 import livestream_service_pb2 as lpb
from favorited_api.v1 import participant_service_pb2 as ppb

SNAPSHOT_PAGE = 500
# Changes per `changes` message at most (the proto documents it): ~300 bytes each, so a batch
# stays far below the 4 MiB send limit, and a watcher far behind still yields to the others.
MAX_BATCH = 500
_REPLAY_BATCH = MAX_BATCH  # one replayed read is one `changes` message


def encode_change(change: ParticipantChange) -> ppb.WatchParticipantsResponse:
    event = ppb.ParticipantEvent(
        sequence=change.sequence,
        type=ppb.ParticipantEventType.Value(f"PARTICIPANT_EVENT_TYPE_{change.type}"),
    )
    if change.participant is not None:
        event.participant.CopyFrom(convert.participant_to_proto(change.participant))
    event.event_time.FromDatetime(change.create_time)
    if change.details:
        details = struct_pb2.Struct()
        details.update(change.details)
        event.details.CopyFrom(details)
    return ppb.WatchParticipantsResponse(change=event)


def encode_batch(entries: list[tuple[ParticipantChange, Any]]) -> bytes:
    """One `changes` message from ring entries whose messages encode_change built, serialized:
    the feed builds it once for every watcher at that position (wire.py)."""
    return ppb.WatchParticipantsResponse(
        changes=ppb.ParticipantEvents(events=[message.change for _, message in entries])
    ).SerializeToString()


def _participants_heartbeat(cursor: int) -> ppb.WatchParticipantsResponse:
    return ppb.WatchParticipantsResponse(
        heartbeat=ppb.WatchParticipantsHeartbeat(sequence=cursor, time=_now())
    )


def _now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(datetime.now(UTC))
    return ts


class StreamLimiter:
    """Caps concurrent Watch streams per caller in this process."""

    def __init__(self, per_caller: int) -> None:
        self._per_caller = per_caller
        self._open: Counter[str] = Counter()

    # acquire/release rather than a context manager: a Watch generator holds its slot for the
    # stream's lifetime, and a @contextmanager would keep a generator object per stream too.
    def acquire(self, caller: models.Caller) -> str:
        """Take a slot for the caller; release it with the returned key."""
        if self._open[caller.user_id] >= self._per_caller:
            raise errors.ResourceExhaustedError(
                f"At most {self._per_caller} concurrent Watch streams per caller.",
                reason="TOO_MANY_STREAMS",
            )
        self._open[caller.user_id] += 1
        return caller.user_id

    def release(self, user_id: str) -> None:
        self._open[user_id] -= 1
        if not self._open[user_id]:
            del self._open[user_id]


@dataclasses.dataclass(slots=True)
class _Position:
    """Where a WatchParticipants catch-up ended: the live part follows `cursor`."""

    cursor: int
    over: bool = False  # the livestream ended and the catch-up reached its last event


def _shutting_down() -> errors.DependencyUnavailableError:
    return errors.DependencyUnavailableError(
        "The server is shutting down; reconnect and resume.", reason="SERVER_SHUTTING_DOWN"
    )


class Watcher:
    def __init__(
        self,
        *,
        log: PgEventLog,
        participants: ParticipantHub,
        livestreams: LivestreamHub,
        limiter: StreamLimiter,
        heartbeat_s: float,
        coalesce_s: float,
        writes: WriteSlots,
    ) -> None:
        self._log = log
        self._participants = participants
        self._livestreams = livestreams
        self._limiter = limiter
        self._heartbeat_s = heartbeat_s
        self._coalesce_s = coalesce_s
        # Live messages take a slot: a change to thousands of watchers must not hold up every
        # other call of this process (write_slots.py).
        self._writes = writes

    async def watch_participants(
        self,
        caller: models.Caller,
        livestream_id: str,
        after_sequence: int,
        *,
        batch: bool = False,
    ) -> AsyncIterator[ppb.WatchParticipantsResponse | bytes]:
        if after_sequence < 0:
            raise errors.InvalidArgumentError.single("after_sequence", "must not be negative")
        # This frame lives as long as the stream, with thousands of streams open at once: the
        # catch-up runs in a generator of its own, and nothing per-stream (rows, pages, entry
        # lists) stays bound here while the stream waits.
        user = self._limiter.acquire(caller)
        try:
            async with self._participants.subscribe(livestream_id) as reader:
                position = _Position(after_sequence)
                async for message in self._catch_up(livestream_id, position, batch):
                    yield message
                    del message  # the last snapshot page must not stay bound while we wait
                cursor = position.cursor
                reader.advance(cursor)
                if position.over:
                    return
                # Batching bounds a message, not a wait: whatever is in the ring goes now, read
                # once the write slot is granted (below).
                while batch:
                    try:
                        changed = await reader.wait(cursor, self._heartbeat_s)
                    except Finished:
                        return
                    async with self._writes.slot():
                        # Read the ring once the slot is ours: with thousands of watchers the
                        # wait for a slot is most of a pass over them, and what arrived
                        # meanwhile leaves in this message, not the next. Changes only after
                        # the cursor, so the snapshot's or the replay's last change is never
                        # sent again.
                        ready = reader.batch(cursor, MAX_BATCH, encode_batch) if changed else None
                        if ready is None:  # silence: the heartbeat is due
                            yield _participants_heartbeat(cursor)
                            continue
                        message, cursor = ready
                        del ready
                        yield message
                        del message
                    reader.advance(cursor)
                while True:
                    try:
                        entries = await reader.next(cursor, self._heartbeat_s)
                    except Finished:
                        return
                    # One write slot per message (write_slots.py), never one for a list.
                    if not entries:
                        async with self._writes.slot():
                            yield _participants_heartbeat(cursor)
                        continue
                    for change, message in entries:
                        async with self._writes.slot():
                            yield message
                        cursor = change.sequence
                        reader.advance(cursor)
                    # Nothing of the last change stays bound while the stream waits for the next.
                    del entries, change, message
        except Overflowed:
            raise errors.ResourceExhaustedError(
                "The watcher fell behind; resume with after_sequence set to the last "
                "sequence received.",
                reason="WATCHER_TOO_SLOW",
                livestream=livestream_id,
            ) from None
        except Closing:
            raise _shutting_down() from None
        except Broken:
            raise errors.DependencyUnavailableError(
                "The server stopped following this livestream's changes; resume with "
                "after_sequence set to the last sequence received.",
                reason="WATCH_FEED_FAILED",
                livestream=livestream_id,
            ) from None
        finally:
            self._limiter.release(user)

    async def _catch_up(
        self, livestream_id: str, position: _Position, batch: bool
    ) -> AsyncIterator[ppb.WatchParticipantsResponse | bytes]:
        """The snapshot (position.cursor == 0) or the replay after position.cursor; then
        position says where the live part starts and whether the stream is over already."""
        if position.cursor == 0:
            snapshot = await self._log.snapshot(livestream_id)
            if snapshot is None:
                raise errors.LivestreamNotFoundError(livestream_id)
            for page in _snapshot_pages(snapshot.participants, snapshot.sequence):
                yield page
            position.cursor, ended = snapshot.sequence, snapshot.livestream.status.terminal
        else:
            ended = await self._check_resumable(livestream_id, position.cursor)
            async for message, sequence in self._replay(livestream_id, position.cursor, batch):
                position.cursor = sequence
                yield message
        last = await self._log.livestream(livestream_id)
        position.over = ended and last is not None and position.cursor >= last.last_event_sequence

    async def _check_resumable(self, livestream_id: str, after: int) -> bool:
        livestream = await self._log.livestream(livestream_id)
        if livestream is None:
            raise errors.LivestreamNotFoundError(livestream_id)
        if after > livestream.last_event_sequence:
            raise errors.InvalidArgumentError.single(
                "after_sequence", "is after the livestream's latest sequence"
            )
        first = await self._log.first_sequence(livestream_id)
        if after < livestream.last_event_sequence and (first is None or after < first - 1):
            raise errors.FailedPreconditionError(
                "Events after this sequence are no longer kept; watch again from a snapshot "
                "(after_sequence = 0).",
                reason="SEQUENCE_EXPIRED",
                livestream=livestream_id,
            )
        return livestream.status.terminal

    async def _replay(
        self, livestream_id: str, cursor: int, batch: bool
    ) -> AsyncIterator[tuple[ppb.WatchParticipantsResponse | bytes, int]]:
        while True:
            changes = await self._log.after(livestream_id, cursor, _REPLAY_BATCH)
            if batch and changes:
                cursor = changes[-1].sequence
                yield encode_batch([(c, encode_change(c)) for c in changes]), cursor
            else:
                for change in changes:
                    cursor = change.sequence
                    yield encode_change(change), cursor
            if len(changes) < _REPLAY_BATCH:
                return

    async def watch_livestream(
        self, caller: models.Caller, livestream_id: str
    ) -> AsyncIterator[lpb.WatchLivestreamResponse]:
        user = self._limiter.acquire(caller)
        try:
            try:
                async with self._livestreams.subscribe(livestream_id) as state:
                    sent = await self._log.livestream(livestream_id)
                    if sent is None:
                        raise errors.LivestreamNotFoundError(livestream_id)
                    yield lpb.WatchLivestreamResponse(livestream=convert.livestream_to_proto(sent))
                    sent_at = time.monotonic()
                    while not sent.status.terminal:
                        if not await state.wait(self._heartbeat_s):
                            async with self._writes.slot():
                                yield lpb.WatchLivestreamResponse(
                                    heartbeat=lpb.WatchLivestreamHeartbeat(time=_now())
                                )
                            continue
                        latest = state.latest
                        if latest is None or _visible(latest) == _visible(sent):
                            continue
                        if latest.status is sent.status:
                            # Only live figures (or details) changed: coalesce within the window,
                            # then send the newest value, so a burst ends on the true final one.
                            wait_s = self._coalesce_s - (time.monotonic() - sent_at)
                            if wait_s > 0:
                                await _settle(state, sent, wait_s)
                                latest = state.latest or latest
                        sent, sent_at = latest, time.monotonic()
                        async with self._writes.slot():
                            yield lpb.WatchLivestreamResponse(
                                livestream=convert.livestream_to_proto(sent)
                            )
            except Closing:
                raise _shutting_down() from None
        finally:
            self._limiter.release(user)


async def _settle(state: LatestState, sent: models.Livestream, seconds: float) -> None:
    """Let live-figure changes accumulate for `seconds`, but stop early for a status change."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        if not await state.wait(remaining):
            return
        if state.latest is not None and state.latest.status is not sent.status:
            state.changed.set()  # let the caller see it as new, too
            return


def _visible(ls: models.Livestream) -> tuple[object, ...]:
    return (
        ls.status,
        ls.viewer_count,
        ls.peak_viewer_count,
        ls.unique_viewer_count,
        ls.title,
        ls.description,
        ls.max_participants,
        ls.empty_timeout_s,
        repr(ls.metadata),
        ls.end_time,
    )


def _snapshot_pages(
    participants: list[models.Participant], sequence: int
) -> Iterator[ppb.WatchParticipantsResponse]:
    pages = [
        participants[i : i + SNAPSHOT_PAGE] for i in range(0, len(participants), SNAPSHOT_PAGE)
    ] or [[]]
    for index, page in enumerate(pages):
        yield ppb.WatchParticipantsResponse(
            snapshot=ppb.ParticipantSnapshot(
                participants=[convert.participant_to_proto(p) for p in page],
                sequence=sequence,
                complete=index == len(pages) - 1,
            )
        )
