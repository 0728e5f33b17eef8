"""Running the service: everything at once, or one part per process."""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from stanceline import bootstrap
from stanceline.cli.common import (
    Host,
    Json,
    Port,
    app,
    command_path,
    console,
    emit,
    results,
    run_async,
    setup_logging,
    shown_url,
)
from stanceline.contract.shards import selected
from stanceline.exposition import MULTIPROCESS_DIR
from stanceline.ops.migrate import head_revision
from stanceline.ops.migrate import migrate as run_migrations
from stanceline.ops.publish import publish_lines
from stanceline.readmodel.protocol import PROTOCOL
from stanceline.redis_client import connect
from stanceline.settings import Settings
from stanceline.store.db import create_engine


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="Publish the founding example on the stream.")] = False,
    host: Host = "127.0.0.1",
    port: Port = 8000,
) -> None:
    """Migrate, then run the projector, the API and the webhook dispatcher in one process.

    With neither STANCELINE_DATABASE_URL nor STANCELINE_REDIS_URL set, embedded
    Postgres and Redis start with their data under STANCELINE_DATA_DIR.
    """
    setup_logging()
    settings = Settings()
    servers = bootstrap.start_servers(settings, allow_embedded=True)

    def ready() -> None:
        console.print(f"[bold green]stanceline is up[/] on http://{host}:{port}  (Ctrl-C stops)")
        console.print(
            f"  try: curl 'http://{host}:{port}/v1/actors/us/topics/"
            "us-arms-strikes-inside-russia/history?include_descendants=true'"
        )
        if servers.redis_cli:
            port_ = servers.redis_url.rsplit(":", 1)[1].split("/")[0]
            console.print(
                f"  publish: {command_path(servers.redis_cli)} -p {port_} XADD {settings.stream} "
                "'*' event '<a v1 event as JSON>'",
                soft_wrap=True,  # one line, to copy whole
            )
        if servers.embedded:
            # A URL someone gave us may carry a password: it is shown masked, never as given.
            database = (
                servers.database_url
                if settings.database_url is None
                else shown_url(settings.database_url)
            )
            redis = (
                servers.redis_url if settings.redis_url is None else shown_url(settings.redis_url)
            )
            stanceline = command_path(Path(sys.executable).parent / "stanceline")
            console.print(f"  data: {settings.data_dir.resolve()}")
            console.print(
                f"  operate: STANCELINE_DATABASE_URL='{database}' "
                f"STANCELINE_REDIS_URL='{redis}' {stanceline} status",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )

    try:
        run_async(
            bootstrap.run_service(
                settings,
                servers,
                api=True,
                projector=True,
                host=host,
                port=port,
                demo=demo,
                on_ready=ready,
                dispatcher=True,
            )
        )
    finally:
        servers.stop()
        console.print("stanceline stopped")


@app.command()
def migrate(json_output: Json = False) -> None:
    """Apply the database migrations (Alembic) to STANCELINE_DATABASE_URL."""
    setup_logging()
    settings = Settings()
    if not settings.database_url:
        raise typer.BadParameter("set STANCELINE_DATABASE_URL")

    async def run() -> None:
        engine = create_engine(settings.database_url or "")
        try:
            await run_migrations(engine)
        finally:
            await engine.dispose()

    run_async(run())
    if json_output:
        emit({"revision": head_revision()})
        return
    results().print(f"database is at the latest revision ({head_revision()})")


@app.command()
def projector() -> None:
    """Run only the projector (consumer group member) against the configured URLs."""
    setup_logging()
    settings = Settings()
    try:
        selected(settings.shards, settings.stream_shards)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    servers = bootstrap.start_servers(settings, allow_embedded=False)
    run_async(bootstrap.run_service(settings, servers, api=False, projector=True))


@app.command()
def dispatcher() -> None:
    """Run only the webhook dispatcher: deliver the outbox to subscribers (several may run)."""
    setup_logging()
    settings = Settings()
    servers = bootstrap.start_servers(settings, allow_embedded=False, need_redis=False)
    run_async(bootstrap.run_service(settings, servers, api=False, projector=False, dispatcher=True))


@app.command()
def api(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes sharing the port, each with its own connection pool;"
            " one per core keeps latency flat under concurrent clients.",
        ),
    ] = 1,
) -> None:
    """Run only the read API against STANCELINE_DATABASE_URL, or STANCELINE_READ_DATABASE_URL
    (a hot standby) when set; it runs no migrations and needs no writer URL then."""
    setup_logging()
    settings = Settings()
    reads = settings.read_database_url or settings.database_url
    if workers > 1:
        if not reads:
            raise typer.BadParameter("set STANCELINE_DATABASE_URL or STANCELINE_READ_DATABASE_URL")
        # The schema check once here, as one worker would: the workers run no DDL.
        if not run_async(bootstrap.wait_for_schema(reads)):
            return
        # uvicorn supervises the workers (and their signals); each builds its own app.
        # uvloop and httptools (both dependencies) are named so a missing one is an
        # error rather than a quiet fall back to the slower pure-Python ones; no access
        # log (it would cost a log record per request, then be dropped at "warning").
        # The workers' metrics meet in one directory, so any of them answers a scrape
        # with all of them (exposition.py).
        with tempfile.TemporaryDirectory(prefix="stanceline-metrics-") as shared:
            os.environ.setdefault(MULTIPROCESS_DIR, shared)
            uvicorn.run(
                "stanceline.readmodel.app:from_environment",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level="warning",
                access_log=False,
                loop="uvloop",
                http=PROTOCOL,  # httptools; what it rejects answered as problem+json
            )
        return
    servers = bootstrap.start_servers(
        settings,
        allow_embedded=False,
        need_redis=False,
        need_database=not settings.read_database_url,
    )
    run_async(
        bootstrap.run_service(settings, servers, api=True, projector=False, host=host, port=port)
    )


@app.command()
def publish(
    file: Annotated[str, typer.Argument(help="JSON lines file, or - for standard input.")],
    json_output: Json = False,
) -> None:
    """Publish one stream entry per line (field `event`), as an upstream service would."""
    settings = Settings()
    if not settings.redis_url:
        raise typer.BadParameter("set STANCELINE_REDIS_URL")

    try:
        source = sys.stdin.buffer if file == "-" else Path(file).open("rb")  # noqa: SIM115
    except OSError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc

    async def run() -> Counter[str]:
        client = connect(settings.redis_url or "")
        try:
            return await publish_lines(
                client, settings.stream, source, shards=settings.stream_shards, group=settings.group
            )
        finally:
            await client.aclose()

    with source:
        sent = run_async(run())
    count = sent.total()
    if json_output:
        shards = {"shards": dict(sorted(sent.items()))} if settings.stream_shards > 1 else {}
        emit({"published": count, "stream": settings.stream, **shards})
        return
    results().print(f"published {count} entries on {settings.stream}")
    if settings.stream_shards > 1:
        for key, n in sorted(sent.items()):
            results().print(f"  {n} on {key}", markup=False)
