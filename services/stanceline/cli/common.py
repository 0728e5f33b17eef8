"""What every command shares: the typer app, the console, settings, exits and output.

Operator commands print human text and progress on stderr, and with ``--json``
one JSON document on stdout. A failure ends with a one-line message and a
non-zero exit: 1 when the work failed or a server is unreachable, 2 for a bad
option or a missing setting.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn, TypeVar

import redis.asyncio as aioredis
import typer
import uvloop
from pydantic import BaseModel, TypeAdapter, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.prompt import Confirm
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.ops import rebuild as rebuilding
from stanceline.ops import replay as replaying
from stanceline.ops import status as stats
from stanceline.settings import Settings
from stanceline.store.db import create_engine
from stanceline.store.errors import StoreUnavailable, is_transient

app = typer.Typer(
    help="stanceline: event-sourced stance tracking.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

Host = Annotated[str, typer.Option(help="Interface for the HTTP API.")]
Port = Annotated[int, typer.Option(help="Port for the HTTP API.")]


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )


T = TypeVar("T")
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Report what would happen; change nothing.")
]
StreamName = Annotated[
    str | None, typer.Option("--stream", help="The stream (default: STANCELINE_STREAM).")
]
_MOMENT = TypeAdapter(datetime)
_SPAN = TypeAdapter(timedelta)


def moment_option(value: str) -> datetime:
    """An RFC 3339 time (UTC if it has no offset), a date, or an ISO 8601 duration ago."""
    try:
        if value[:1] in ("P", "p"):
            return datetime.now(UTC) - _SPAN.validate_python(value.upper())
        moment = _MOMENT.validate_python(value)
    except ValidationError:
        raise typer.BadParameter(
            f"{value!r}: expected an RFC 3339 time, a date, or a duration ago such as P7D or PT1H"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def required_settings(*, redis: bool, database: bool = True) -> Settings:
    settings = Settings()
    missing = settings.missing(database=database, redis=redis)
    if missing:
        fail(f"set {' and '.join(missing)}", 2)
    return settings


def shown_url(url: str | None) -> str:
    try:
        return make_url(url or "").render_as_string(hide_password=True)
    except Exception:
        return "(unparseable URL)"


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """Every command's event loop: uvloop's, whose round trips cost a fraction of asyncio's
    own. The projector and the API make thousands of them a second."""
    return uvloop.run(work)


def run_or_exit(settings: Settings, work: Coroutine[Any, Any, T]) -> T:
    """Run the work; turn every expected failure into one clear line and exit 1."""
    try:
        return run_async(work)
    except KeyboardInterrupt:
        fail("interrupted; running the command again is safe", 130)
    except (replaying.ReplayError, stats.SchemaNotReady, rebuilding.RebuildRunning) as exc:
        fail(str(exc))
    except (RedisConnectionError, RedisTimeoutError) as exc:
        fail(f"cannot reach Redis at {shown_url(settings.redis_url)}: {exc}")
    except RedisError as exc:
        fail(f"Redis answered: {exc}")
    except Exception as exc:
        if isinstance(exc, StoreUnavailable) or is_transient(exc):
            fail(f"cannot reach Postgres at {shown_url(settings.database_url)}: {first_line(exc)}")
        if isinstance(exc, DBAPIError):
            fail(f"Postgres answered: {first_line(exc.orig or exc)}")
        raise


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


@asynccontextmanager
async def engine_for(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database_url or "", pool_size=2)
    try:
        await stats.require_schema(engine)
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def redis_for(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(
        settings.redis_url or "", socket_connect_timeout=5, socket_timeout=30
    )
    try:
        yield client
    finally:
        await client.aclose()


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int | None], None]]:
    with Progress(
        SpinnerColumn(),
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def emit(document: BaseModel | dict[str, Any]) -> None:
    if isinstance(document, BaseModel):
        text = document.model_dump_json(indent=2)
    else:
        text = TypeAdapter(dict[str, Any]).dump_json(document, indent=2).decode()
    sys.stdout.write(text + "\n")


def confirmed(question: str) -> bool:
    """Asked on stderr, so that stdout stays one JSON document."""
    try:
        return Confirm.ask(question, console=console, default=False)
    except EOFError:
        return False


def entry_id_option(value: str | None, option: str, *specials: str) -> str | None:
    if value is None or value in specials:
        return value
    try:
        replaying.entry_key(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None
    return value
