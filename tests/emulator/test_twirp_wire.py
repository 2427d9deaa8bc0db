"""Twirp wire details the SDK can't produce: routing, content types, JSON, error bodies."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from livekit import api

from favorited.livekit_emulator import LiveKitEmulator

from ._support import API_KEY, API_SECRET, bearer, raw_call

if TYPE_CHECKING:
    import aiohttp

PREFIX = "/twirp/livekit.RoomService/"
CREATE = api.VideoGrants(room_create=True)
LIST = api.VideoGrants(room_list=True)


async def test_get_is_bad_route(emulator: LiveKitEmulator, http: aiohttp.ClientSession) -> None:
    response = await raw_call(
        http, emulator.url, PREFIX + "ListRooms", method="GET", authorization=bearer(LIST)
    )

    assert response.status == 404
    assert response.content_type == "application/json"
    body = response.json()
    assert body["code"] == "bad_route"
    assert body["meta"] == {"twirp_invalid_route": f"GET {PREFIX}ListRooms"}


@pytest.mark.parametrize(
    "path",
    [PREFIX + "MutePublishedTrack", PREFIX + "Nope", "/twirp/livekit.Egress/ListEgress", "/"],
)
async def test_unknown_method_is_bad_route(
    emulator: LiveKitEmulator, http: aiohttp.ClientSession, path: str
) -> None:
    response = await raw_call(http, emulator.url, path, authorization=bearer(LIST))

    assert response.status == 404
    assert response.json() == {
        "code": "bad_route",
        "msg": f'no handler for path "{path}"',
        "meta": {"twirp_invalid_route": f"POST {path}"},
    }


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-protobuf", None])
async def test_unexpected_content_type_is_bad_route(
    emulator: LiveKitEmulator, http: aiohttp.ClientSession, content_type: str | None
) -> None:
    response = await raw_call(
        http,
        emulator.url,
        PREFIX + "CreateRoom",
        api.CreateRoomRequest(name="stage").SerializeToString(),
        content_type=content_type,
        authorization=bearer(CREATE),
    )

    assert response.status == 404
    body = response.json()
    assert body["code"] == "bad_route"
    assert body["msg"].startswith("unexpected Content-Type")
    assert emulator.rooms == {}


async def test_content_type_parameters_are_ignored(
    emulator: LiveKitEmulator, http: aiohttp.ClientSession
) -> None:
    response = await raw_call(
        http,
        emulator.url,
        PREFIX + "CreateRoom",
        api.CreateRoomRequest(name="stage").SerializeToString(),
        content_type="Application/Protobuf; charset=utf-8",
        authorization=bearer(CREATE),
    )

    assert response.status == 200
    assert response.content_type == "application/protobuf"
    assert api.Room.FromString(response.body).name == "stage"


async def test_json_request_gets_json_reply(
    emulator: LiveKitEmulator, http: aiohttp.ClientSession
) -> None:
    body = json.dumps({"name": "stage", "maxParticipants": 4, "notAField": True}).encode()

    response = await raw_call(
        http,
        emulator.url,
        PREFIX + "CreateRoom",
        body,
        content_type="application/json",
        authorization=bearer(CREATE),
    )

    assert response.status == 200
    assert response.content_type == "application/json"
    room = response.json()
    assert room["name"] == "stage"
    assert room["max_participants"] == 4
    assert room["empty_timeout"] == 300
    assert room["num_participants"] == 0  # twirp-go emits defaults
    assert room["sid"] == emulator.rooms["stage"].sid


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/json", b"{not json"), ("application/protobuf", b"\xff\xff\xff")],
)
async def test_undecodable_body_is_malformed(
    emulator: LiveKitEmulator, http: aiohttp.ClientSession, content_type: str, body: bytes
) -> None:
    response = await raw_call(
        http,
        emulator.url,
        PREFIX + "CreateRoom",
        body,
        content_type=content_type,
        authorization=bearer(CREATE),
    )

    assert response.status == 400
    assert response.json()["code"] == "malformed"


async def test_not_found_error_body(emulator: LiveKitEmulator, http: aiohttp.ClientSession) -> None:
    response = await raw_call(
        http,
        emulator.url,
        PREFIX + "DeleteRoom",
        api.DeleteRoomRequest(room="ghost").SerializeToString(),
        authorization=bearer(CREATE),
    )

    assert response.status == 404
    assert response.content_type == "application/json"
    assert response.json() == {"code": "not_found", "msg": "requested room does not exist"}


async def test_only_the_latest_requests_are_kept(http: aiohttp.ClientSession) -> None:
    async with LiveKitEmulator(API_KEY, API_SECRET, requests_kept=2) as emulator:
        for method in ("ListRooms", "NoSuchMethod", "ListRooms"):
            await raw_call(http, emulator.url, PREFIX + method, authorization=bearer(LIST))

        assert [(r.method, r.status) for r in emulator.requests] == [
            ("NoSuchMethod", 404),
            ("ListRooms", 200),
        ]
