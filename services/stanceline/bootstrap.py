"""The composition root: which servers, which engine, which parts run in this process.

``stanceline up`` runs everything in one event loop; ``projector`` and
``api`` run one part each. Signals are handled here, once: SIGINT/SIGTERM
set a stop event, uvicorn stops serving, the projector finishes and acks
its in-flight batch, and only then do embedded servers shut down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline import heap, telemetry
from stanceline.dispatcher.worker import Dispatcher
from stanceline.embedded import EmbeddedPostgres, EmbeddedRedis
from stanceline.health import ProjectorHealth
from stanceline.ops.migrate import SchemaNotCurrent, migrate, require_current
from stanceline.ops.publish import publish_lines
from stanceline.projector.consumer import Projector
from stanceline.projector.probes import probe_app
from stanceline.readmodel.app import create_app
from stanceline.readmodel.protocol import PROTOCOL
from stanceline.redis_client import connect
from stanceline.resources import founding_example
from stanceline.retry import Stopped, with_backoff
from stanceline.settings import Settings
from stanceline.store.db import create_engine, create_read_engine
from stanceline.store.errors import is_transient

log = logging.getLogger(__name__)


@dataclass
class Servers:
    database_url: str
    redis_url: str
    embedded: list[EmbeddedPostgres | EmbeddedRedis] = field(default_factory=list)
    redis_cli: Path | None = None

    def stop(self) -> None:
        for server in reversed(self.embedded):
            server.stop()


def start_servers(
    settings: Settings, *, allow_embedded: bool, need_redis: bool = True, need_database: bool = True
) -> Servers:
    """Configured URLs win; what is missing is started embedded under the data dir.

    ``need_database=False``: an API reading a standby (STANCELINE_READ_DATABASE_URL)
    needs no writer URL, and nothing is started in its place.
    """
    if not allow_embedded:
        missing = settings.missing(database=need_database, redis=need_redis)
        if missing:
            raise SystemExit(f"set {' and '.join(missing)}")
    servers = Servers(settings.database_url or "", settings.redis_url or "")
    try:
        data_dir = settings.data_dir.resolve()
        if need_database and not settings.database_url:
            data_dir.mkdir(parents=True, exist_ok=True)
            postgres = EmbeddedPostgres(data_dir)
            servers.embedded.append(postgres)
            servers.database_url = postgres.start()
        if need_redis and not settings.redis_url:
            redis_server = EmbeddedRedis(data_dir, port=settings.embedded_redis_port)
            servers.embedded.append(redis_server)
            servers.redis_url = redis_server.start()
            servers.redis_cli = redis_server.cli_path
    except BaseException:
        servers.stop()
        raise
    return servers


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: this process has one place for that."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _on_signals(stop: asyncio.Event, *also: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()

    def handler() -> None:
        stop.set()
        for callback in also:
            callback()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handler)


async def run_service(
    settings: Settings,
    servers: Servers,
    *,
    api: bool,
    projector: bool,
    host: str = "127.0.0.1",
    port: int = 8000,
    demo: bool = False,
    on_ready: Callable[[], None] | None = None,
    dispatcher: bool = False,
) -> None:
    tracing = telemetry.configure(
        "stanceline-dispatcher"
        if not (api or projector)
        else "stanceline"
        if api and projector
        else "stanceline-api"
        if api
        else "stanceline-projector"
    )
    # The API alone gets the read engine (read-only sessions, one round trip a read), on
    # STANCELINE_READ_DATABASE_URL when it names one (a standby), beside the writer's.
    read_url = settings.read_database_url
    engine = (
        create_engine(servers.database_url)
        if projector or dispatcher
        else create_read_engine(read_url or servers.database_url)
    )
    reads = (
        create_read_engine(read_url) if api and read_url and (projector or dispatcher) else engine
    )
    stop = asyncio.Event()
    health = ProjectorHealth() if projector else None
    tasks: list[asyncio.Task[None]] = []
    server: _Server | None = None
    side_servers: list[_Server] = []
    _on_signals(stop, lambda: setattr(server, "should_exit", True) if server else None)
    try:
        if health is not None and not api and settings.metrics_port is not None:
            # Up before the migrations: a probe must be able to ask while Postgres is away.
            probes = _Server(
                uvicorn.Config(
                    probe_app(health),
                    host=settings.metrics_host,
                    port=settings.metrics_port,
                    log_level="warning",
                    access_log=False,
                )
            )
            side_servers.append(probes)
            tasks.append(asyncio.create_task(probes.serve(), name="probes"))
        ready = (
            await _migrated(engine, stop, health)
            if projector
            else await _schema_current(engine, stop)
        )
        if not ready:
            await _stop_all(stop, server, side_servers, tasks)
            return
        if projector:
            assert health is not None
            worker = Projector(settings, engine, servers.redis_url, health)
            tasks.append(asyncio.create_task(worker.run(stop), name="projector"))
        if dispatcher:
            sender = Dispatcher(settings, engine)
            tasks.append(asyncio.create_task(sender.run(stop), name="dispatcher"))
        if api:
            app = create_app(
                engine=reads,
                projector=health,
                settings=settings,
                redis_url=servers.redis_url,
                # The projector's engine writes; the API's own read engine does not.
                writer=engine if projector or dispatcher else None,
            )
            # PROTOCOL: httptools, with the requests it rejects itself answered as problem+json.
            server = _Server(
                uvicorn.Config(app, host=host, port=port, log_level="warning", http=PROTOCOL)
            )
            tasks.append(asyncio.create_task(server.serve(), name="api"))
        # The services are built: what exists now lives as long as the process.
        heap.settle()
        if demo:
            await publish_demo(settings, servers.redis_url)
        if on_ready:
            on_ready()
        await asyncio.wait(
            [*tasks, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        await _stop_all(stop, server, side_servers, tasks)
    finally:
        if reads is not engine:
            await reads.dispose()
        await engine.dispose()
        telemetry.shutdown(tracing)


async def _stop_all(
    stop: asyncio.Event,
    server: _Server | None,
    side_servers: list[_Server],
    tasks: list[asyncio.Task[None]],
) -> None:
    stop.set()
    for running in (server, *side_servers):
        if running is not None:
            running.should_exit = True
    await asyncio.gather(*tasks)


async def _migrated(
    engine: AsyncEngine, stop: asyncio.Event, health: ProjectorHealth | None
) -> bool:
    """Migrate once Postgres answers; False if asked to stop before it did.

    A replica that starts while Postgres restarts waits for it, as a running
    one does, instead of exiting and leaving its restart to a supervisor.
    """

    def away(_exc: BaseException) -> None:
        if health is not None:
            health.store_ok = False

    try:
        await with_backoff(
            lambda: migrate(engine),
            on=Exception,
            transient=is_transient,
            what="Postgres unavailable",
            log=log,
            failed=away,
            stop=stop,
        )
    except Stopped:
        return False
    if health is not None:
        health.store_ok = True
    return True


async def wait_for_schema(database_url: str) -> bool:
    """``_schema_current`` for a caller without an engine (``api --workers N``)."""
    engine = create_read_engine(database_url)
    stop = asyncio.Event()
    _on_signals(stop)
    try:
        return await _schema_current(engine, stop)
    finally:
        await engine.dispose()


async def _schema_current(engine: AsyncEngine, stop: asyncio.Event) -> bool:
    """The API alone runs no DDL (it may run as a read-only role): it waits for Postgres,
    then checks that someone migrated to this release; False if asked to stop first."""
    try:
        await with_backoff(
            lambda: require_current(engine),
            on=Exception,
            transient=is_transient,
            what="Postgres unavailable",
            log=log,
            stop=stop,
        )
    except Stopped:
        return False
    except SchemaNotCurrent as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None
    return True


async def publish_demo(settings: Settings, redis_url: str) -> int:
    """The founding example goes through the stream, as an upstream would send it."""
    client = connect(redis_url)
    try:
        with founding_example().open("rb") as lines:
            sent = await publish_lines(
                client, settings.stream, lines, shards=settings.stream_shards, group=settings.group
            )
            return sent.total()
    finally:
        await client.aclose()
