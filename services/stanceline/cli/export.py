"""``stanceline export statements|changes``: the HTTP exports, written to a file.

The rows (``store/export_source.py``) and the writer (``store/export_files.py``) are
the ones ``/v1/export/...`` streams, and the filters are read by the same parameter
parsers, so a file and a download of the same request hold the same bytes. The file
is written beside its destination and renamed into place once complete.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel

from stanceline.cli.common import (
    Json,
    app,
    emit,
    engine_for,
    progress_bar,
    required_settings,
    results,
    run_or_exit,
)
from stanceline.readmodel.params import id_list, parse_moment, parse_start
from stanceline.readmodel.problems import ApiError
from stanceline.store.db import reading
from stanceline.store.export_files import FileFormat, encode
from stanceline.store.export_source import export_rows
from stanceline.store.exports import ExportFilter, Kind
from stanceline.store.known import settled


class ExportReport(BaseModel):
    kind: Kind
    format: FileFormat
    file: str
    rows: int
    bytes: int
    known_at: datetime | None
    """The moment answered (``known_at`` settled: never later than what can change)."""


def bad_parameter(error: ApiError) -> typer.BadParameter:
    """A parameter the API would answer 400 as the usage error typer prints (exit 2),
    naming the option."""
    named = error.invalid[0].name if error.invalid else None
    hint = f"--{named.replace('_', '-')}" if named else None
    return typer.BadParameter(error.detail, param_hint=hint)


def _parsed(parse: Callable[[str, str | None], Any], name: str, value: str | None) -> Any:
    try:
        return parse(name, value)
    except ApiError as error:
        raise bad_parameter(error) from None


Ids = Annotated[str | None, typer.Option(help="Comma-separated ids (at most 1000).")]
Moment = Annotated[
    str | None, typer.Option(metavar="TIME", help="RFC 3339 with offset, or a date.")
]


@app.command(rich_help_panel="Analysts")
def export(
    kind: Annotated[Kind, typer.Argument(help="statements, or changes (shift and flip points).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write.")],
    file_format: Annotated[
        Literal["csv", "parquet"], typer.Option("--format", help="csv or parquet.")
    ] = "csv",
    topics: Ids = None,
    actors: Ids = None,
    include_descendants: Annotated[
        bool, typer.Option(help="Each listed actor stands for its sub-organisations too.")
    ] = False,
    start: Annotated[
        str | None,
        typer.Option("--from", metavar="TIME", help="said_at at or after (a date: its start)."),
    ] = None,
    stop: Annotated[
        str | None,
        typer.Option("--to", metavar="TIME", help="said_at at or before (a date: its end)."),
    ] = None,
    as_of: Moment = None,
    known_at: Moment = None,
    json_output: Json = False,
) -> None:
    """Write statements or change points with provenance to a CSV or Parquet file, in
    (said_at, statement id) order; with --known-at the file is final."""
    selection = ExportFilter(
        topic_ids=_parsed(lambda n, v: id_list(n, v, most=1000), "topics", topics),
        actor_ids=_parsed(lambda n, v: id_list(n, v, most=1000), "actors", actors),
        include_descendants=include_descendants,
        start=_parsed(parse_start, "from", start),
        stop=_parsed(parse_moment, "to", stop),
        as_of=_parsed(parse_moment, "as_of", as_of),
        known_at=_parsed(parse_moment, "known_at", known_at),
    )
    settings = required_settings(redis=False)
    partial = output.with_name(f".{output.name}.partial")

    async def run(progress: Callable[[int, int | None], None]) -> ExportReport:
        counted = 0

        async with engine_for(settings) as engine, reading(engine) as conn:
            chosen = selection
            if selection.known_at is not None:
                chosen = replace(selection, known_at=await settled(conn, selection.known_at))

            async def counting() -> AsyncIterator[list[tuple[Any, ...]]]:
                nonlocal counted
                async for batch in export_rows(conn, kind, chosen):
                    counted += len(batch)
                    progress(counted, None)
                    yield batch

            size = 0
            with partial.open("wb") as sink:
                async for chunk in encode(kind, file_format, counting()):
                    sink.write(chunk)
                    size += len(chunk)
            os.replace(partial, output)
        return ExportReport(
            kind=kind,
            format=file_format,
            file=str(output),
            rows=counted,
            bytes=size,
            known_at=chosen.known_at,
        )

    try:
        with progress_bar(f"exporting {kind}") as progress:
            report = run_or_exit(settings, run(progress))
    finally:
        partial.unlink(missing_ok=True)
    if json_output:
        emit(report)
        return
    results().print(
        f"wrote {report.rows} {kind} rows to {report.file} ({report.bytes} bytes)", markup=False
    )
