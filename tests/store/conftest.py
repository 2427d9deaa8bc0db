from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from favorited.store.database import PgDatabase
from favorited.store.pool import create_pool
from tests.conftest import make_settings


@pytest.fixture(scope="module")
async def database(database_url: str) -> AsyncIterator[PgDatabase]:
    """PgDatabase over a pool set up as the API's is (its codecs, its timeouts)."""
    pool = await create_pool(database_url, make_settings(database_url, "http://127.0.0.1:1"))
    yield PgDatabase(pool, acquire_timeout_s=5)
    await pool.close()


@pytest.fixture(scope="module")
async def narrow_database(database_url: str) -> AsyncIterator[PgDatabase]:
    """PgDatabase over a pool of one connection: a test that holds it keeps the next batch
    waiting for it, so that the writes arriving meanwhile queue behind that batch."""
    settings = make_settings(
        database_url,
        "http://127.0.0.1:1",
        DATABASE_POOL_MIN_SIZE="1",
        DATABASE_POOL_MAX_SIZE="1",
    )
    pool = await create_pool(database_url, settings)
    yield PgDatabase(pool, acquire_timeout_s=5)
    await pool.close()
