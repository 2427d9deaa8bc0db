"""Multiple acks (favorited/consumer/acks.py) against a real RabbitMQ: a run of applied messages
is acked at once, and never past a message still being applied or one settled on its own.

What the broker acked is read back the only way a client can: close the consumer's channel, which
returns every unacked message to the queue, and count the queue's ready messages.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from favorited.consumer.acks import Settlements
from tests.pipeline.conftest import AMQP_URL
from tests.support.waiting import until


@pytest.fixture
async def connection() -> AsyncIterator[AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(AMQP_URL)
    yield connection
    await connection.close()


async def _deliveries(
    connection: AbstractRobustConnection, count: int
) -> tuple[str, aio_pika.abc.AbstractChannel, list[AbstractIncomingMessage], Settlements]:
    """A private queue with `count` messages, all delivered unacked to a fresh channel and
    registered, in order, with a new Settlements."""
    name = f"favorited.test.acks.{uuid.uuid4().hex[:12]}"
    setup = await connection.channel()
    await setup.declare_queue(name, auto_delete=False, arguments={"x-expires": 60_000})
    for i in range(count):
        await setup.default_exchange.publish(aio_pika.Message(str(i).encode()), routing_key=name)
    await setup.close()
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=count)
    consuming: AbstractQueue = await channel.get_queue(name)
    received: list[AbstractIncomingMessage] = []

    async def receive(message: AbstractIncomingMessage) -> None:
        received.append(message)

    await consuming.consume(receive, no_ack=False)
    await until(lambda: len(received) == count)
    settlements = Settlements(on_error=_fail)
    for message in received:
        settlements.delivered(message)
    return name, channel, received, settlements


def _fail(exc: BaseException) -> None:
    pytest.fail(f"an ack failed: {exc!r}")


async def _returned(connection: AbstractRobustConnection, name: str) -> int:
    """Messages back in the queue once the consumer's channel is closed (= not acked)."""
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.message_count or 0
    finally:
        await queue.delete(if_unused=False, if_empty=False)
        await channel.close()


async def test_a_message_still_being_applied_holds_back_the_newer_ones(
    connection: AbstractRobustConnection,
) -> None:
    name, channel, messages, settlements = await _deliveries(connection, 3)
    settlements.applied(messages[1])
    settlements.applied(messages[2])
    await asyncio.sleep(0)  # let the flush run: nothing may be acked past the first
    await settlements.drain()
    await channel.close()
    assert await _returned(connection, name) == 3


async def test_the_run_is_acked_once_the_oldest_commits(
    connection: AbstractRobustConnection,
) -> None:
    name, channel, messages, settlements = await _deliveries(connection, 3)
    settlements.applied(messages[2])
    settlements.applied(messages[0])
    await asyncio.sleep(0)
    await settlements.drain()
    # 1 acked alone; 3 waits for 2, which is still being applied.
    settlements.applied(messages[1])
    await asyncio.sleep(0)
    await settlements.drain()
    await channel.close()
    assert await _returned(connection, name) == 0


async def test_a_message_settled_alone_is_not_covered_by_the_multiple_ack(
    connection: AbstractRobustConnection,
) -> None:
    name, channel, messages, settlements = await _deliveries(connection, 3)
    await messages[0].reject(requeue=True)  # back to the queue, as a failed event is
    settlements.settled_alone(messages[0])
    settlements.applied(messages[1])
    settlements.applied(messages[2])
    await asyncio.sleep(0)
    await settlements.drain()
    await channel.close()
    # Only the rejected one is back: the multiple ack covered 2 and 3, and it did not turn the
    # reject into an ack (nor fail on its tag: the channel stayed open until we closed it).
    assert await _returned(connection, name) == 1
