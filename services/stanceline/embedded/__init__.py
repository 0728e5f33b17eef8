"""Embedded Postgres and Redis, for `stanceline up` with no URLs configured and for the tests."""

from stanceline.embedded.postgres import EmbeddedPostgres, EmbeddedPostgresError
from stanceline.embedded.redis import EmbeddedRedis, EmbeddedRedisError

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError", "EmbeddedRedis", "EmbeddedRedisError"]
