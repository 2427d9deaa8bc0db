"""Forward-only SQL migrations, safe to run from several processes at once.

Each `NNNN_name.sql` file is applied once, in its own transaction, and recorded with its checksum.
A session-level advisory lock makes concurrent runners take turns: the second one finds the work
done. An applied file that was later edited is refused, because the database no longer matches it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every favorited process.
_LOCK_KEY = 0x6661766F72697465  # "favorite"


class MigrationError(RuntimeError):
    """The migrations on disk and the database disagree."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path) -> list[Migration]:
    files = sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    if not files:
        raise MigrationError(f"no migrations found in {directory}")
    return [Migration(version=f.stem, path=f) for f in files]


def default_directory() -> Path:
    """The migrations shipped in the wheel, or the repository's migrations/ in a checkout."""
    packaged = Path(__file__).resolve().parents[1] / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"


async def apply(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    """Apply what is pending; return the versions applied by this call."""
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    text PRIMARY KEY,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        applied = {r["version"]: r["checksum"] for r in rows}
        done: list[str] = []
        for m in migrations:
            if m.version in applied:
                if applied[m.version] != m.checksum:
                    raise MigrationError(f"migration {m.version} changed after it was applied")
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                    m.version,
                    m.checksum,
                )
            log.info("applied migration", extra={"version": m.version})
            done.append(m.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def migrate(dsn: str, directory: Path | None = None) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await apply(conn, discover(directory or default_directory()))
    finally:
        await conn.close()
