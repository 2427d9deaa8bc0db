"""Multiple acks (favorited/consumer/acks.py) against a real RabbitMQ: a run of applied messages
is acked at once, and never past a message still being applied or one settled on its own.

What the broker acked is read back the only way a client can: close the consumer's channel, which
returns every unacked message to the queue, and count the queue's ready messages.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

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
    connection: AbstractRobustConnection,
    count: int,
    *,
    held_back_max: int = 1_000,
    on_error: Callable[[BaseException], None] | None = None,
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
    settlements = Settlements(on_error=on_error or _fail, held_back_max=held_back_max)
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


async def test_a_multiple_ack_over_messages_acked_one_by_one_is_accepted(
    connection: AbstractRobustConnection,
) -> None:
    # Behind a message still being applied (a room's long transaction), the applied ones must
    # not fill the prefetch window: past the limit they are acked on their own.
    name, channel, messages, settlements = await _deliveries(connection, 5, held_back_max=2)
    settlements.applied(messages[1])
    settlements.applied(messages[2])
    await settlements.drain()
    # Then the oldest commits, and with it 4: the multiple ack on 4 covers 1 and 2, acked
    # already, which RabbitMQ accepts (it would close the channel on an unknown tag).
    settlements.applied(messages[0])
    settlements.applied(messages[3])
    await settlements.drain()
    still_applying = await _returned_after_close(connection, channel, name)
    assert still_applying == 1  # only the fifth, never applied


async def test_held_back_messages_below_the_limit_wait_for_the_multiple_ack(
    connection: AbstractRobustConnection,
) -> None:
    name, channel, messages, settlements = await _deliveries(connection, 5, held_back_max=2)
    settlements.applied(messages[1])
    await settlements.drain()
    assert await _returned_after_close(connection, channel, name) == 5


async def test_past_the_limit_the_held_back_messages_leave_before_the_oldest_commits(
    connection: AbstractRobustConnection,
) -> None:
    name, channel, messages, settlements = await _deliveries(connection, 5, held_back_max=2)
    settlements.applied(messages[1])
    settlements.applied(messages[2])
    await settlements.drain()
    # 1 and 2 acked although 0 is still being applied; 0, 3 and 4 come back.
    assert await _returned_after_close(connection, channel, name) == 3


async def _returned_after_close(
    connection: AbstractRobustConnection, channel: aio_pika.abc.AbstractChannel, name: str
) -> int:
    await channel.close()
    return await _returned(connection, name)


async def test_a_burst_of_acks_reaches_the_broker_in_the_order_decided(
    connection: AbstractRobustConnection,
) -> None:
    # Hundreds of acks decided at once overflow aiormq's write queue (10 frames); a multiple ack
    # decided next must still reach the broker after every ack of a tag it covers, or the broker
    # closes the channel on the late one (unknown delivery tag) and all of them come back.
    errors: list[BaseException] = []
    # Errors recorded rather than failing inside a done callback, where pytest would not see them.
    name, channel, messages, settlements = await _deliveries(
        connection, 600, held_back_max=50, on_error=errors.append
    )
    for round_start in range(0, 500, 100):
        # Each round: the head of the round is still being applied, the rest are applied (acked
        # one by one past the limit), then the head commits (a multiple ack over the round).
        for message in messages[round_start + 1 : round_start + 100]:
            settlements.applied(message)
        await asyncio.sleep(0)
        settlements.applied(messages[round_start])
        await asyncio.sleep(0)
    async with asyncio.timeout(20):  # a channel the broker closed leaves acks hanging
        await settlements.drain()
    assert errors == []
    assert await _returned_after_close(connection, channel, name) == 100
