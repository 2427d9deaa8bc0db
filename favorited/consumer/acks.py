"""Acks: one `basic.ack multiple` for each run of applied messages instead of one ack each.

A batch of up to WEBHOOK_BATCH_SIZE events commits at once, and then every one of its messages
used to send its own ack: a frame, a socket write and, in the quorum queue, a settle command per
message. Here a message whose event has committed is marked, and once the loop has run the
handlers a commit released, the longest run of marked messages from the oldest outstanding
delivery is acked with one `multiple` ack on its newest tag.

Only that prefix is acked: a message still being applied (an older one in another lane's batch,
or one retrying in place) holds back every newer tag, so a multiple ack never covers a message
whose event has not committed — exactly once is unchanged. Messages returned (nack) or
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

    def __init__(self, *, on_error: Callable[[BaseException], None]) -> None:
        self._on_error = on_error
        self._channel: Any = None
        # tag -> the message once its event committed (None: still being applied). Dicts keep
        # insertion order, and deliveries are registered in tag order.
        self._outstanding: dict[int, AbstractIncomingMessage | None] = {}
        self._flush_scheduled = False
        self._sending: set[asyncio.Task[None]] = set()

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
        if not run:
            return
        for tag, _ in run:
            del self._outstanding[tag]
        newest = run[-1][1]
        assert newest is not None
        task = asyncio.create_task(newest.ack(multiple=True))
        self._sending.add(task)
        task.add_done_callback(self._sent)

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
