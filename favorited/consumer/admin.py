"""`favorited dead-letters list|replay`: the operator's view of the dead-letter table."""

from __future__ import annotations

import json
import sys

from favorited.broker.publisher import WebhookPublisher
from favorited.broker.topology import Topology
from favorited.config import Settings
from favorited.consumer.dead_letters import replay
from favorited.store.dead_letters import PgDeadLetterStore
from favorited.store.pool import create_pool


async def dead_letters_command(settings: Settings, action: str, ids: list[int] | None) -> int:
    settings.require("DATABASE_URL")
    assert settings.database_url is not None
    pool = await create_pool(settings.database_url, settings)
    try:
        store = PgDeadLetterStore(pool)
        if action == "list":
            for letter in await store.pending():
                sys.stdout.write(
                    json.dumps(
                        {
                            "id": letter.id,
                            "event_id": letter.event_id,
                            "event": letter.event,
                            "reason": letter.reason,
                            "attempts": letter.attempts,
                            "create_time": letter.create_time.isoformat(),
                            "body": letter.body.decode("utf-8", "replace"),
                        }
                    )
                    + "\n"
                )
            return 0
        publisher = WebhookPublisher(
            settings.amqp_url,
            Topology(settings.webhook_queue, settings.webhook_max_deliveries),
            timeout_s=settings.webhook_publish_timeout_s,
        )
        await publisher.start()
        try:
            count = await replay(store, publisher, ids=ids or None)
        finally:
            await publisher.close()
        sys.stdout.write(f"replayed {count} dead letter(s)\n")
        return 0
    finally:
        await pool.close()
