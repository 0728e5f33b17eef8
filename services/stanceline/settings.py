"""Configuration from the environment (``STANCELINE_*``).

Settings are built by each entry point, never at import, so tests and
the CLI can build their own without touching global state.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STANCELINE_", extra="ignore")

    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = Path(".stanceline")
    stream: str = "stanceline:statements"
    group: str = "stanceline-projector"
    consumer: str | None = Field(
        default=None, description="Consumer name in the group; defaults to host-pid."
    )
    batch_size: int = Field(default=500, ge=1, le=10_000)
    block_ms: int = Field(default=100, ge=1)
    read_ahead: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Batches read and validated while one commits (held in memory, unacked).",
    )
    committers: int = Field(
        default=1,
        ge=1,
        le=8,
        description=(
            "Batches committed at once, each on its own connection. More overlap only the"
            " steps before the series locks, and keep more entries in flight: a crash puts"
            " all of them through another delivery."
        ),
    )
    reclaim_idle_ms: int = Field(default=30_000, ge=100)
    max_deliveries: int = Field(default=5, ge=1)
    admin_token: SecretStr | None = None
    webhook_retry_schedule: str = Field(
        default="0,5,300,1800,7200,18000,36000,50400,72000,86400",
        pattern=r"^\s*\d+(\.\d+)?(\s*,\s*\d+(\.\d+)?)*\s*$",
        description="Seconds to wait before each webhook attempt after a failure, comma-separated"
        " (Standard Webhooks' schedule; jitter stretches each by up to 20%).",
    )
    webhook_timeout_s: float = Field(default=15.0, gt=0, le=300)
    webhook_disable_after: timedelta = Field(
        default=timedelta(days=5),
        description="A subscription whose messages have all failed this long is disabled.",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs on loopback, private and link-local addresses.",
    )
    webhook_workers: int = Field(
        default=2, ge=1, le=64, description="Batches of webhook deliveries in flight at once."
    )
    webhook_connections_per_origin: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Concurrent requests to one receiving origin (scheme, host, port).",
    )
    webhook_batch: int = Field(default=50, ge=1, le=1000)
    webhook_poll_s: float = Field(
        default=0.1, gt=0, le=60, description="How often an idle dispatcher looks for work."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as text, or one JSON object per line."
    )
    pushgateway_url: str | None = Field(
        default=None,
        description="A Prometheus Pushgateway for the one-shot commands' metrics (rebuild).",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="A standalone projector's /metrics, /healthz and /readyz port (unset: none).",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Where that port listens (0.0.0.0 in a container)."
    )
    embedded_redis_port: int = 6390
    stream_poll_seconds: float = Field(
        default=0.25,
        gt=0,
        le=60,
        description="How often a /v1/stream connection reads the changes feed once caught up.",
    )
    stream_ping_seconds: float = Field(
        default=15,
        gt=0,
        le=3600,
        description="Heartbeat comments on /v1/stream, so proxies keep an idle stream open.",
    )
    stream_retry_ms: int = Field(
        default=3000, ge=0, description="The `retry:` an SSE client waits before reconnecting."
    )
    max_streams: int = Field(
        default=100,
        ge=0,
        description="Concurrent /v1/stream connections per API process; beyond it, 503.",
    )
    stream_max_seconds: float | None = Field(
        default=None,
        gt=0,
        description="End each /v1/stream after this long (unset: never); clients reconnect"
        " with Last-Event-ID and lose nothing, and connections rebalance after a deploy.",
    )
    cors_origins: str = Field(
        default="",
        description="Comma-separated origins allowed to call the API from a browser"
        " (`*` for any); empty: no CORS headers.",
    )
    stream_shards: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Stream keys the stream is split into (contract/shards.py names them).",
    )
    shards: str | None = Field(
        default=None, description="The shards this projector reads, e.g. 0-3,6 (unset: all)."
    )
    read_database_url: str | None = Field(
        default=None,
        description="Where the API reads (a hot standby); the writer URL stays for the rest.",
    )
    max_replica_lag_s: float = Field(
        default=30.0, gt=0, description="/readyz answers 503 when the standby is further behind."
    )

    def missing(self, *, database: bool = True, redis: bool = True) -> list[str]:
        """The variables an entry point needs that nobody set, to name them in one message."""
        return [
            name
            for name, value, needed in (
                ("STANCELINE_DATABASE_URL", self.database_url, database),
                ("STANCELINE_REDIS_URL", self.redis_url, redis),
            )
            if needed and not value
        ]


def database_url_for_asyncpg(url: str) -> str:
    """Accept the usual spellings of a Postgres URL and return the asyncpg one."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('://')[0]}://...")
