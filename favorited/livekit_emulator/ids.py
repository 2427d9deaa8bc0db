"""LiveKit-style resource ids (``livekit/protocol`` ``utils/guid``)."""

from __future__ import annotations

import enum
import secrets

# shortuuid's base57 alphabet: digits and letters minus the look-alikes 0, 1, I, O and l.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
SUFFIX_LENGTH = 12


class SidPrefix(enum.StrEnum):
    """Prefixes LiveKit puts in front of generated ids."""

    ROOM = "RM_"
    PARTICIPANT = "PA_"
    TRACK = "TR_"
    EVENT = "EV_"


def new_sid(prefix: SidPrefix) -> str:
    """Return a fresh id such as ``RM_x7Kd93hQmP2a``."""
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(SUFFIX_LENGTH))
