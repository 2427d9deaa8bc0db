"""Both auth layers: the plain-text middleware 401s and the per-method grant checks."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from typing import TYPE_CHECKING

import jwt
import pytest
from livekit import api

from tests.support.waiting import until

from ._support import API_KEY, API_SECRET, OTHER_SECRET, bearer, mint, raw_call

if TYPE_CHECKING:
    import aiohttp

    from favorited.livekit_emulator import LiveKitEmulator

LIST_ROOMS = "/twirp/livekit.RoomService/ListRooms"
LIST_ROOMS_BODY = api.ListRoomsRequest().SerializeToString()


async def test_room_list_token_cannot_create_rooms(emulator: LiveKitEmulator) -> None:
    token = mint(api.VideoGrants(room_list=True))
    async with api.LiveKitAPI.with_token(token, emulator.url) as client:
        rooms = await client.room.list_rooms(api.ListRoomsRequest())
        with pytest.raises(api.ServerError) as exc:
            await client.room.create_room(api.CreateRoomRequest(name="stage"))

    assert list(rooms.rooms) == []
    assert (exc.value.code, exc.value.status) == (api.ServerErrorCode.UNAUTHENTICATED, 401)
    assert exc.value.message == "permissions denied"
    assert emulator.rooms == {}


async def test_room_create_token_cannot_list_rooms(emulator: LiveKitEmulator) -> None:
    async with api.LiveKitAPI.with_token(
        mint(api.VideoGrants(room_create=True)), emulator.url
    ) as client:
        await client.room.create_room(api.CreateRoomRequest(name="stage"))
        with pytest.raises(api.ServerError) as exc:
            await client.room.list_rooms(api.ListRoomsRequest())

    assert exc.value.code == "unauthenticated"


async def test_room_admin_is_scoped_to_its_room(
    emulator: LiveKitEmulator, lkapi: api.LiveKitAPI
) -> None:
    for name in ("a", "b"):
        await lkapi.room.create_room(api.CreateRoomRequest(name=name))
    token = mint(api.VideoGrants(room_admin=True, room="a"))

    async with api.LiveKitAPI.with_token(token, emulator.url) as client:
        own = await client.room.list_participants(api.ListParticipantsRequest(room="a"))
        with pytest.raises(api.ServerError) as exc:
            await client.room.list_participants(api.ListParticipantsRequest(room="b"))
        with pytest.raises(api.ServerError) as delete_exc:
            await client.room.delete_room(api.DeleteRoomRequest(room="a"))

    assert list(own.participants) == []
    assert (exc.value.code, exc.value.status) == ("unauthenticated", 401)
    assert delete_exc.value.code == "unauthenticated"
    assert emulator.requests[-2].status == 401


@pytest.mark.parametrize(
    "path",
    [
        "GetParticipant",
        "RemoveParticipant",
        "UpdateParticipant",
        "UpdateRoomMetadata",
        "ListParticipants",
    ],
)
async def test_admin_methods_need_room_admin(
    emulator: LiveKitEmulator, http: aiohttp.ClientSession, path: str
) -> None:
    # Everything except roomAdmin, for the right room.
    grants = api.VideoGrants(room_create=True, room_list=True, room_join=True, room="a")
    body = api.RoomParticipantIdentity(room="a", identity="x").SerializeToString()

    response = await raw_call(
        http,
        emulator.url,
        f"/twirp/livekit.RoomService/{path}",
        body,
        authorization=bearer(grants, identity="svc"),
    )

    assert response.status == 401
    assert response.json() == {"code": "unauthenticated", "msg": "permissions denied"}


async def test_missing_authorization_means_no_grants(
    emulator: LiveKitEmulator, http: aiohttp.ClientSession
) -> None:
    response = await raw_call(http, emulator.url, LIST_ROOMS, LIST_ROOMS_BODY)

    assert response.status == 401
    assert response.content_type == "application/json"
    assert response.json() == {"code": "unauthenticated", "msg": "permissions denied"}
    assert emulator.requests[-1].claims is None


def _expired() -> str:
    return mint(api.VideoGrants(room_list=True), ttl=timedelta(minutes=-5))


def _without_exp() -> str:
    claims = {"iss": API_KEY, "sub": "", "video": {"roomList": True}}
    return jwt.encode(claims, API_SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    ("authorization", "expected_body"),
    [
        ("Basic dXNlcjpwYXNz", "invalid authorization header. Must start with Bearer "),
        ("bearer " + mint(api.VideoGrants(room_list=True)), "invalid authorization header"),
        ("Bearer not-a-jwt", "invalid authorization token"),
        (
            "Bearer " + mint(api.VideoGrants(room_list=True), api_key="APIother"),
            "invalid API key",
        ),
        (
            "Bearer " + mint(api.VideoGrants(room_list=True), api_secret=OTHER_SECRET),
            "invalid authorization token: Signature verification failed",
        ),
        ("Bearer " + _expired(), "invalid authorization token: Signature has expired"),
        ("Bearer " + _without_exp(), 'invalid authorization token: Token is missing the "exp"'),
    ],
    ids=[
        "not-bearer",
        "lowercase-bearer",
        "garbled",
        "unknown-key",
        "wrong-secret",
        "expired",
        "no-exp",
    ],
)
async def test_bad_authorization_is_plain_text_401(
    emulator: LiveKitEmulator,
    http: aiohttp.ClientSession,
    authorization: str,
    expected_body: str,
) -> None:
    response = await raw_call(
        http, emulator.url, LIST_ROOMS, LIST_ROOMS_BODY, authorization=authorization
    )

    assert response.status == 401
    assert response.content_type.startswith("text/plain")
    assert response.text.startswith(expected_body)
    assert emulator.requests[-1].status == 401


async def test_middleware_rejects_before_routing(
    emulator: LiveKitEmulator, http: aiohttp.ClientSession
) -> None:
    response = await raw_call(
        http, emulator.url, "/nowhere", method="GET", authorization="Token abc"
    )

    assert response.status == 401
    assert response.content_type.startswith("text/plain")


async def test_sdk_sees_plain_text_401_as_unknown(emulator: LiveKitEmulator) -> None:
    async with api.LiveKitAPI(emulator.url, API_KEY, OTHER_SECRET) as client:
        with pytest.raises(api.ServerError) as exc:
            await client.room.list_rooms(api.ListRoomsRequest())

    assert (exc.value.code, exc.value.status) == ("unknown", 401)


async def test_token_within_leeway_is_accepted(
    emulator: LiveKitEmulator, http: aiohttp.ClientSession
) -> None:
    recently_expired = mint(api.VideoGrants(room_list=True), ttl=timedelta(seconds=-30))

    response = await raw_call(
        http, emulator.url, LIST_ROOMS, LIST_ROOMS_BODY, authorization=f"Bearer {recently_expired}"
    )

    assert response.status == 200


async def test_a_remembered_token_still_expires(
    emulator: LiveKitEmulator, http: aiohttp.ClientSession
) -> None:
    # Verified tokens are remembered by their text (auth.py); their time claims are checked on
    # every use. This one leaves the 60 s leeway one to two seconds from now.
    expiring = mint(api.VideoGrants(room_list=True), ttl=timedelta(seconds=-58))

    async def status() -> int:
        response = await raw_call(
            http, emulator.url, LIST_ROOMS, LIST_ROOMS_BODY, authorization=f"Bearer {expiring}"
        )
        return response.status

    first = await status()
    await until(lambda: _is(status(), 401))

    assert first == 200
    assert emulator.requests[-1].status == 401


async def _is(status: Awaitable[int], expected: int) -> bool:
    return await status == expected
