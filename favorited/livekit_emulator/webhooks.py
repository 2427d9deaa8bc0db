"""``WebhookSender``: the emulator's webhook side, one ``ResourceURLNotifier`` per URL.

Room events go through the reorder stage (off unless a ``Reorder`` rule is on), then to
every URL's queues, where each delivery gets its own fault verdict. Every attempt is logged
in ``attempts``; tests wait on ``wait_idle()`` / ``wait_delivered()`` instead of sleeping.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp

from .auth import validate_credentials
from .background import TaskSupervisor
from .webhook_delivery import Delivery, DeliveryAttempt, Outcome, WebhookOptions, deliver
from .webhook_faults import FaultDice, Reorderer, WebhookFaults
from .webhook_queues import QueuedEvent, UrlQueues
from .webhook_wire import sign, to_webhook_event

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from .events import RoomEvent


class WebhookSender:
    """Signs and delivers room events to webhook URLs the way LiveKit does.

    ``send`` is a ``RoomEventListener``: synchronous, never blocks. Deliveries only run
    between ``start()`` and ``stop()``; events sent before ``start()`` wait in their queues.
    """

    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        urls: Iterable[str] = (),
        options: WebhookOptions | None = None,
    ) -> None:
        self._options = options or WebhookOptions()
        self._api_key = self._options.api_key or api_key
        self._api_secret = self._options.api_secret or api_secret
        # Checked now: a signing failure later would kill the delivery workers.
        validate_credentials(self._api_key, self._api_secret)
        self._dice = FaultDice(self._options.faults)
        self._reorderer = Reorderer()
        self._supervisor = TaskSupervisor("livekit-emulator webhooks")
        self._session: aiohttp.ClientSession | None = None
        self._queues: dict[str, UrlQueues] = {}
        self._attempts: list[DeliveryAttempt] = []
        self._changed = asyncio.Event()
        self._stopped = False
        for url in urls:
            self.add_url(url)

    # -- configuration ---------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        """The webhook URLs, in the order added."""
        return list(self._queues)

    def add_url(self, url: str) -> None:
        """Deliver every later event to ``url`` too (adding it twice changes nothing)."""
        if url in self._queues:
            return
        self._queues[url] = UrlQueues(
            url,
            send=self._send,
            supervisor=self._supervisor,
            options=self._options,
            record=self._record,
            on_idle=self._notify,
            clock=self._options.queue_clock,
        )

    @property
    def faults(self) -> WebhookFaults:
        """The faults in force; assign a new ``WebhookFaults`` to change them."""
        return self._dice.faults

    @faults.setter
    def faults(self, faults: WebhookFaults) -> None:
        self._dice.configure(faults)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP session and start delivering."""
        if self._stopped:
            raise RuntimeError("WebhookSender can only be started once")
        self._session = aiohttp.ClientSession()
        await self._supervisor.start()
        for queues in self._queues.values():
            queues.start_workers()

    async def stop(self, *, drain: bool | None = None) -> None:
        """Stop delivering: abandon what is queued, or with ``drain`` (default from the
        options) first send it, held reorderings included, for up to ``drain_timeout_s``.
        """
        if self._stopped:
            return
        drain = self._options.drain_on_stop if drain is None else drain
        if drain:
            for event in self._reorderer.flush():
                self._fan_out(event)
        self._stopped = True
        timeout_s = self._options.drain_timeout_s if drain else 0.0
        try:
            await self._supervisor.stop(drain_timeout_s=timeout_s)
        finally:
            session, self._session = self._session, None
            if session is not None:
                await session.close()
            self._notify()

    # -- the listener ----------------------------------------------------------------------

    def send(self, event: RoomEvent) -> None:
        """Queue ``event`` for every URL (after any reordering); ignored once stopped."""
        if self._stopped:
            return
        for ready in self._reorderer.push(event, self._dice.faults.reorder):
            self._fan_out(ready)

    def _fan_out(self, event: RoomEvent) -> None:
        for queues in self._queues.values():
            queues.enqueue(event, self._dice.roll(event))

    async def _send(self, url: str, item: QueuedEvent) -> None:
        session = self._session
        if session is None:
            raise RuntimeError("WebhookSender is not running")
        # Signed when its turn comes, as LiveKit does, then reused for every retry.
        request = sign(
            to_webhook_event(item.event),
            api_key=self._api_key,
            api_secret=self._api_secret,
            fault=item.verdict.signature,
        )
        delivery = Delivery(url=url, event_id=item.event.id, event=item.event.kind.value)
        sent = await deliver(session, delivery, request, options=self._options, record=self._record)
        if sent and item.verdict.duplicate:
            duplicate = Delivery(url, delivery.event_id, delivery.event, duplicate=True)
            await deliver(session, duplicate, request, options=self._options, record=self._record)

    # -- inspection ------------------------------------------------------------------------

    @property
    def attempts(self) -> list[DeliveryAttempt]:
        """Every delivery attempt and drop so far, oldest first (a copy)."""
        return list(self._attempts)

    @property
    def idle(self) -> bool:
        """True when no URL has anything queued or in flight (held reorderings aside)."""
        return all(queues.idle for queues in self._queues.values())

    async def wait_idle(self) -> None:
        """Return once every queue is empty and nothing is in flight.

        Raises:
            RuntimeError: the sender stopped first.
        """
        await self.wait_for(lambda _attempts: self.idle)

    async def wait_delivered(
        self, event_id: str, *, url: str | None = None, count: int = 1
    ) -> None:
        """Return once ``event_id`` got ``count`` 2xx answers (from ``url``, or any URL)."""

        def delivered(attempts: Sequence[DeliveryAttempt]) -> bool:
            hits = [
                a
                for a in attempts
                if a.event_id == event_id
                and a.outcome is Outcome.DELIVERED
                and (url is None or a.url == url)
            ]
            return len(hits) >= count

        await self.wait_for(delivered)

    async def wait_for(self, predicate: Callable[[Sequence[DeliveryAttempt]], bool]) -> None:
        """Return once ``predicate(attempts)`` holds; re-checked after every change.

        Raises:
            RuntimeError: the sender stopped while the predicate was still false.
        """
        while not predicate(self._attempts):
            if self._stopped and self._session is None:
                raise RuntimeError("WebhookSender stopped before the condition held")
            changed = self._changed
            await changed.wait()

    def _record(self, attempt: DeliveryAttempt) -> None:
        self._attempts.append(attempt)
        self._notify()

    def _notify(self) -> None:
        # A fresh Event per change: waiters re-check their predicate, nobody has to clear.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
