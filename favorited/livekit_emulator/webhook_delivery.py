"""Sending one event to one URL with LiveKit's retry policy (go-retryablehttp defaults).

Up to ``max_retries`` retries (4, so 5 attempts) on transport errors, 429 and every 5xx but
501, waiting ``backoff_base_s * 2**n`` (1, 2, 4, 8 s) capped at ``backoff_max_s``, or the
``Retry-After`` of a 429/503. Any other status, 3xx and 4xx included, ends the delivery.
Every attempt resends the same bytes with the same JWT.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

import aiohttp

from .webhook_faults import WebhookFaults

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .webhook_wire import SignedRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    """How the emulator delivers webhooks; the defaults are LiveKit's.

    Attributes:
        api_key: signing key (the ``iss`` claim); None means the emulator's API key.
        api_secret: signing secret; None means the emulator's API secret.
        backoff_base_s: first retry wait; tests use ~0.01.
        backoff_max_s: cap on one backoff wait (not on a Retry-After, as in LiveKit).
        max_retries: retries after the first attempt.
        attempt_timeout_s: limit on one attempt, None for none. Real LiveKit has no limit,
            so a hung receiver stalls its room's queue; a default keeps tests from wedging.
        max_queue_depth: events a room's queue may hold before new ones are dropped.
        max_queue_age_s: an event queued longer than this is dropped instead of sent.
        drain_on_stop: on ``stop()``, finish queued deliveries (LiveKit's ``Stop(false)``)
            for up to ``drain_timeout_s`` instead of abandoning them (``Stop(true)``).
        faults: faults injected from the start (see ``WebhookFaults``).
        sleep: how backoff waits; tests may pass a recorder that returns at once.
        queue_clock: seconds on any monotonic scale, for ``max_queue_age_s``. Not the
            emulator's room clock: advancing that in a test must not age queued events.
    """

    api_key: str | None = None
    api_secret: str | None = None
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    max_retries: int = 4
    attempt_timeout_s: float | None = 10.0
    max_queue_depth: int = 200
    max_queue_age_s: float = 30.0
    drain_on_stop: bool = False
    drain_timeout_s: float = 5.0
    faults: WebhookFaults = field(default_factory=WebhookFaults)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    queue_clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.max_queue_depth < 1:
            raise ValueError("max_queue_depth must be >= 1")
        if min(self.backoff_base_s, self.backoff_max_s, self.max_queue_age_s) < 0:
            raise ValueError("backoff and queue age limits must be >= 0")


class Outcome(enum.StrEnum):
    """What became of one delivery attempt."""

    DELIVERED = "delivered"  # 2xx
    REJECTED = "rejected"  # a status LiveKit doesn't retry (3xx, 4xx, 501): done
    RETRY = "retry"  # failed, another attempt follows after ``retry_in_s``
    GAVE_UP = "gave_up"  # failed on the last attempt; the event is abandoned
    DROPPED = "dropped"  # never sent: injected drop, queue full or queued too long


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One row of the delivery log tests assert on.

    ``attempt`` counts from 1 within a delivery (0 for a drop); ``duplicate`` marks the
    resend the duplicate fault adds after a success; ``error`` holds the transport error
    or the drop reason.
    """

    event_id: str
    event: str
    url: str
    attempt: int
    outcome: Outcome
    status: int | None = None
    error: str | None = None
    retry_in_s: float | None = None
    duplicate: bool = False


def is_retryable(status: int | None) -> bool:
    """go-retryablehttp's DefaultRetryPolicy; None is a transport error."""
    if status is None or status in (0, 429):
        return True
    return status >= 500 and status != 501


def retry_delay_s(
    retry_index: int, status: int | None, retry_after: str | None, options: WebhookOptions
) -> float:
    """Wait before retry number ``retry_index`` (from 0): DefaultBackoff."""
    if status in (429, 503):
        honoured = parse_retry_after_s(retry_after)
        if honoured is not None:
            return honoured
    return float(min(options.backoff_base_s * 2**retry_index, options.backoff_max_s))


def parse_retry_after_s(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event bound for one URL: what to send and how to label the log rows."""

    url: str
    event_id: str
    event: str
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class _Row:
    delivery: Delivery
    number: int
    status: int | None
    error: str | None

    def attempt(self, outcome: Outcome, *, retry_in_s: float | None = None) -> DeliveryAttempt:
        return DeliveryAttempt(
            event_id=self.delivery.event_id,
            event=self.delivery.event,
            url=self.delivery.url,
            attempt=self.number,
            outcome=outcome,
            status=self.status,
            error=self.error,
            retry_in_s=retry_in_s,
            duplicate=self.delivery.duplicate,
        )


async def deliver(
    session: aiohttp.ClientSession,
    delivery: Delivery,
    request: SignedRequest,
    *,
    options: WebhookOptions,
    record: Callable[[DeliveryAttempt], None],
) -> bool:
    """POST until done or out of retries; True when the receiver answered 2xx."""
    timeout = aiohttp.ClientTimeout(total=options.attempt_timeout_s)
    for attempt in range(1, options.max_retries + 2):
        status: int | None = None
        retry_after: str | None = None
        error: str | None = None
        try:
            # No redirects: LiveKit counts a 3xx as done, and a redirect would change the
            # bytes' destination without re-signing.
            async with session.post(
                delivery.url,
                data=request.body,
                headers=dict(request.headers),
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"

        row = _Row(delivery, attempt, status, error)
        if not is_retryable(status):
            delivered = status is not None and 200 <= status < 300
            record(row.attempt(Outcome.DELIVERED if delivered else Outcome.REJECTED))
            return delivered
        if attempt > options.max_retries:
            record(row.attempt(Outcome.GAVE_UP))
            logger.warning(
                "webhook %s %s to %s abandoned after %d attempts (last: %s)",
                delivery.event,
                delivery.event_id,
                delivery.url,
                attempt,
                error or status,
            )
            return False
        wait_s = retry_delay_s(attempt - 1, status, retry_after, options)
        record(row.attempt(Outcome.RETRY, retry_in_s=wait_s))
        await options.sleep(wait_s)
    raise AssertionError("unreachable: the last attempt always returns")
