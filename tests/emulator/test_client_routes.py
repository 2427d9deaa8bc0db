"""The HTTP stand-ins for WebRTC clients: connect with a token, disconnect by identity."""

from __future__ import annotations

import aiohttp
from livekit import api

from favorited.livekit_emulator import LiveKitEmulator

from ._support import join_token


async def test_connect_and_disconnect_over_http(
    emulator: LiveKitEmulator, lkapi: api.LiveKitAPI, http: aiohttp.ClientSession
) -> None:
    await lkapi.room.create_room(api.CreateRoomRequest(name="stage"))
    async with http.post(f"{emulator.url}/_emulator/connect", data=join_token("stage", "ann")) as r:
        assert r.status == 200
        joined = await r.json()
    assert joined["identity"] == "ann" and joined["sid"].startswith("PA_")
    assert [p.sid for p in emulator.participants("stage")] == [joined["sid"]]

    async with http.post(f"{emulator.url}/_emulator/connect", data="not-a-token") as r:
        assert r.status == 403
    async with http.post(
        f"{emulator.url}/_emulator/connect", data=join_token("no-such-room", "bob")
    ) as r:
        assert r.status == 403

    body = {"room": "stage", "identity": "ann"}
    async with http.post(f"{emulator.url}/_emulator/disconnect", json=body) as r:
        assert r.status == 200
    assert emulator.participants("stage") == []
    async with http.post(f"{emulator.url}/_emulator/disconnect", json=body) as r:
        assert r.status == 404
    async with http.post(f"{emulator.url}/_emulator/disconnect", data="{}") as r:
        assert r.status == 400
