"""``LiveKitEmulator``: the HTTP server plus the test-control API around it."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING

from livekit.protocol import models

from .auth import ApiKeyAuthenticator, validate_credentials
from .background import TaskSupervisor
from .client_routes import add_client_routes
from .faults import FaultInjector
from .rooms import Clock, RoomRegistry
from .roomservice import room_service_methods
from .twirp import RecordedRequest, create_app, serve_app
from .webhooks import WebhookSender

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from aiohttp import web

    from .events import RoomEvent, RoomEventListener
    from .webhook_delivery import WebhookOptions

# Only a safety net: stop() releases hung calls itself, so shutdown normally takes milliseconds.
SHUTDOWN_TIMEOUT_S = 5.0
REQUESTS_KEPT = 10_000  # recorded requests kept for inspection (tests read a handful)


class LiveKitEmulator:
    """A LiveKit server stand-in, reachable by the unmodified ``livekit-api`` client.

    Everything except the HTTP surface (fault switches, ``connect``/``disconnect``, state
    inspection) is plain Python, for tests only; the service under test can't reach it.
    """

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Clock = time.time,
        listeners: Iterable[RoomEventListener] = (),
        webhook_urls: Iterable[str] = (),
        webhook_options: WebhookOptions | None = None,
        room_check_interval_s: float | None = None,
        requests_kept: int = REQUESTS_KEPT,
    ) -> None:
        """Build a stopped emulator; ``start()`` (or ``async with``) serves it.

        Args:
            clock: epoch seconds for room times and the empty/departure timeouts.
            listeners: called synchronously with every room event.
            webhook_urls: where to POST signed webhooks (more via ``add_webhook_url``).
            webhook_options: delivery settings and faults; signing defaults to the API key.
            room_check_interval_s: run ``close_expired_rooms()`` this often in the
                background (LiveKit: 1 s). None, for tests, means only when called.
            requests_kept: how many of the latest requests ``requests`` keeps.
        """
        validate_credentials(api_key, api_secret)
        self._host = host
        self._port = port
        self._listeners = list(listeners)
        self._authenticator = ApiKeyAuthenticator(api_key, api_secret)
        self._rooms = RoomRegistry(clock=clock, on_event=self._emit)
        self._faults = FaultInjector()
        self._webhooks = WebhookSender(
            api_key=api_key, api_secret=api_secret, urls=webhook_urls, options=webhook_options
        )
        self._room_check_interval_s = room_check_interval_s
        self._background = TaskSupervisor("livekit-emulator room checks")
        # The most recent requests only: `favorited dev` runs the emulator for as long as it is
        # up, and every RoomService call would otherwise be kept forever.
        self._requests: deque[RecordedRequest] = deque(maxlen=requests_kept)
        self._runner: web.AppRunner | None = None
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving; with ``port=0`` a free port is picked (see ``url``)."""
        if self._runner is not None or self._stopped:
            raise RuntimeError("LiveKitEmulator can only be started once")
        try:
            await self._webhooks.start()
            await self._background.start()
            if self._room_check_interval_s is not None:
                self._background.spawn(
                    self._check_rooms_forever(self._room_check_interval_s), name="room checks"
                )
            app = create_app(
                methods=room_service_methods(self._rooms),
                authenticator=self._authenticator,
                faults=self._faults,
                record=self._requests.append,
                extra_routes=lambda app: add_client_routes(
                    app, connect=self.connect, disconnect=self.disconnect
                ),
            )
            self._runner = await serve_app(app, self._host, self._port, SHUTDOWN_TIMEOUT_S)
            self._port = self._runner.addresses[0][1]
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop serving, then stop the room checks and the webhook sender.

        Hung calls are answered ``unavailable`` first, and webhooks are abandoned unless
        ``WebhookOptions.drain_on_stop``, so this is prompt.
        """
        self._stopped = True
        self._faults.close()
        runner, self._runner = self._runner, None
        try:
            if runner is not None:
                await runner.cleanup()
        finally:
            try:
                await self._background.stop()
            finally:
                # Last, so events caused by the final RoomService calls are still queued.
                await self._webhooks.stop()

    async def __aenter__(self) -> LiveKitEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` to give the service as its LiveKit URL."""
        if self._runner is None:
            raise RuntimeError("LiveKitEmulator is not running")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    # -- fault injection -------------------------------------------------------------------

    def fail_next(self, n: int, code: str = "unavailable") -> None:
        """Answer the next ``n`` RoomService calls with this Twirp error code."""
        self._faults.fail_next(n, code)

    def fail_all(self, code: str = "unavailable") -> None:
        """Answer every RoomService call with this Twirp error code until ``heal()``."""
        self._faults.fail_all(code)

    def hang_all(self) -> None:
        """Hold RoomService calls open (no answer) until ``heal()`` or ``stop()``."""
        self._faults.hang_all()

    def heal(self) -> None:
        """Remove every fault; held calls proceed and are served normally."""
        self._faults.heal()

    async def wait_for_hung_requests(self, count: int = 1) -> None:
        """Return once ``count`` calls are being held by ``hang_all()``."""
        await self._faults.wait_for_hung(count)

    # -- webhooks --------------------------------------------------------------------------

    @property
    def webhooks(self) -> WebhookSender:
        """The webhook sender: ``faults``, ``attempts``, ``wait_idle()``, ``wait_delivered()``."""
        return self._webhooks

    def add_webhook_url(self, url: str) -> None:
        """Also deliver every later event to ``url``."""
        self._webhooks.add_url(url)

    # -- room lifecycle --------------------------------------------------------------------

    def close_expired_rooms(self) -> list[str]:
        """Close rooms past their empty/departure timeout by the injected clock.

        Emits ``participant_left`` (ROOM_CLOSED) for anyone left inside, e.g. agents, then
        ``room_finished``. Returns the names of the rooms closed.
        """
        return self._rooms.close_expired_rooms()

    async def _check_rooms_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.close_expired_rooms()

    # -- simulated clients -----------------------------------------------------------------

    def connect(self, token: str) -> models.ParticipantInfo:
        """What a WebRTC client joining with this access token would cause.

        An earlier session of the same identity is evicted (DUPLICATE_IDENTITY) and the new
        one gets a fresh ``PA_`` sid.

        Raises:
            EmulatorJoinError: with the ``reason`` LiveKit would refuse the join for.
        """
        claims = self._authenticator.verify_join_token(token)
        return self._rooms.join(claims)

    def abort(
        self,
        token: str,
        reason: models.DisconnectReason = models.DisconnectReason.JOIN_FAILURE,
    ) -> models.ParticipantInfo:
        """A client with this token signals in but never becomes ACTIVE.

        Emits ``participant_connection_aborted`` (no joined, no left); an earlier session
        of the same identity is still evicted first. Returns the participant's final info.

        Raises:
            EmulatorJoinError: as ``connect`` would.
        """
        claims = self._authenticator.verify_join_token(token)
        return self._rooms.abort(claims, reason)

    def disconnect(self, room: str, identity: str) -> models.ParticipantInfo:
        """The participant's client leaves (CLIENT_INITIATED); returns its final info.

        Raises:
            RoomServiceError: not_found if no such participant.
        """
        return self._rooms.remove_participant(
            room, identity, models.DisconnectReason.CLIENT_INITIATED
        )

    # -- inspection ------------------------------------------------------------------------

    @property
    def rooms(self) -> Mapping[str, models.Room]:
        """Read-only snapshot: room name → copy of the room."""
        return MappingProxyType(self._rooms.snapshot())

    def participants(self, room: str) -> list[models.ParticipantInfo]:
        """Copies of the room's participants (empty for an unknown room)."""
        return self._rooms.list_participants(room)

    @property
    def requests(self) -> list[RecordedRequest]:
        """The latest HTTP requests served (`requests_kept` of them), oldest first (a copy)."""
        return list(self._requests)

    def add_listener(self, listener: RoomEventListener) -> None:
        """Subscribe to room/participant events (called synchronously, in order)."""
        self._listeners.append(listener)

    def _emit(self, event: RoomEvent) -> None:
        for listener in self._listeners:
            listener(event)
        self._webhooks.send(event)
