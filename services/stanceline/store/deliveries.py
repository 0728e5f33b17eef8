"""The delivery log of a subscription: each message, its attempts and what comes next.

Read by the admin API (on its writer engine) and ``stanceline subscriptions deliveries``.
"""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from stanceline.domain.webhooks import event_type, message_id
from stanceline.store.db import ReadConnection


class AttemptRecord(BaseModel):
    attempted_at: datetime
    status_code: int | None = Field(description="The receiver's status; none: no answer.")
    latency_ms: float
    error: str | None = Field(default=None, description="Why no answer came, in words.")


class Delivery(BaseModel):
    id: int = Field(description="Position in this log (the cursor's key).")
    webhook_id: str = Field(description="The `webhook-id` header: the same on every attempt.")
    type: str
    change_id: int
    actor_id: str
    topic_id: str
    include_descendants: bool
    sequence: int
    state: str = Field(description="`pending`, `delivered` or `failed`.")
    next_attempt_at: datetime | None = Field(description="When a pending message is tried.")
    created_at: datetime
    finished_at: datetime | None
    attempts: list[AttemptRecord]


class DeliveryPage(BaseModel):
    deliveries: list[Delivery]
    next_after: int | None = Field(description="The last id of this page, when more follow.")


_PAGE = sa.text(
    """
    SELECT o.id, o.subscription_id, o.change_id, o.topic_id, o.actor_id, o.rollup,
           o.sequence, o.state, o.next_attempt_at, o.created_at, o.finished_at,
           c.status, c.change,
           coalesce((SELECT json_agg(json_build_object(
                        'attempted_at', a.attempted_at, 'status_code', a.status_code,
                        'latency_ms', a.latency_ms, 'error', a.error) ORDER BY a.id)
                       FROM webhook_attempts a WHERE a.outbox_id = o.id), '[]') AS attempts
      FROM webhook_outbox o JOIN changes c ON c.id = o.change_id
     WHERE o.subscription_id = :sid AND o.id > :after
     ORDER BY o.id
     LIMIT :limit
    """
)


async def page(
    conn: AsyncConnection | ReadConnection, subscription_id: str, after: int, limit: int
) -> DeliveryPage:
    """Messages oldest first, after the log id ``after``."""
    rows = list(
        await conn.execute(_PAGE, {"sid": subscription_id, "after": after, "limit": limit + 1})
    )
    more = len(rows) > limit
    shown = [
        Delivery(
            id=r.id,
            webhook_id=message_id(r.subscription_id, r.change_id),
            type=event_type(r.status, r.change),
            change_id=r.change_id,
            actor_id=r.actor_id,
            topic_id=r.topic_id,
            include_descendants=r.rollup,
            sequence=r.sequence,
            state=r.state,
            next_attempt_at=r.next_attempt_at if r.state == "pending" else None,
            created_at=r.created_at,
            finished_at=r.finished_at,
            attempts=[AttemptRecord.model_validate(a) for a in _json(r.attempts)],
        )
        for r in rows[:limit]
    ]
    return DeliveryPage(deliveries=shown, next_after=shown[-1].id if more and shown else None)


def _json(value: object) -> list[dict[str, object]]:
    if isinstance(value, str):
        loaded: list[dict[str, object]] = json.loads(value)
        return loaded
    return value  # type: ignore[return-value]
