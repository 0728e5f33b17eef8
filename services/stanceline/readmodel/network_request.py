"""An agreement network request, checked, and its answer in a format: one path for the
HTTP route and ``stanceline network``.

Every check here fails as a 400 problem (``BadRequest``, naming the parameter); the CLI
turns it into a usage error. The numbers are ``domain/network.py``'s, the inputs
``store/network_rows.py``'s, the formats ``network_formats.py``'s.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stanceline.domain.network import (
    Aggregation,
    Kernel,
    Normalization,
    Window,
    agreement_networks,
    layout,
    window_count,
)
from stanceline.readmodel.network_formats import RENDER, Answer, NetworkFormat
from stanceline.readmodel.params import id_list, parse_duration, parse_moment, parse_start
from stanceline.readmodel.problems import BadRequest, InvalidParam
from stanceline.store.db import ReadConnection
from stanceline.store.network_rows import network_input

MOST_WINDOWS = 1000
"""More windows than this is refused: a daily step over three years is about as fine
as an analyst asks for, and each window repeats every node."""


def _bad(name: str, reason: str) -> BadRequest:
    return BadRequest(f"{name}: {reason}", [InvalidParam(name=name, reason=reason)])


@dataclass(frozen=True, slots=True)
class NetworkRequest:
    topic_ids: list[str]
    actor_ids: list[str] | None
    include_descendants: bool
    start: datetime
    stop: datetime
    windows: list[Window]
    kernel: Kernel
    aggregation: Aggregation
    normalization: Normalization
    as_of: datetime | None


def network_request(
    *,
    topics: str,
    actors: str | None,
    include_descendants: bool,
    start_text: str,
    stop_text: str,
    window: str | None,
    step: str | None,
    kernel: Kernel,
    aggregation: Aggregation,
    normalization: Normalization,
    as_of: datetime | None,
) -> NetworkRequest:
    """The parameters as the API documents them, checked; the windows laid out."""
    topic_ids = id_list("topics", topics, most=1000) or []
    actor_ids = id_list("actors", actors, most=1000)
    start, stop = parse_start("from", start_text), parse_moment("to", stop_text)
    if start is None or stop is None:
        raise _bad("from" if start is None else "to", "required")
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
    return NetworkRequest(
        topic_ids=topic_ids,
        actor_ids=actor_ids,
        include_descendants=include_descendants,
        start=start,
        stop=stop,
        windows=layout(start, stop, length, every),
        kernel=kernel,
        aggregation=aggregation,
        normalization=normalization,
        as_of=as_of,
    )


async def network_answer(
    conn: ReadConnection,
    request: NetworkRequest,
    known_at: datetime | None,
    file_format: NetworkFormat,
) -> bytes:
    """The answer's bytes; ``known_at`` already settled (``known.settled``)."""
    found = await network_input(
        conn,
        topic_ids=request.topic_ids,
        actor_ids=request.actor_ids,
        include_descendants=request.include_descendants,
        start=request.start,
        stop=min(request.stop, request.as_of) if request.as_of else request.stop,
        known_at=known_at,
    )
    query: dict[str, Any] = {
        "kernel": request.kernel.value,
        "aggregation": request.aggregation.value,
        "normalization": request.normalization.value,
        "include_descendants": request.include_descendants,
        "as_of": request.as_of.isoformat() if request.as_of else None,
        "known_at": known_at.isoformat() if known_at else None,
    }

    def compute() -> bytes:
        networks = agreement_networks(
            found.said,
            request.windows,
            kernel=request.kernel,
            aggregation=request.aggregation,
            normalization=request.normalization,
        )
        return RENDER[file_format](Answer(found.nodes, networks, query))

    # CPU work off the event loop, so other requests are not held up behind it.
    return await asyncio.to_thread(compute)
