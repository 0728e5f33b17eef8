"""Webhook subscriptions over HTTP, behind the admin token (``/v1/admin/subscriptions``).

The rest of the API reads through a read-only engine; these routes change data, so they
use the writer engine the app builds only when an admin token is configured
(``app.state.writer``). The checks and writes are ``ops.subscriptions``', shared with
``stanceline subscriptions``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from stanceline.cursors import encode_cursor
from stanceline.ops import subscriptions as ops
from stanceline.readmodel.params import CursorText, Limit, decode_cursor
from stanceline.readmodel.problems import (
    BadRequest,
    InvalidParam,
    NotFound,
    Unavailable,
    documented,
)
from stanceline.readmodel.routes.admin import require_admin
from stanceline.store import deliveries, subscriptions
from stanceline.store.db import writing

router = APIRouter(
    prefix="/admin/subscriptions",
    tags=["admin", "subscriptions"],
    dependencies=[Depends(require_admin)],
    responses=documented(401, 503),
)

IdText = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]
SubscriptionId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_]+$", description="From POST.")
]


class SubscriptionRequest(BaseModel):
    url: str = Field(max_length=2048, description="Absolute http(s) URL of the receiver.")
    actors: list[IdText] | None = Field(default=None, max_length=100, description="None: all.")
    topics: list[IdText] | None = Field(default=None, max_length=100, description="None: all.")
    kinds: list[str] | None = Field(
        default=None, max_length=3, description="`flip`, `change`, `withdrawn` (default flip)."
    )
    include_descendants: bool = Field(
        default=False, description="Watch each actor's rolled-up series, not its own."
    )


class SubscriptionList(BaseModel):
    subscriptions: list[subscriptions.Subscription]


class DeliveryList(BaseModel):
    deliveries: list[deliveries.Delivery]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class ReplayRequest(BaseModel):
    since: AwareDatetime = Field(description="Feed entries recorded at or after this time.")
    until: AwareDatetime | None = Field(default=None, description="... and before this one.")


class Replayed(BaseModel):
    queued: int = Field(description="Messages queued again or for the first time.")


def _writer(request: Request) -> AsyncEngine:
    writer: AsyncEngine | None = request.app.state.writer
    if writer is None:
        raise Unavailable(
            "subscriptions live in the primary database, and this API has no writer URL"
            " (it reads STANCELINE_READ_DATABASE_URL only): set STANCELINE_DATABASE_URL, or"
            " manage subscriptions where it is set (`stanceline subscriptions`)"
        )
    return writer


Writer = Annotated[AsyncEngine, Depends(_writer)]


def _refused(exc: ops.SubscriptionRefused) -> BadRequest:
    return BadRequest(str(exc), [InvalidParam(name=exc.field, reason=exc.reason)])


@router.post(
    "",
    status_code=201,
    response_model=subscriptions.NewSubscription,
    responses=documented(400),
)
async def create(
    request: Request, engine: Writer, body: SubscriptionRequest
) -> subscriptions.NewSubscription:
    """Subscribe a receiver; the answer carries its signing secret, shown only here."""
    try:
        return await ops.subscribe(
            engine,
            body.url,
            actors=body.actors or (),
            topics=body.topics or (),
            kinds=body.kinds,
            include_descendants=body.include_descendants,
            allow_private=request.app.state.settings.webhook_allow_private,
        )
    except ops.SubscriptionRefused as exc:
        raise _refused(exc) from None


@router.get("", response_model=SubscriptionList)
async def list_subscriptions(engine: Writer) -> SubscriptionList:
    """Every subscription, oldest first, with its state."""
    async with writing(engine) as conn:
        return SubscriptionList(subscriptions=await subscriptions.list_all(conn))


@router.get(
    "/{subscription_id}", response_model=subscriptions.Subscription, responses=documented(400, 404)
)
async def show(engine: Writer, subscription_id: SubscriptionId) -> subscriptions.Subscription:
    """One subscription: active, or disabled and why."""
    async with writing(engine) as conn:
        found = await subscriptions.get(conn, subscription_id)
    if found is None:
        raise NotFound(f"no subscription with id {subscription_id!r}")
    return found


@router.delete("/{subscription_id}", status_code=204, responses=documented(400, 404))
async def remove(engine: Writer, subscription_id: SubscriptionId) -> Response:
    """Remove a subscription with its undelivered messages and its log."""
    try:
        await ops.remove(engine, subscription_id)
    except ops.NoSuchSubscription as exc:
        raise NotFound(str(exc)) from None
    return Response(status_code=204)


@router.get(
    "/{subscription_id}/deliveries", response_model=DeliveryList, responses=documented(400, 404)
)
async def delivery_log(
    engine: Writer, subscription_id: SubscriptionId, cursor: CursorText = None, limit: Limit = 100
) -> DeliveryList:
    """The delivery log, oldest message first: each with its attempts and next attempt."""
    key = decode_cursor(cursor, int)
    async with writing(engine) as conn:
        if await subscriptions.get(conn, subscription_id) is None:
            raise NotFound(f"no subscription with id {subscription_id!r}")
        found = await deliveries.page(conn, subscription_id, key[0] if key else 0, limit)
    after = found.next_after
    return DeliveryList(
        deliveries=found.deliveries,
        next_cursor=encode_cursor(after) if after is not None else None,
    )


@router.post(
    "/{subscription_id}/replay",
    status_code=202,
    response_model=Replayed,
    responses=documented(400, 404),
)
async def replay(engine: Writer, subscription_id: SubscriptionId, body: ReplayRequest) -> Replayed:
    """Send again, under the same webhook ids, what the subscription would have received of
    the changes recorded in [since, until)."""
    try:
        queued = await ops.replay(engine, subscription_id, body.since, body.until)
    except ops.NoSuchSubscription as exc:
        raise NotFound(str(exc)) from None
    except ops.SubscriptionRefused as exc:
        raise _refused(exc) from None
    return Replayed(queued=queued)
