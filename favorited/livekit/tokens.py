"""LiveKitTokenMinter: participant access tokens with grants by role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from livekit import api

from favorited.domain import models


class LiveKitTokenMinter:
    """Implements favorited.domain.ports.TokenMinter.

    A HOST may publish media and data and subscribe; a VIEWER may only subscribe.
    """

    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        client_url: str,
        ttl: timedelta,
    ) -> None:
        self._api_key = api_key
        self._api_secret = api_secret
        self._client_url = client_url
        self._ttl = ttl

    @property
    def client_url(self) -> str:
        return self._client_url

    def mint(
        self, *, room_name: str, identity: str, name: str, metadata: str, role: models.Role
    ) -> tuple[str, datetime]:
        host = role is models.Role.HOST
        grants = api.VideoGrants(
            room_join=True,
            room=room_name,
            can_publish=host,
            can_publish_data=host,
            can_subscribe=True,
        )
        token = (
            api.AccessToken(self._api_key, self._api_secret)
            .with_identity(identity)
            .with_name(name)
            .with_metadata(metadata)
            .with_ttl(self._ttl)
            .with_grants(grants)
        )
        jwt_text = token.to_jwt()
        # Report the exact expiry AccessToken stamped (whole seconds, its own clock).
        exp = jwt.decode(jwt_text, options={"verify_signature": False})["exp"]
        return jwt_text, datetime.fromtimestamp(int(exp), UTC)
