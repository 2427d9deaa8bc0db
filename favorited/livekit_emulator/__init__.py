"""Wire-level LiveKit emulator: RoomService over Twirp plus a test-control API.

The service under test talks to it with the unmodified ``livekit-api`` client; tests drive
simulated clients, faults and inspection through ``LiveKitEmulator``'s Python methods.
"""

from __future__ import annotations

from .cli import DEV_API_KEY, DEV_API_SECRET, main, serve
from .errors import (
    EmulatorError,
    EmulatorJoinError,
    HeaderAuthError,
    JoinFailure,
    RoomServiceError,
    TwirpCode,
)
from .events import RoomEvent, RoomEventKind, RoomEventListener
from .rooms import Clock
from .server import LiveKitEmulator
from .twirp import RecordedRequest

__all__ = [
    "DEV_API_KEY",
    "DEV_API_SECRET",
    "Clock",
    "EmulatorError",
    "EmulatorJoinError",
    "HeaderAuthError",
    "JoinFailure",
    "LiveKitEmulator",
    "RecordedRequest",
    "RoomEvent",
    "RoomEventKind",
    "RoomEventListener",
    "RoomServiceError",
    "TwirpCode",
    "main",
    "serve",
]
