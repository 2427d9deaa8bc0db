"""Build and sign webhook requests exactly as LiveKit does (bare JWT, sha256 of the body bytes)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from datetime import timedelta
from typing import Any

from livekit import api

_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def sid(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(12))


def event_body(
    event: str,
    *,
    room_sid: str,
    room_name: str,
    participant_sid: str = "",
    identity: str = "",
    name: str = "",
    joined_at_ms: int = 0,
    can_publish: bool = False,
    event_id: str | None = None,
    created_at: int | None = None,
) -> tuple[str, bytes]:
    """(event id, JSON body) in LiveKit's protojson shape: camelCase, int64 as strings."""
    payload: dict[str, Any] = {
        "event": event,
        "id": event_id or sid("EV_"),
        "createdAt": str(created_at if created_at is not None else int(time.time())),
        "room": {"sid": room_sid, "name": room_name},
    }
    if participant_sid:
        payload["participant"] = {
            "sid": participant_sid,
            "identity": identity,
            "name": name,
            "state": "ACTIVE",
            "joinedAt": str(joined_at_ms // 1000),
            "joinedAtMs": str(joined_at_ms),
            "permission": {"canSubscribe": True, "canPublish": can_publish},
        }
    return payload["id"], json.dumps(payload).encode()


def sign(body: bytes, key: str, secret: str, *, ttl: timedelta = timedelta(minutes=5)) -> str:
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    return api.AccessToken(key, secret).with_ttl(ttl).with_sha256(digest).to_jwt()
