"""Settings: validated once, with a clear error per variable; .env.example documents them all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from favorited import config
from favorited.config import ConfigError, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults() -> None:
    s = Settings.from_env({})
    assert (s.grpc_port, s.http_port, s.token_expiration_hours) == (50051, 3001, 24)
    assert (s.webhook_queue_concurrency, s.webhook_apply_lanes, s.webhook_batch_size) == (2, 4, 100)
    assert s.webhook_apply_overlap_ms == 50
    assert s.reconciliation_interval_minutes == 10
    assert s.database_url is None and s.amqp_url == config.DEFAULT_AMQP_URL


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GRPC_PORT": "http"}, "GRPC_PORT must be an integer"),
        ({"GRPC_PORT": "70000"}, "GRPC_PORT must be between 0 and 65535"),
        ({"WEBHOOK_QUEUE_CONCURRENCY": "0"}, "WEBHOOK_QUEUE_CONCURRENCY must be between"),
        ({"WEBHOOK_APPLY_LANES": "0"}, "WEBHOOK_APPLY_LANES must be between"),
        ({"WEBHOOK_APPLY_OVERLAP_MS": "-1"}, "WEBHOOK_APPLY_OVERLAP_MS must be between"),
        ({"WEBHOOK_QUEUE_CONCURRENCY": "5"}, "must not exceed WEBHOOK_APPLY_LANES"),
        ({"FAVORITED_JWT_SECRET": "short"}, "FAVORITED_JWT_SECRET must be at least 32 bytes"),
        (
            {"LIVEKIT_API_SECRET": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"},
            "LIVEKIT_API_SECRET looks like a key document",
        ),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL must be a URL with scheme"),
        ({"LIVEKIT_URL": "http://"}, "LIVEKIT_URL must name a host"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be one of json, text"),
        ({"DATABASE_POOL_MIN_SIZE": "20"}, "must not exceed DATABASE_POOL_MAX_SIZE"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_unix_socket_dsn_is_accepted() -> None:
    s = Settings.from_env({"DATABASE_URL": "postgresql://postgres:@/postgres?host=/tmp/pg"})
    assert s.database_url is not None


def test_require_lists_every_missing_variable() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL, FAVORITED_JWT_SECRET"):
        Settings.from_env({}).require("DATABASE_URL", "FAVORITED_JWT_SECRET")


def test_env_example_lists_every_variable_and_parses() -> None:
    source = (ROOT / "favorited" / "config.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]+)"', source))
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert read == set(example)
    filled = {k: v for k, v in example.items() if v}
    filled["FAVORITED_JWT_SECRET"] = filled["LIVEKIT_API_SECRET"] = "s" * 32
    Settings.from_env(filled)
