"""A webhook endpoint for tests: verifies like a real service would, records, can misbehave."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from livekit import api

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


@dataclass(frozen=True, slots=True)
class Received:
    """One POST as it arrived, and what the real ``WebhookReceiver`` made of it."""

    body: bytes
    headers: Mapping[str, str]
    event: api.WebhookEvent | None
    error: Exception | None

    @property
    def authorization(self) -> str:
        return self.headers.get("Authorization", "")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


class RecordingReceiver:
    """Answers 401 to what ``WebhookReceiver.receive`` rejects, else the scripted reply (200).

    ``reply(...)`` scripts the next answers, in order; ``hold(n)`` keeps the next ``n``
    requests open until ``release()``.
    """

    def __init__(self, api_key: str, api_secret: str) -> None:
        self._webhooks = api.WebhookReceiver(api.TokenVerifier(api_key, api_secret))
        self.requests: list[Received] = []
        self._replies: deque[Reply] = deque()
        self._to_hold = 0
        self._release = asyncio.Event()
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/livekit/webhook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/livekit/webhook"

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def reply(self, *replies: int | Reply) -> None:
        """Answer the next requests with these statuses (or full replies), then 200 again."""
        self._replies.extend(r if isinstance(r, Reply) else Reply(r) for r in replies)

    def hold(self, n: int = 1) -> None:
        """Keep the next ``n`` requests open until ``release()``."""
        self._to_hold += n

    def release(self) -> None:
        self._release.set()

    @property
    def events(self) -> list[api.WebhookEvent]:
        """Verified events, in arrival order."""
        return [r.event for r in self.requests if r.event is not None]

    @property
    def names(self) -> list[str]:
        return [e.event for e in self.events]

    async def wait_for(self, predicate: Callable[[list[Received]], bool]) -> None:
        while not predicate(self.requests):
            changed = self._changed
            await changed.wait()

    async def wait_for_requests(self, count: int) -> None:
        await self.wait_for(lambda requests: len(requests) >= count)

    async def _handle(self, request: web.Request) -> web.Response:
        # The exact bytes, decoded: never a re-serialized body.
        body = await request.read()
        try:
            event = self._webhooks.receive(body.decode(), request.headers.get("Authorization", ""))
            error = None
        except Exception as exc:  # noqa: BLE001 - the SDK raises bare Exception for hash errors
            event, error = None, exc
        self.requests.append(Received(body, dict(request.headers), event, error))
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        if self._to_hold:
            self._to_hold -= 1
            await self._release.wait()
        if error is not None:
            return web.Response(status=401, text="invalid webhook signature")
        reply = self._replies.popleft() if self._replies else Reply()
        return web.Response(status=reply.status, headers=dict(reply.headers))
