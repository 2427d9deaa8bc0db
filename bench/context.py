"""The run's identity: its database, queue names, secrets and scratch directory.

Everything a run creates is named after its run id, so runs on one shared machine never collide
and cleanup removes exactly what this run made.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from favorited.api.auth import Authenticator

ADMIN_DSN = os.environ.get(
    "FAVORITED_BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("FAVORITED_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
HOST = "127.0.0.1"  # every socket of the run stays on loopback


@dataclass
class RunContext:
    run_id: str
    workdir: Path
    jwt_secret: str
    livekit_key: str
    livekit_secret: str
    queues: list[str] = field(default_factory=list)

    @classmethod
    def new(cls) -> RunContext:
        run_id = secrets.token_hex(5)
        workdir = Path(tempfile.mkdtemp(prefix=f"favorited-bench-{run_id}-"))
        return cls(
            run_id=run_id,
            workdir=workdir,
            # Fresh per run: nothing here is a real credential, and nothing outlives the run.
            jwt_secret=secrets.token_hex(32),
            livekit_key=f"APIbench{run_id}",
            livekit_secret=secrets.token_hex(32),
        )

    @property
    def database(self) -> str:
        return f"favorited_bench_{self.run_id}"

    @property
    def dsn(self) -> str:
        return f"{ADMIN_DSN.rsplit('/', 1)[0]}/{self.database}"

    def queue(self, purpose: str) -> str:
        """A queue name of this run's own; remembered so cleanup deletes it (and its DLQ)."""
        name = f"favorited.bench.{self.run_id}.{purpose}"
        self.queues.append(name)
        return name

    def authorization(self, user: str, *, admin: bool = False) -> tuple[tuple[str, str], ...]:
        token = Authenticator(self.jwt_secret).mint(user, admin=admin, ttl=timedelta(hours=2))
        return (("authorization", f"Bearer {token}"),)
