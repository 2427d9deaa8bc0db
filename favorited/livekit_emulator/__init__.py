"""Wire-level LiveKit emulator: RoomService over Twirp, signed webhooks, a test-control API.

The service under test talks to it with the unmodified ``livekit-api`` client and receives
its webhooks with the unmodified ``WebhookReceiver``; tests drive simulated clients, room
timeouts, faults and inspection through ``LiveKitEmulator``'s Python methods.
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
from .webhook_delivery import DeliveryAttempt, Outcome, WebhookOptions
from .webhook_faults import EVERY_EVENT, Reorder, WebhookFaults
from .webhook_wire import SignatureFault
from .webhooks import WebhookSender

__all__ = [
    "DEV_API_KEY",
    "DEV_API_SECRET",
    "EVERY_EVENT",
    "Clock",
    "DeliveryAttempt",
    "EmulatorError",
    "EmulatorJoinError",
    "HeaderAuthError",
    "JoinFailure",
    "LiveKitEmulator",
    "Outcome",
    "RecordedRequest",
    "Reorder",
    "RoomEvent",
    "RoomEventKind",
    "RoomEventListener",
    "RoomServiceError",
    "SignatureFault",
    "TwirpCode",
    "WebhookFaults",
    "WebhookOptions",
    "WebhookSender",
    "main",
    "serve",
]
