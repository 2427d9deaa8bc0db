"""LiveKit's room-agnostic calls go out under one pre-signed token with exactly their grants."""

from __future__ import annotations

import uuid
from datetime import timedelta

import aiohttp
from livekit import api

from favorited.livekit.gateway import LiveKitRoomGateway
from favorited.livekit.server_token import ServerToken
from favorited.livekit_emulator import LiveKitEmulator
from tests.conftest import LIVEKIT_KEY, LIVEKIT_SECRET


async def test_room_agnostic_calls_share_one_token_and_room_calls_sign_their_own(
    emulator: LiveKitEmulator,
) -> None:
    name = f"server-token-{uuid.uuid4().hex[:8]}"
    async with aiohttp.ClientSession() as session:
        server = ServerToken(
            url=emulator.url, api_key=LIVEKIT_KEY, api_secret=LIVEKIT_SECRET, session=session
        )
        client = api.LiveKitAPI(emulator.url, LIVEKIT_KEY, LIVEKIT_SECRET, session=session)
        gateway = LiveKitRoomGateway(client, server=server.client, timeout_s=2)
        await gateway.create_room(name=name, empty_timeout_s=60, max_participants=5, metadata="")
        listed = await gateway.list_rooms([name])
        await gateway.update_room_metadata(name, '{"k": 1}')
        await gateway.delete_room(name)

    assert list(listed) == [name]
    calls = emulator.requests[-4:]
    assert [c.method for c in calls] == [
        "CreateRoom",
        "ListRooms",
        "UpdateRoomMetadata",
        "DeleteRoom",
    ]
    assert all(c.status == 200 for c in calls)
    shared = [calls[0].claims, calls[1].claims, calls[3].claims]
    assert shared[0] is not None
    video = shared[0]["video"]  # with livekit-api's default media grants, as its own tokens have
    assert (video["roomCreate"], video["roomList"]) == (True, True)
    assert "roomAdmin" not in video and "room" not in video
    assert shared[0]["exp"] - shared[0]["nbf"] == 600
    assert shared[1] == shared[0] and shared[2] == shared[0]
    own = calls[2].claims
    assert own is not None and (own["video"]["roomAdmin"], own["video"]["room"]) == (True, name)
    assert "roomCreate" not in own["video"]


async def test_the_token_is_renewed_once_half_its_life_is_gone() -> None:
    now = 1_000.0
    async with aiohttp.ClientSession() as session:
        server = ServerToken(
            url="http://127.0.0.1:1",
            api_key=LIVEKIT_KEY,
            api_secret=LIVEKIT_SECRET,
            session=session,
            ttl=timedelta(minutes=10),
            clock=lambda: now,
        )
        first = server.client()
        now += 299.9
        assert server.client() is first
        now += 0.1
        renewed = server.client()
        assert renewed is not first
        assert server.client() is renewed
