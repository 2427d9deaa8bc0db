"""The access tokens we sign ourselves carry exactly the claims livekit-api's AccessToken would."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from livekit import api

from favorited.domain import models
from favorited.livekit.tokens import LiveKitTokenMinter

_KEY = "lk-key"
_SECRET = "lk-secret-" + "x" * 32
_TTL = timedelta(hours=24)


def _reference(*, room: str, identity: str, name: str, metadata: str, host: bool) -> str:
    return (
        api.AccessToken(_KEY, _SECRET)
        .with_identity(identity)
        .with_name(name)
        .with_metadata(metadata)
        .with_ttl(_TTL)
        .with_grants(
            api.VideoGrants(
                room_join=True,
                room=room,
                can_publish=host,
                can_publish_data=host,
                can_subscribe=True,
            )
        )
        .to_jwt()
    )


@pytest.mark.parametrize("role", [models.Role.HOST, models.Role.VIEWER])
@pytest.mark.parametrize(("name", "metadata"), [('Zoë "x"', '{"a": 1}'), ("Bob", "")])
def test_minted_token_has_the_claims_of_livekit_access_token(
    role: models.Role, name: str, metadata: str
) -> None:
    minter = LiveKitTokenMinter(
        api_key=_KEY, api_secret=_SECRET, client_url="ws://livekit", ttl=_TTL
    )
    before = int(time.time())
    token, expire_time = minter.mint(
        room_name="room-1", identity="user-1", name=name, metadata=metadata, role=role
    )
    reference = _reference(
        room="room-1",
        identity="user-1",
        name=name,
        metadata=metadata,
        host=role is models.Role.HOST,
    )
    after = int(time.time())

    ours = jwt.decode(token, _SECRET, algorithms=["HS256"])
    theirs = jwt.decode(reference, _SECRET, algorithms=["HS256"])
    assert jwt.get_unverified_header(token) == jwt.get_unverified_header(reference)
    # Same claims, in the same order; only the clock-derived ones may differ by the seconds
    # between the two mints.
    assert list(ours) == list(theirs)
    for stamp in ("nbf", "exp"):
        assert abs(ours.pop(stamp) - theirs.pop(stamp)) <= after - before
    assert ours == theirs
    assert expire_time == datetime.fromtimestamp(
        jwt.decode(token, _SECRET, algorithms=["HS256"])["exp"], UTC
    )
    # LiveKit's own verifier accepts it and reads the grants back.
    claims = api.TokenVerifier(_KEY, _SECRET).verify(token)
    assert claims.video is not None and claims.video.room == "room-1"
    assert claims.video.can_publish is (role is models.Role.HOST)


def test_minted_token_expires_after_the_ttl() -> None:
    minter = LiveKitTokenMinter(
        api_key=_KEY, api_secret=_SECRET, client_url="ws://livekit", ttl=timedelta(hours=2)
    )
    before = datetime.now(UTC).replace(microsecond=0)
    _, expire_time = minter.mint(
        room_name="r", identity="u", name="n", metadata="", role=models.Role.VIEWER
    )
    assert before + timedelta(hours=2) <= expire_time <= datetime.now(UTC) + timedelta(hours=2)
