"""Questions for dashboards: a topic's timeline in calendar buckets, actor × topic matrix."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from stanceline.domain.rollup import buckets as fold_buckets
from stanceline.domain.rollup import current as last_point
from stanceline.domain.timeline import as_of as said_by
from stanceline.readmodel import schemas, views
from stanceline.readmodel.etag import conditional
from stanceline.readmodel.params import AsOf, id_list
from stanceline.readmodel.problems import documented
from stanceline.readmodel.routes.deps import IncludeDescendants, KnownAt, Reader, known_topic
from stanceline.store import queries
from stanceline.store.known import known_projection

router = APIRouter(tags=["dashboards"])

IdList = Annotated[str | None, Query(description="Comma-separated ids (at most 100).")]
RequiredIdList = Annotated[str, Query(description="Comma-separated ids (at most 100).")]


@router.get(
    "/topics/{topic_id}/timeline",
    response_model=schemas.Timeline,
    responses={304: {"description": "Not modified (If-None-Match)"}, **documented(400, 404)},
)
async def timeline(
    request: Request,
    conn: Reader,
    topic_id: str,
    as_of: AsOf,
    known_at: KnownAt,
    bucket: Literal["day", "week", "month"] = "month",
    actors: IdList = None,
    include_descendants: IncludeDescendants = False,
) -> Response:
    """Per actor and calendar bucket (UTC; weeks start on Monday): the confidence-weighted
    mean score, the number of statements and the last stance."""
    await known_topic(conn, topic_id)
    actor_ids = id_list("actors", actors)
    if known_at is None:
        rows = await queries.timeline_buckets(
            conn,
            topic_id,
            actor_ids=actor_ids,
            rollup=include_descendants,
            unit=bucket,
            as_of=as_of,
        )
        items = [
            schemas.Bucket(
                actor_id=r.actor_id,
                start=r.bucket,
                mean_score=r.mean_score,
                count=r.count,
                last_stance=r.last_stance,
                last_statement_id=r.last_statement_id,
            )
            for r in rows
        ]
    else:
        projection = await known_projection(
            conn,
            known_at,
            actors=actor_ids,
            topics=[topic_id],
            include_descendants=include_descendants,
        )
        series = {
            a: said_by(points, as_of)
            for (a, t, rollup), points in projection.series().items()
            if t == topic_id
            and rollup == include_descendants
            and (actor_ids is None or a in actor_ids)
        }
        items = [
            schemas.Bucket(
                actor_id=a,
                start=b.start,
                mean_score=b.mean_score,
                count=b.count,
                last_stance=b.last_stance.value,
                last_statement_id=b.last_statement_id,
            )
            for a in sorted(series)
            for b in fold_buckets(series[a], bucket)
        ]
    body = schemas.Timeline(
        topic_id=topic_id,
        bucket=bucket,
        include_descendants=include_descendants,
        as_of=as_of,
        known_at=known_at,
        buckets=items,
    )
    return conditional(request, body)


@router.get(
    "/matrix",
    response_model=schemas.Matrix,
    responses={304: {"description": "Not modified (If-None-Match)"}, **documented(400)},
)
async def matrix(
    request: Request,
    conn: Reader,
    actors: RequiredIdList,
    topics: RequiredIdList,
    as_of: AsOf,
    known_at: KnownAt,
    include_descendants: IncludeDescendants = False,
) -> Response:
    """Current stances of each listed actor on each listed topic, for a heatmap."""
    actor_ids = id_list("actors", actors) or []
    topic_ids = id_list("topics", topics) or []
    if known_at is None:
        rows = await queries.current_stances(
            conn,
            topic_ids=topic_ids,
            actor_ids=actor_ids,
            rollup=include_descendants,
            as_of=as_of,
        )
        cells = [views.stance_from_row(r) for r in rows]
    else:
        projection = await known_projection(
            conn,
            known_at,
            actors=actor_ids,
            topics=topic_ids,
            include_descendants=include_descendants,
        )
        cells = []
        for a in actor_ids:
            for t in topic_ids:
                last = last_point(projection.history(a, t, include_descendants), as_of)
                if last is not None:
                    cells.append(views.stance_of(a, t, last))
    body = schemas.Matrix(
        actors=actor_ids,
        topics=topic_ids,
        include_descendants=include_descendants,
        as_of=as_of,
        known_at=known_at,
        cells=cells,
    )
    return conditional(request, body)
