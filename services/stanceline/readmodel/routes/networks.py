"""Agreement networks over time windows (discourse network analysis), in four formats.

The statements come from ``store/network_rows.py`` (the projection, or the fold at
``known_at``); every number is computed by ``domain/network.py``, whose formulas the
README states; ``readmodel/network_formats.py`` writes the answer.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, Field

from stanceline.domain.network import (
    Aggregation,
    Kernel,
    Normalization,
    agreement_networks,
    layout,
    window_count,
)
from stanceline.readmodel.network_formats import MEDIA_TYPES, RENDER, Answer, NetworkFormat
from stanceline.readmodel.params import (
    DURATION_HELP,
    AsOf,
    id_list,
    parse_duration,
    parse_moment,
    parse_start,
)
from stanceline.readmodel.problems import BadRequest, InvalidParam, documented
from stanceline.readmodel.routes.deps import IncludeDescendants, KnownAt, Reader
from stanceline.store.network_rows import network_input

router = APIRouter(tags=["analysts"])

MOST_WINDOWS = 1000
"""More windows than this is refused: a daily step over three years is about as fine
as an analyst asks for, and each window repeats every node."""


class NetworkNode(BaseModel):
    id: str
    name: str
    kind: str | None


class NetworkEdge(BaseModel):
    source: str = Field(description="The smaller of the two actor ids.")
    target: str
    congruence: float = Field(description="Σ wᵢ wⱼ (1 − |sᵢ − sⱼ| / 2), raw.")
    conflict: float = Field(description="Σ wᵢ wⱼ |sᵢ − sⱼ| / 2, raw.")
    weight: float | None = Field(
        description="The aggregation, normalised; null where the normalisation's denominator is 0."
    )


class NetworkWindow(BaseModel):
    start: datetime
    stop: datetime
    middle: datetime
    statements: int = Field(description="Visible statements with start ≤ said_at ≤ stop.")
    polarization: float | None = Field(
        description="Σ conflict / Σ (congruence + conflict) over the edges; null when 0."
    )
    nodes: list[NetworkNode] = Field(description="The same in every window, isolates too.")
    edges: list[NetworkEdge]


class AgreementNetwork(BaseModel):
    kernel: Kernel
    aggregation: Aggregation
    normalization: Normalization
    include_descendants: bool
    as_of: datetime | None
    known_at: datetime | None
    windows: list[NetworkWindow]


_TEXT = {"schema": {"type": "string"}}
_ACCEPTED = {
    "text/csv": "csv",
    "application/graphml+xml": "graphml",
    "application/gexf+xml": "gexf",
}


def _negotiated(format: NetworkFormat | None, accept: str | None) -> NetworkFormat:
    """``format`` wins; else the first of our media types the Accept header names."""
    if format is not None:
        return format
    for part in (accept or "").split(","):
        found = _ACCEPTED.get(part.split(";")[0].strip().lower())
        if found is not None:
            return found  # type: ignore[return-value]
    return "json"


def _bad(name: str, reason: str) -> BadRequest:
    return BadRequest(f"{name}: {reason}", [InvalidParam(name=name, reason=reason)])


@router.get(
    "/networks/agreement",
    response_model=AgreementNetwork,
    responses={
        200: {
            "description": "One network per window: JSON, CSV (an edge a line), GraphML "
            "(a graph per window) or GEXF (one dynamic graph, windows as spells).",
            "content": {
                "text/csv": _TEXT,
                "application/graphml+xml": _TEXT,
                "application/gexf+xml": _TEXT,
            },
        },
        **documented(400),
    },
)
async def agreement(
    conn: Reader,
    topics: Annotated[
        str,
        Query(
            description="Comma-separated topic ids (at most 1000).",
            examples=["ukraine-behind-belgorod-raid,us-vehicles-used-in-belgorod-raid"],
        ),
    ],
    start_text: Annotated[
        str,
        Query(
            alias="from",
            description="Start of the said_at range (RFC 3339, or a date).",
            examples=["2023-05-01"],
        ),
    ],
    stop_text: Annotated[
        str,
        Query(
            alias="to",
            description="End of the said_at range (RFC 3339, or a date: its end).",
            examples=["2023-05-31"],
        ),
    ],
    as_of: AsOf,
    known_at: KnownAt,
    actors: Annotated[
        str | None,
        Query(
            description="Comma-separated actor ids (at most 1000). Default: every actor "
            "with a visible statement on those topics in the range, each for itself."
        ),
    ] = None,
    include_descendants: IncludeDescendants = False,
    window: Annotated[
        str | None, Query(description=f"Window length; default the whole range. {DURATION_HELP}")
    ] = None,
    step: Annotated[
        str | None, Query(description=f"Between window starts; default the window. {DURATION_HELP}")
    ] = None,
    kernel: Kernel = Kernel.UNIFORM,
    aggregation: Aggregation = Aggregation.SUBTRACT,
    normalization: Normalization = Normalization.NONE,
    format: Annotated[
        NetworkFormat | None,
        Query(description="json (default), csv, graphml or gexf; else the Accept header."),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Who agrees with whom on these topics, window by window: congruence and conflict of
    every pair of actors, kernel-weighted about each window's middle (formulas in the
    README's Analysts section)."""
    topic_ids = id_list("topics", topics, most=1000) or []
    actor_ids = id_list("actors", actors, most=1000)
    start, stop = parse_start("from", start_text), parse_moment("to", stop_text)
    if start is None or stop is None:  # both are required: FastAPI has refused a missing one
        raise _bad("from", "required")
    if stop < start:
        raise _bad("to", "the range ends before it starts")
    length = parse_duration("window", window) or stop - start
    every = parse_duration("step", step)
    if not length:
        raise _bad("window", "the range has no length: give a window")
    if length > stop - start:
        raise _bad("window", "longer than the range from `from` to `to`")
    if window_count(start, stop, length, every or length) > MOST_WINDOWS:
        raise _bad("step", f"more than {MOST_WINDOWS} windows; take a longer step")
    windows = layout(start, stop, length, every)
    found = await network_input(
        conn,
        topic_ids=topic_ids,
        actor_ids=actor_ids,
        include_descendants=include_descendants,
        start=start,
        stop=min(stop, as_of) if as_of else stop,
        known_at=known_at,
    )
    chosen = _negotiated(format, accept)
    query: dict[str, Any] = {
        "kernel": kernel.value,
        "aggregation": aggregation.value,
        "normalization": normalization.value,
        "include_descendants": include_descendants,
        "as_of": as_of.isoformat() if as_of else None,
        "known_at": known_at.isoformat() if known_at else None,
    }

    def compute() -> bytes:
        networks = agreement_networks(
            found.said,
            windows,
            kernel=kernel,
            aggregation=aggregation,
            normalization=normalization,
        )
        return RENDER[chosen](Answer(found.nodes, networks, query))

    # CPU work off the event loop, so other requests are not held up behind it.
    body = await asyncio.to_thread(compute)
    return Response(body, media_type=MEDIA_TYPES[chosen], headers={"Vary": "Accept"})
