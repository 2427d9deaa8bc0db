"""The layout is the architecture: the domain imports no transport or storage library."""

from __future__ import annotations

import subprocess
import sys


def test_domain_imports_no_infrastructure() -> None:
    probe = (
        "import sys, favorited.domain.livestreams, favorited.domain.participants, "
        "favorited.domain.livekit_events, favorited.domain.reconciliation;"
        "print(','.join(m for m in ('grpc', 'asyncpg', 'aio_pika', 'livekit', 'aiohttp') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
