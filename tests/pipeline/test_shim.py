"""The shim: what it rejects publishes nothing; what it accepts is confirmed by RabbitMQ."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import timedelta

import aio_pika
import aiohttp

from favorited.app import WebhooksApp
from favorited.config import Settings
from tests.conftest import LIVEKIT_KEY, LIVEKIT_SECRET
from tests.pipeline.conftest import AMQP_URL, WEBHOOK_PATH, Post
from tests.support.livekit_webhooks import event_body, sid, sign
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import until


async def _queued(queue_name: str) -> list[str]:
    """Drain the queue (basic.get), returning the message ids in order."""
    ids: list[str] = []
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name)
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            ids.append(message.message_id or "")
    return ids


async def _post_raw(
    http: aiohttp.ClientSession, shim: WebhooksApp, body: bytes, headers: dict[str, str]
) -> int:
    url = f"http://127.0.0.1:{shim.port}{WEBHOOK_PATH}"
    async with http.post(url, data=io.BytesIO(body), headers=headers) as response:
        return response.status


async def test_rejections_publish_nothing(
    shim: WebhooksApp, http: aiohttp.ClientSession, post: Post, queue_name: str
) -> None:
    _, body = event_body("room_started", room_sid=sid("RM_"), room_name="r")
    good = sign(body, LIVEKIT_KEY, LIVEKIT_SECRET)
    tampered = body.replace(b'"name": "r"', b'"name": "x"')
    cases: dict[str, tuple[bytes, dict[str, str], int]] = {
        "no signature": (body, {}, 401),
        "bearer prefix": (body, {"Authorization": f"Bearer {good}"}, 401),
        "wrong secret": (body, {"Authorization": sign(body, LIVEKIT_KEY, "s" * 40)}, 401),
        "other key": (body, {"Authorization": sign(body, "APIother", LIVEKIT_SECRET)}, 401),
        "expired": (
            body,
            {"Authorization": sign(body, LIVEKIT_KEY, LIVEKIT_SECRET, ttl=timedelta(minutes=-5))},
            401,
        ),
        "tampered body": (tampered, {"Authorization": good}, 401),
        "not json": (b"{nope", {"Authorization": sign(b"{nope", LIVEKIT_KEY, LIVEKIT_SECRET)}, 400),
        "no event id": (
            b'{"event": "room_started"}',
            {"Authorization": sign(b'{"event": "room_started"}', LIVEKIT_KEY, LIVEKIT_SECRET)},
            400,
        ),
    }
    for name, (payload, headers, expected) in cases.items():
        assert await _post_raw(http, shim, payload, headers) == expected, name
    huge = json.dumps({"event": "room_started", "id": "EV_x", "pad": "x" * (1024 * 1024)}).encode()
    assert (
        await _post_raw(
            http, shim, huge, {"Authorization": sign(huge, LIVEKIT_KEY, LIVEKIT_SECRET)}
        )
        == 413
    )
    async with http.get(f"http://127.0.0.1:{shim.port}{WEBHOOK_PATH}") as response:
        assert response.status == 405

    sentinel_id, sentinel = event_body("room_started", room_sid=sid("RM_"), room_name="s")
    assert await post(sentinel) == 200
    assert await _queued(queue_name) == [sentinel_id]


async def test_accepted_webhook_is_persistent_with_event_id(
    shim: WebhooksApp, post: Post, queue_name: str
) -> None:
    event_id, body = event_body("room_started", room_sid=sid("RM_"), room_name="r")
    assert await post(body) == 200
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name)
        message = await queue.get(no_ack=True)
    assert message.message_id == event_id
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.body == body  # the verified bytes, untouched


async def test_health_and_metrics(
    shim: WebhooksApp, http: aiohttp.ClientSession, post: Post
) -> None:
    _, body = event_body("room_started", room_sid=sid("RM_"), room_name="r")
    assert await post(body) == 200
    async with http.get(f"http://127.0.0.1:{shim.port}/health") as response:
        assert response.status == 200
        report = await response.json()
    assert report["status"] == "ok"
    assert report["broker"]["ok"] and report["database"]["ok"]
    assert report["database"]["dead_letters"] == 0
    async with http.get(f"http://127.0.0.1:{shim.port}/metrics") as response:
        text = await response.text()
    assert 'favorited_webhooks_total{outcome="accepted"} 1.0' in text


async def _post_signed(http: aiohttp.ClientSession, shim: WebhooksApp, body: bytes) -> int:
    headers = {"Authorization": sign(body, LIVEKIT_KEY, LIVEKIT_SECRET)}
    async with http.post(
        f"http://127.0.0.1:{shim.port}{WEBHOOK_PATH}", data=body, headers=headers
    ) as response:
        assert response.status == 200 or response.headers.get("Retry-After") == "1"
        return response.status


async def test_unroutable_webhook_is_refused_with_503(
    shim: WebhooksApp, http: aiohttp.ClientSession, queue_name: str
) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue_name)
    _, body = event_body("room_started", room_sid=sid("RM_"), room_name="r")
    # Mandatory routing: the broker returns it instead of confirming a message nobody holds.
    assert await _post_signed(http, shim, body) == 503


async def test_hanging_or_lost_broker_gets_503_until_the_shim_reconnects(
    pipeline_settings: Settings, http: aiohttp.ClientSession, queue_name: str, clean: None
) -> None:
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    settings = dataclasses.replace(
        pipeline_settings, amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
    )
    shim = await WebhooksApp.start(settings)
    try:
        first_id, first = event_body("room_started", room_sid=sid("RM_"), room_name="a")
        assert await _post_signed(http, shim, first) == 200
        # The connection stays open but nothing comes back: only the confirm timeout ends it.
        proxy.stall()
        _, hung = event_body("room_started", room_sid=sid("RM_"), room_name="b")
        assert await _post_signed(http, shim, hung) == 503
        # Connections broken and refused (the stalled frame is dropped with them).
        await proxy.cut()
        proxy.unstall()
        _, lost = event_body("room_started", room_sid=sid("RM_"), room_name="c")
        assert await _post_signed(http, shim, lost) == 503
        await proxy.restore()
        last_id = ""

        async def accepted_again() -> bool:
            nonlocal last_id
            event_id, body = event_body("room_started", room_sid=sid("RM_"), room_name="d")
            if await _post_signed(http, shim, body) != 200:
                return False
            last_id = event_id
            return True

        # The robust connection reopens its channel; publishing follows it to the new one.
        await until(accepted_again)
    finally:
        proxy.unstall()
        await proxy.restore_if_cut()
        await shim.stop()
        await proxy.cut()
    assert await _queued(queue_name) == [first_id, last_id]
