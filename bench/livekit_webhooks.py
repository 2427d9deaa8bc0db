"""LiveKit webhook requests, built and signed up front exactly as LiveKit signs them.

Signing (an HS256 JWT whose `sha256` claim is the body's hash) happens before the timed part of
a scenario, so the load generator only sends bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from livekit import api

from bench.fixtures import Stream

JOINED = "participant_joined"
LEFT = "participant_left"


@dataclass(frozen=True, slots=True)
class Event:
    """One webhook event: its id, its name and its body bytes (LiveKit's protojson)."""

    event_id: str
    event: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Webhook:
    event_id: str
    body: bytes
    headers: dict[str, str]


def participant_event(
    event: str, stream: Stream, *, event_id: str, participant_sid: str, identity: str, at_ms: int
) -> Event:
    payload = _base(event, event_id, stream)
    payload["participant"] = {
        "sid": participant_sid,
        "identity": identity,
        "name": identity,
        "state": "ACTIVE",
        "joinedAt": str(at_ms // 1000),
        "joinedAtMs": str(at_ms),
        "permission": {"canSubscribe": True, "canPublish": False},
    }
    return Event(event_id, event, json.dumps(payload).encode())


def room_event(event: str, stream: Stream, *, event_id: str) -> Event:
    return Event(event_id, event, json.dumps(_base(event, event_id, stream)).encode())


def sessions(streams: list[Stream], count: int, *, tag: str, block: int = 200) -> list[Event]:
    """`count` sessions (joined, then left) spread over `streams`: 2 x count events.

    Sessions start in blocks; each block's `left`s are interleaved with the next block's
    `joined`s, so sessions overlap as in a room, and the last block's `left`s come at the end.
    Event ids start with `EV_<tag>_`, so a run's inbox rows can be counted by prefix.
    """
    now_ms = int(time.time() * 1000)

    def joined(i: int) -> Event:
        return participant_event(
            JOINED,
            streams[i % len(streams)],
            event_id=f"EV_{tag}_{2 * i}",
            participant_sid=f"PA_{tag}_{i}",
            identity=f"u{tag}-{i}",
            at_ms=now_ms + i,
        )

    def left(i: int) -> Event:
        return participant_event(
            LEFT,
            streams[i % len(streams)],
            event_id=f"EV_{tag}_{2 * i + 1}",
            participant_sid=f"PA_{tag}_{i}",
            identity=f"u{tag}-{i}",
            at_ms=now_ms + i,
        )

    events: list[Event] = []
    starts = range(0, count, block)
    for start in starts:
        current = list(range(start, min(start + block, count)))
        previous = list(range(max(start - block, 0), start))
        for k, i in enumerate(current):
            events.append(joined(i))
            if k < len(previous):
                events.append(left(previous[k]))
        events.extend(left(i) for i in previous[len(current) :])
    last = starts[-1] if starts else 0
    events.extend(left(i) for i in range(last, count))
    return events


@dataclass(frozen=True, slots=True)
class Signer:
    key: str
    secret: str
    ttl: timedelta = timedelta(minutes=30)

    def sign(self, event: Event) -> Webhook:
        digest = base64.b64encode(hashlib.sha256(event.body).digest()).decode()
        token = api.AccessToken(self.key, self.secret).with_ttl(self.ttl).with_sha256(digest)
        return Webhook(
            event_id=event.event_id,
            body=event.body,
            headers={
                "Authorization": token.to_jwt(),
                "Content-Type": "application/webhook+json",
            },
        )


def _base(event: str, event_id: str, stream: Stream) -> dict[str, Any]:
    return {
        "event": event,
        "id": event_id,
        "createdAt": str(int(time.time())),
        "room": {"sid": stream.room_sid, "name": stream.room_name},
    }
