"""LiveKit webhook requests, built and signed up front exactly as LiveKit signs them.

Signing (an HS256 JWT whose `sha256` claim is the body's hash) happens before the timed part of
a scenario, so the load generator only sends bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from livekit import api

_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def sid(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(12))


@dataclass(frozen=True, slots=True)
class Webhook:
    event_id: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Signer:
    key: str
    secret: str
    ttl: timedelta = timedelta(minutes=30)

    def participant(
        self,
        event: str,
        *,
        room_sid: str,
        room_name: str,
        participant_sid: str,
        identity: str,
        joined_at_ms: int,
    ) -> Webhook:
        payload: dict[str, Any] = _base(event, room_sid, room_name)
        payload["participant"] = {
            "sid": participant_sid,
            "identity": identity,
            "name": identity,
            "state": "ACTIVE",
            "joinedAt": str(joined_at_ms // 1000),
            "joinedAtMs": str(joined_at_ms),
            "permission": {"canSubscribe": True, "canPublish": False},
        }
        return self._signed(payload)

    def room(self, event: str, *, room_sid: str, room_name: str) -> Webhook:
        return self._signed(_base(event, room_sid, room_name))

    def _signed(self, payload: dict[str, Any]) -> Webhook:
        body = json.dumps(payload).encode()
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        token = api.AccessToken(self.key, self.secret).with_ttl(self.ttl).with_sha256(digest)
        return Webhook(
            event_id=payload["id"],
            body=body,
            headers={
                "Authorization": token.to_jwt(),
                "Content-Type": "application/webhook+json",
            },
        )


def _base(event: str, room_sid: str, room_name: str) -> dict[str, Any]:
    return {
        "event": event,
        "id": sid("EV_"),
        "createdAt": str(int(time.time())),
        "room": {"sid": room_sid, "name": room_name},
    }
