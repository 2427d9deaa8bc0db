"""A join as the API hands it to the store, with everything but its livestream and user fixed."""

from __future__ import annotations

import uuid

from favorited.domain import models
from favorited.store.participants import PendingJoin


def pending_join(livestream_id: str, user: str, request_id: str | None = None) -> PendingJoin:
    return PendingJoin(
        participant_id=str(uuid.uuid4()),
        livestream_id=livestream_id,
        user_id=user,
        display_name=user,
        role=models.Role.VIEWER,
        metadata={},
        request_id=request_id,
        request_ttl_s=3600,
    )
