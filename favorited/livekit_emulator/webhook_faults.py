"""Switchable delivery faults: duplicates, drops, reordering and bad signatures.

Everything is off by default and deterministic: the coin flips come from a seeded
``random.Random`` and are made when an event is queued, in emission order, so they don't
depend on HTTP timing.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from livekit.protocol import models

from .events import RoomEventKind
from .webhook_wire import SignatureFault

if TYPE_CHECKING:
    from .events import RoomEvent

EVERY_EVENT = 1.0
"""A probability that makes a fault hit every matching event."""


class Reorder(enum.StrEnum):
    """Orders real LiveKit has been seen to deliver, despite its per-room FIFO queues."""

    # livekit/livekit#2399: on a fast full reconnect the old sid's participant_left
    # (DUPLICATE_IDENTITY) arrives after the new sid's participant_joined.
    OLD_SID_LEFT_AFTER_NEW_JOINED = "old_sid_left_after_new_joined"
    # livekit/livekit#2065: participant_left of those still inside a closing room arrives
    # after its room_finished.
    LEFT_AFTER_ROOM_FINISHED = "left_after_room_finished"


_CLOSING_REASONS = frozenset(
    {models.DisconnectReason.ROOM_DELETED, models.DisconnectReason.ROOM_CLOSED}
)


@dataclass(frozen=True, slots=True)
class WebhookFaults:
    """Which faults to inject; replace the whole value at runtime to change them.

    Attributes:
        duplicate: chance that an event delivered with a 2xx is sent again, same bytes and
            same JWT (a lost response, as a receiver sees it).
        drop: chance that an event is abandoned for a URL without ever being sent.
        kinds: the event kinds ``duplicate`` and ``drop`` apply to; empty means all.
        reorder: which real-world reorderings to produce, every time they can happen.
        signature: how to spoil the signature of every event queued while set.
        seed: seeds the coin flips, so a failing run can be replayed.
    """

    duplicate: float = 0.0
    drop: float = 0.0
    kinds: frozenset[RoomEventKind] = frozenset()
    reorder: frozenset[Reorder] = frozenset()
    signature: SignatureFault = SignatureFault.NONE
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("duplicate", "drop"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1]")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the faults decided for one event and one URL."""

    drop: bool = False
    duplicate: bool = False
    signature: SignatureFault = SignatureFault.NONE


@dataclass(slots=True)
class FaultDice:
    """Turns ``WebhookFaults`` into per-delivery verdicts with a seeded generator."""

    faults: WebhookFaults = field(default_factory=WebhookFaults)
    _random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.faults.seed)

    def configure(self, faults: WebhookFaults) -> None:
        """Switch faults; the generator restarts from the new seed."""
        self.faults = faults
        self._random = random.Random(faults.seed)

    def roll(self, event: RoomEvent) -> Verdict:
        """Decide drop, duplicate and signature for one delivery of ``event``."""
        faults = self.faults
        applies = not faults.kinds or event.kind in faults.kinds
        return Verdict(
            drop=applies and self._flip(faults.drop),
            duplicate=applies and self._flip(faults.duplicate),
            signature=faults.signature,
        )

    def _flip(self, chance: float) -> bool:
        # No draw at 0 or 1, so switching one fault fully on or off doesn't shift the
        # sequence the other fault sees.
        if chance <= 0.0 or chance >= 1.0:
            return chance >= 1.0
        return self._random.random() < chance


class Reorderer:
    """Holds back events a ``Reorder`` rule moves later, per room.

    A held event is released right after the next event of the same room that isn't held
    itself: for a reconnect that is the new sid's ``participant_joined``, for a closing
    room its ``room_finished``. So nothing waits for longer than one state change.
    """

    def __init__(self) -> None:
        self._held: dict[str, list[RoomEvent]] = {}

    def push(self, event: RoomEvent, rules: frozenset[Reorder]) -> list[RoomEvent]:
        """Take one emitted event; return the events to queue now, in order."""
        room = event.room.name
        if _moved_later(event, rules):
            self._held.setdefault(room, []).append(event)
            return []
        return [event, *self._held.pop(room, [])]

    def flush(self) -> list[RoomEvent]:
        """Everything still held (e.g. at shutdown), oldest first per room."""
        held = [event for events in self._held.values() for event in events]
        self._held.clear()
        return held


def _moved_later(event: RoomEvent, rules: frozenset[Reorder]) -> bool:
    if event.kind is not RoomEventKind.PARTICIPANT_LEFT or event.participant is None:
        return False
    reason = event.participant.disconnect_reason
    if reason == models.DisconnectReason.DUPLICATE_IDENTITY:
        return Reorder.OLD_SID_LEFT_AFTER_NEW_JOINED in rules
    return reason in _CLOSING_REASONS and Reorder.LEFT_AFTER_ROOM_FINISHED in rules
