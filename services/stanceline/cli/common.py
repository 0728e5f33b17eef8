"""What every command shares: the typer app, the consoles, settings, exits and output.

A command's answer goes to stdout: human text and tables (``results()``), or with
``--json`` one JSON document. Progress, prompts, warnings and errors go to stderr
(``console``). A failure ends with a one-line message and a non-zero exit: 1 when
the work failed or a server is unreachable, 2 for a bad option or a missing
setting. That holds for every command, not only those that call ``run_or_exit``:
the root command turns the same expected failures into the same one line.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
import uvloop
from pydantic import BaseModel, TypeAdapter, ValidationError
from pythonjsonlogger.json import JsonFormatter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
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
from typer.core import TyperGroup
from typer.exceptions import TyperException

from stanceline.ops import rebuild as rebuilding
from stanceline.ops import replay as replaying
from stanceline.ops import status as stats
from stanceline.redis_client import RedisClient, connect
from stanceline.settings import Settings
from stanceline.store.db import create_engine
from stanceline.store.errors import StoreUnavailable, is_transient


class _Commands(TyperGroup):
    """The root command. An expected failure that escapes a subcommand (a server that
    does not answer, a file that cannot be read) ends as one line on stderr and exit 1,
    like the failures ``run_or_exit`` catches; anything else is a bug, and keeps its
    traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException, EOFError):
            raise
        except Exception as exc:
            if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
                raise  # typer's own handling: a reader that went away (`| head`)
            try:
                settings: Settings | None = Settings()
            except Exception:
                settings = None
            line = failure_line(exc, settings)
            if line is None:
                raise
            fail(line)


app = typer.Typer(
    cls=_Commands,
    help="stanceline: event-sourced stance tracking.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
"""Progress, prompts, warnings and errors: stderr."""
_UNBOUNDED = 1_000_000


def results() -> Console:
    """Where a command's human answer goes: stdout. On a terminal, as wide as it is
    (ids fold onto a second line rather than being cut); anywhere else (``| less``,
    ``> file``) nothing is wrapped or cut, whatever ``COLUMNS`` or the terminal says."""
    if sys.stdout.isatty():
        return Console(highlight=False)
    return Console(highlight=False, width=_UNBOUNDED)


Host = Annotated[str, typer.Option(help="Interface for the HTTP API.")]
Port = Annotated[int, typer.Option(help="Port for the HTTP API.")]


def setup_logging(verbose: bool = False) -> None:
    """Plain text for a person at a terminal; one JSON object per line for a log pipeline
    (``STANCELINE_LOG_FORMAT=json``), with a line's context fields (``event_id``,
    ``stream_entry_id``, ...) as keys of their own.

    Off a terminal, text lines are not wrapped: a wrapped warning is three lines
    to a log collector.
    """
    handler: logging.Handler
    if Settings().log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    elif console.is_terminal:
        handler = RichHandler(console=console, show_path=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s")
        )
        handler.addFilter(_context_suffix)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])


_CONTEXT_FIELDS = ("event_id", "stream_entry_id", "first_entry_id", "last_entry_id")


def _context_suffix(record: logging.LogRecord) -> bool:
    """A plain line carries the same context fields a JSON line does, as key=value."""
    fields = [f"{k}={getattr(record, k)}" for k in _CONTEXT_FIELDS if hasattr(record, k)]
    record.context = (" " + " ".join(fields)) if fields else ""
    return True


T = TypeVar("T")
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Report what would happen; change nothing.")
]
StreamName = Annotated[
    str | None,
    typer.Option(
        "--stream",
        help="One stream key (default: STANCELINE_STREAM, all of its shards when it has several).",
    ),
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
    """One line on stderr, never wrapped (a URL in it stays whole), then exit."""
    console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
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


def command_path(program: Path) -> str:
    """How to type a program stanceline ships, as short as it goes: the copy in the running
    interpreter's scripts directory if it has one (``.venv/bin/redis-cli``), relative to the
    working directory when below it, absolute otherwise."""
    beside = Path(sys.executable).parent / program.name
    if beside.is_file() and os.access(beside, os.X_OK):
        program = beside
    directory = program.parent.resolve()
    try:
        relative = directory.relative_to(Path.cwd().resolve())
    except ValueError:
        return str(directory / program.name)
    return str(relative / program.name) if relative.parts else f"./{program.name}"


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
    except Exception as exc:
        line = failure_line(exc, settings)
        if line is None:
            raise
        fail(line)


def failure_line(exc: BaseException, settings: Settings | None) -> str | None:
    """The one line that says what went wrong, or None for a bug (not an expected failure).

    Redis errors come wrapped by redis-py; Postgres ones come as SQLAlchemy's, or as the
    driver's own ``OSError`` when the connection is refused, which is told apart from any
    other ``OSError`` (a file, a port) by where it was raised.
    """
    notes = "".join(f"; {note}" for note in getattr(exc, "__notes__", ()))
    if isinstance(exc, replaying.ReplayError | stats.SchemaNotReady | rebuilding.RebuildRunning):
        return str(exc) + notes
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        url = shown_url(settings.redis_url if settings else None)
        return f"cannot reach Redis at {url}: {_one_line(str(exc))}{notes}"
    if isinstance(exc, RedisError):
        return f"Redis answered: {_one_line(str(exc))}{notes}"
    if isinstance(exc, StoreUnavailable) or (
        is_transient(exc) and (isinstance(exc, DBAPIError) or _raised_by_postgres(exc))
    ):
        url = shown_url(settings.database_url if settings else None)
        return f"cannot reach Postgres at {url}: {first_line(exc)}{notes}"
    if isinstance(exc, DBAPIError):
        return f"Postgres answered: {first_line(exc.orig or exc)}{notes}"
    if isinstance(exc, OSError):
        return first_line(exc) + notes
    return None


_POSTGRES_CODE = ("/asyncpg/", "/sqlalchemy/", "/alembic/")


def _raised_by_postgres(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return any(part in frame.filename for frame in frames for part in _POSTGRES_CODE)


def first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_one_line(str(exc))}"


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


@asynccontextmanager
async def engine_for(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database_url or "", pool_size=2)
    try:
        await stats.require_schema(engine)
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def redis_for(settings: Settings) -> AsyncIterator[RedisClient]:
    client = connect(settings.redis_url or "", socket_connect_timeout=5, socket_timeout=30)
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
        text = document.model_dump_json(indent=2).encode()
    else:
        text = TypeAdapter(dict[str, Any]).dump_json(document, indent=2)
    write_all(text + b"\n")


def write_all(data: bytes) -> None:
    """Every byte on stdout. Unbuffered (``python -u``, PYTHONUNBUFFERED), stdout is a bare
    file whose write may take only part of a large buffer, and says how much it took."""
    sys.stdout.flush()
    stream = sys.stdout.buffer
    view = memoryview(data)
    while view:
        written = stream.write(view)
        view = view[written if written is not None else 0 :]
    stream.flush()


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
