"""Acks: one `basic.ack multiple` for each run of applied messages instead of one ack each.

A batch of up to WEBHOOK_BATCH_SIZE events commits at once, and then every one of its messages
used to send its own ack: a frame, a socket write and, in the quorum queue, a settle command per
message. Here a message whose event has committed is marked, and once the loop has run the
handlers a commit released, the longest run of marked messages from the oldest outstanding
delivery is acked with one `multiple` ack on its newest tag.

Only that prefix is acked: a message still being applied (an older one in another lane's batch,
or one retrying in place) holds back every newer tag, so a multiple ack never covers a message
whose event has not committed — exactly once is unchanged. Held back, though, they stay unacked,
and unacked messages fill the channel's prefetch: behind a room's long transaction (an end of
100,000 participants takes about a second) the broker would stop delivering to every lane within a
fraction of a second. So once `held_back_max` applied messages wait behind an older one, they
are acked one by one, and the prefetch window keeps moving. Messages returned (nack) or
dead-lettered (reject) are settled on their own, at once, and leave the run; the multiple ack is
always sent on a tag that is still outstanding, as RabbitMQ requires.

Delivery tags belong to a channel: when the robust connection reopens it, tags start again and the
old channel's unacked messages are redelivered by the broker, so the old marks are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

from aio_pika.abc import AbstractIncomingMessage


class Settlements:
    """Tracks one consumer channel's outstanding deliveries, in delivery order."""

    def __init__(self, *, on_error: Callable[[BaseException], None], held_back_max: int) -> None:
        self._on_error = on_error
        self._held_back_max = held_back_max
        self._channel: Any = None
        # tag -> the message once its event committed (None: still being applied). Dicts keep
        # insertion order, and deliveries are registered in tag order.
        self._outstanding: dict[int, AbstractIncomingMessage | None] = {}
        self._flush_scheduled = False
        self._sending: set[asyncio.Task[None]] = set()
        self._last_send: asyncio.Task[None] | None = None

    def delivered(self, message: AbstractIncomingMessage) -> None:
        """Call first thing for each delivery (before any await), so tags stay in order."""
        if message.channel is not self._channel:
            self._channel = message.channel
            self._outstanding.clear()
        tag = _tag(message)
        if self._outstanding and tag < next(reversed(self._outstanding)):
            # Out of order (not expected from aio-pika): keep the outstanding tags sorted, or a
            # run could be acked past a message still being applied.
            self._outstanding = dict(sorted({**self._outstanding, tag: None}.items()))
        else:
            self._outstanding[tag] = None

    def applied(self, message: AbstractIncomingMessage) -> None:
        """The message's event committed: ack it with the run it completes."""
        if message.channel is not self._channel:
            return  # its channel is gone; the broker redelivers it
        self._outstanding[_tag(message)] = message
        if not self._flush_scheduled:
            self._flush_scheduled = True
            # After the other handlers the same commit released have marked theirs.
            asyncio.get_running_loop().call_soon(self._flush)

    def settled_alone(self, message: AbstractIncomingMessage) -> None:
        """The message was nacked or rejected on its own (call after that frame was sent, so a
        multiple ack that follows cannot overtake it): it leaves the run."""
        if message.channel is self._channel:
            self._outstanding.pop(_tag(message), None)
            if not self._flush_scheduled and self._outstanding:
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)

    async def drain(self) -> None:
        """Wait for the acks already decided to be sent (shutdown, before the channel closes)."""
        if self._flush_scheduled:
            self._flush()
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    def _flush(self) -> None:
        self._flush_scheduled = False
        run = list(itertools.takewhile(lambda item: item[1] is not None, self._outstanding.items()))
        for tag, _ in run:
            del self._outstanding[tag]
        if run:
            newest = run[-1][1]
            assert newest is not None
            self._send(newest, multiple=True)
        if len(self._outstanding) > self._held_back_max:
            held = [(tag, m) for tag, m in self._outstanding.items() if m is not None]
            if len(held) >= self._held_back_max:
                for tag, message in held:
                    del self._outstanding[tag]
                    self._send(message, multiple=False)

    def _send(self, message: AbstractIncomingMessage, *, multiple: bool) -> None:
        # One ack at a time, in the order decided here. aiormq's write queue holds 10 frames, and
        # asyncio.Queue.put is not first come, first served once it is full: a put that arrives
        # as a slot frees goes ahead of those already waiting. A multiple ack could so reach the
        # broker before an ack of a tag it covers, and the broker closes the channel on that
        # second ack (PRECONDITION_FAILED - unknown delivery tag): seen in webhook_e2e.
        task = asyncio.create_task(self._ack_after(self._last_send, message, multiple))
        self._last_send = task
        self._sending.add(task)
        task.add_done_callback(self._sent)

    @staticmethod
    async def _ack_after(
        previous: asyncio.Task[None] | None, message: AbstractIncomingMessage, multiple: bool
    ) -> None:
        if previous is not None:
            # Its own failure is reported by its own callback; this one only waits its turn.
            await asyncio.wait([previous])
        await message.ack(multiple=multiple)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        with contextlib.suppress(asyncio.CancelledError):
            if (exc := task.exception()) is not None:
                # The channel closed under it: the broker redelivers those messages (duplicates
                # the inbox recognises), nothing is lost.
                self._on_error(exc)


def _tag(message: AbstractIncomingMessage) -> int:
    tag = message.delivery_tag
    assert tag is not None, "a message consumed with acks has a delivery tag"
    return tag
