"""``stanceline network``: the agreement network ``/v1/networks/agreement`` answers, from
the command line.

The request is checked and answered by the same code as the route
(``readmodel/network_request.py``), so the output is the route's bytes: JSON by
default, or CSV, GraphML or GEXF, on stdout or into a file.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from stanceline.cli.common import app, engine_for, required_settings, run_or_exit, write_all
from stanceline.cli.export import bad_parameter
from stanceline.domain.network import Aggregation, Kernel, Normalization
from stanceline.readmodel.network_formats import NetworkFormat
from stanceline.readmodel.network_request import network_answer, network_request
from stanceline.readmodel.params import DURATION_HELP, parse_moment
from stanceline.readmodel.problems import ApiError
from stanceline.store.db import reading
from stanceline.store.known import settled

Text = Annotated[str | None, typer.Option(metavar="TIME", help="RFC 3339 with offset, or a date.")]


@app.command(rich_help_panel="Analysts")
def network(
    topics: Annotated[str, typer.Option(help="Comma-separated topic ids (at most 1000).")],
    start: Annotated[
        str, typer.Option("--from", metavar="TIME", help="Start of the said_at range.")
    ],
    stop: Annotated[str, typer.Option("--to", metavar="TIME", help="End of the said_at range.")],
    actors: Annotated[
        str | None, typer.Option(help="Comma-separated actor ids; default every actor.")
    ] = None,
    include_descendants: Annotated[
        bool, typer.Option(help="Each listed actor stands for its sub-organisations too.")
    ] = False,
    window: Annotated[str | None, typer.Option(help=DURATION_HELP)] = None,
    step: Annotated[str | None, typer.Option(help="Between window starts (as --window).")] = None,
    kernel: Kernel = Kernel.UNIFORM,
    aggregation: Aggregation = Aggregation.SUBTRACT,
    normalization: Normalization = Normalization.NONE,
    as_of: Text = None,
    known_at: Text = None,
    file_format: Annotated[
        NetworkFormat, typer.Option("--format", help="json, csv, graphml or gexf.")
    ] = "json",
    json_output: Annotated[
        bool, typer.Option("--json", help="The JSON answer (the default format).")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Who agrees with whom on these topics, window by window (formulas in the README's
    Analysts section): the answer of GET /v1/networks/agreement."""
    chosen: NetworkFormat = "json" if json_output else file_format
    try:
        moment = parse_moment("known_at", known_at)
        request = network_request(
            topics=topics,
            actors=actors,
            include_descendants=include_descendants,
            start_text=start,
            stop_text=stop,
            window=window,
            step=step,
            kernel=kernel,
            aggregation=aggregation,
            normalization=normalization,
            as_of=parse_moment("as_of", as_of),
        )
    except ApiError as error:
        raise bad_parameter(error) from None
    settings = required_settings(redis=False)

    async def run() -> bytes:
        async with engine_for(settings) as engine, reading(engine) as conn:
            answered: datetime | None = None if moment is None else await settled(conn, moment)
            return await network_answer(conn, request, answered, chosen)

    body = run_or_exit(settings, run())
    if output is None:
        write_all(body if body.endswith(b"\n") else body + b"\n")
        return
    partial = output.with_name(f".{output.name}.partial")
    partial.write_bytes(body)
    os.replace(partial, output)
