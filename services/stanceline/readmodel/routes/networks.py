"""Agreement networks over time windows (discourse network analysis), in four formats.

The request is checked and answered by ``readmodel/network_request.py`` (shared with
``stanceline network``): the statements from ``store/network_rows.py``, every number from
``domain/network.py``, whose formulas the README states, the formats from
``readmodel/network_formats.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, Field

from stanceline.domain.network import Aggregation, Kernel, Normalization
from stanceline.readmodel.network_formats import MEDIA_TYPES, NetworkFormat
from stanceline.readmodel.network_request import network_answer, network_request
from stanceline.readmodel.params import DURATION_HELP, AsOf
from stanceline.readmodel.problems import documented
from stanceline.readmodel.routes.deps import IncludeDescendants, KnownAt, Reader

router = APIRouter(tags=["analysts"])


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
    request = network_request(
        topics=topics,
        actors=actors,
        include_descendants=include_descendants,
        start_text=start_text,
        stop_text=stop_text,
        window=window,
        step=step,
        kernel=kernel,
        aggregation=aggregation,
        normalization=normalization,
        as_of=as_of,
    )
    chosen = _negotiated(format, accept)
    body = await network_answer(conn, request, known_at, chosen)
    return Response(body, media_type=MEDIA_TYPES[chosen], headers={"Vary": "Accept"})
