"""The servers a benchmark run uses, and the machine it ran on.

Servers: embedded Postgres and Redis started in a fresh temp dir (the default), or the ones
named by flags or by ``STANCELINE_TEST_DATABASE_URL`` / ``STANCELINE_TEST_REDIS_URL``. On a
configured Postgres the run creates a database of its own and drops it at the end; on a
configured Redis it uses stream keys of its own and deletes them.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
import psutil
import redis.asyncio as aioredis

from conftest import _dsn
from fixtures.servers import _asyncpg_url
from support.scratch import scratch_servers


@dataclass(frozen=True)
class Servers:
    database_url: str
    """SQLAlchemy URL (``postgresql+asyncpg://``) of the run's own, fresh database."""
    redis_url: str
    postgres_embedded: bool
    redis_embedded: bool

    @property
    def dsn(self) -> str:
        """The same database as a plain libpq/asyncpg DSN."""
        return _dsn(self.database_url)


@contextlib.asynccontextmanager
async def own_servers(
    database_url: str | None, redis_url: str | None, *, in_database: str | None = None
) -> AsyncIterator[Servers]:
    """Embedded servers for what is not given; a fresh database on a given Postgres.

    With ``in_database``, the run uses that existing database as it is and leaves it
    behind, for a caller that looks at what the run stored (the smoke test); it owns the
    database and drops it. Redis must then be given too.
    """
    if in_database is not None:
        redis = redis_url or os.environ.get("STANCELINE_TEST_REDIS_URL")
        if not redis:
            raise ValueError(
                "--in-database needs a Redis: --redis-url or STANCELINE_TEST_REDIS_URL"
            )
        yield Servers(_asyncpg_url(in_database), redis, False, False)
        return
    async with scratch_servers(
        "bench",
        database_url or os.environ.get("STANCELINE_TEST_DATABASE_URL"),
        redis_url or os.environ.get("STANCELINE_TEST_REDIS_URL"),
        # Not persistent: the AOF would only add disk noise to a measurement.
        redis_persistent=False,
    ) as scratch:
        yield Servers(
            scratch.database_url,
            scratch.redis_url,
            scratch.postgres is not None,
            scratch.redis is not None,
        )


@dataclass(frozen=True)
class Machine:
    cpus: int
    cpu_model: str
    ram_gb: float
    load_average: tuple[float, float, float]
    """At the start of the run: other work on a shared machine shows here."""
    python: str
    platform: str
    postgres: str
    postgres_settings: dict[str, str]
    postgres_server: str
    redis: str
    redis_server: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.cpus} CPUs ({self.cpu_model}), {self.ram_gb:.0f} GB RAM, "
            f"load {self.load_average[0]:.2f} at start; Python {self.python}; "
            f"Postgres {self.postgres} ({self.postgres_server}); "
            f"Redis {self.redis} ({self.redis_server})"
        )


_SETTINGS = ("shared_buffers", "synchronous_commit", "fsync", "max_wal_size", "work_mem")


async def describe_machine(servers: Servers) -> Machine:
    conn = await asyncpg.connect(servers.dsn)
    try:
        version = str(await conn.fetchval("SHOW server_version"))
        settings = {name: str(await conn.fetchval(f"SHOW {name}")) for name in _SETTINGS}
    finally:
        await conn.close()
    client = aioredis.Redis.from_url(servers.redis_url)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    return Machine(
        cpus=os.cpu_count() or 0,
        cpu_model=_cpu_model(),
        ram_gb=psutil.virtual_memory().total / 2**30,
        load_average=os.getloadavg(),
        python=platform.python_version(),
        platform=platform.platform(),
        postgres=version,
        postgres_settings=settings,
        postgres_server="embedded" if servers.postgres_embedded else "configured",
        redis=str(info.get("redis_version", "?")),
        redis_server="embedded" if servers.redis_embedded else "configured",
    )


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="utf-8"):  # noqa: SIM115
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


async def server_pids(servers: Servers) -> dict[str, int]:
    """The Postgres postmaster and the redis-server, when they run on this machine.

    Used to count the servers' CPU per phase. For a configured server shared with
    others that count includes their work too.
    """
    pids: dict[str, int] = {}
    with contextlib.suppress(Exception):
        conn = await asyncpg.connect(servers.dsn)
        try:
            backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
            if _named(backend, "postgres"):
                parent = psutil.Process(backend).ppid()
                if _named(parent, "postgres"):
                    pids["postgres"] = parent
        finally:
            await conn.close()
    with contextlib.suppress(Exception):
        client = aioredis.Redis.from_url(servers.redis_url)
        try:
            info = await client.info("server")
        finally:
            await client.aclose()
        pid = int(info["process_id"])
        if _named(pid, "redis"):
            pids["redis"] = pid
    return pids


def _named(pid: int, part: str) -> bool:
    """A local process of that kind (a remote server's pid may name anything here)."""
    try:
        return part in psutil.Process(pid).name()
    except psutil.Error:
        return False


class TreeCpu:
    """CPU seconds (user + system) used by a process and its children since ``start()``.

    Sampled as often as the caller likes: a child that exits (a Postgres backend whose
    client disconnected) keeps the time it had at the last sample.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._base: dict[int, float] = {}
        self._last: dict[int, float] = {}

    def _read(self) -> dict[int, float]:
        found: dict[int, float] = {}
        try:
            root = psutil.Process(self.pid)
            family = [root, *root.children(recursive=True)]
        except psutil.Error:
            return found
        for proc in family:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                found[proc.pid] = times.user + times.system
        return found

    def start(self) -> None:
        self._base = self._read()
        self._last = dict(self._base)

    def sample(self) -> None:
        self._last |= self._read()

    def seconds(self) -> float:
        self.sample()
        return sum(v - self._base.get(pid, 0.0) for pid, v in self._last.items())
