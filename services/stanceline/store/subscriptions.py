"""Webhook subscriptions: who is told about which change points, and whether they still are.

A subscription names actors and topics (none: all), the kinds it is sent and whether an
actor's rolled-up series is meant. Its ``receives`` comes from the domain's rule, so the
outbox's SQL only compares strings. Functions take a connection and never commit.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from stanceline.domain.webhooks import Kind, receives
from stanceline.store.db import ReadConnection
from stanceline.store.tables import webhook_subscriptions as subs

SECRET_BYTES = 32


class Subscription(BaseModel):
    """A subscription as the admin API and the CLI show it (never with its secret)."""

    id: str
    url: str
    actors: list[str] = Field(description="Watched actors; empty: every actor.")
    topics: list[str] = Field(description="Watched topics; empty: every topic.")
    kinds: list[Kind]
    include_descendants: bool
    state: str = Field(description="`active` or `disabled`.")
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    failing_since: datetime | None = Field(
        default=None, description="Every attempt since this moment has failed."
    )
    created_at: datetime


class NewSubscription(Subscription):
    secret: str = Field(description="`whsec_` + base64: shown only in this answer.")


def new_secret() -> str:
    """``whsec_`` and base64 of 32 random bytes, as Standard Webhooks spells a secret."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _shown(row: sa.Row[tuple[object, ...]]) -> Subscription:
    m = row._mapping
    return Subscription(
        id=m["id"],
        url=m["url"],
        actors=list(m["actors"]),
        topics=list(m["topics"]),
        kinds=[Kind(k) for k in m["kinds"]],
        include_descendants=m["include_descendants"],
        state="disabled" if m["disabled_at"] is not None else "active",
        disabled_reason=m["disabled_reason"],
        disabled_at=m["disabled_at"],
        failing_since=m["failing_since"],
        created_at=m["created_at"],
    )


async def create(
    conn: AsyncConnection,
    url: str,
    actors: Sequence[str],
    topics: Sequence[str],
    kinds: Sequence[Kind],
    include_descendants: bool,
) -> NewSubscription:
    secret = new_secret()
    chosen = sorted(set(kinds), key=list(Kind).index)
    row = (
        await conn.execute(
            subs.insert()
            .values(
                id=f"sub_{uuid.uuid4().hex}",
                url=url,
                secret=secret,
                actors=sorted(set(actors)),
                topics=sorted(set(topics)),
                kinds=[k.value for k in chosen],
                receives=receives(chosen),
                include_descendants=include_descendants,
            )
            .returning(*subs.c)
        )
    ).one()
    return NewSubscription(**_shown(row).model_dump(), secret=secret)


async def list_all(conn: AsyncConnection | ReadConnection) -> list[Subscription]:
    rows = await conn.execute(sa.select(subs).order_by(subs.c.created_at, subs.c.id))
    return [_shown(r) for r in rows]


async def get(conn: AsyncConnection | ReadConnection, subscription_id: str) -> Subscription | None:
    row = (await conn.execute(sa.select(subs).where(subs.c.id == subscription_id))).first()
    return None if row is None else _shown(row)


async def remove(conn: AsyncConnection, subscription_id: str) -> bool:
    """Delete a subscription with its outbox and log (the foreign keys cascade)."""
    done = await conn.execute(
        subs.delete().where(subs.c.id == subscription_id).returning(subs.c.id)
    )
    return done.first() is not None


async def disable(conn: AsyncConnection, subscription_id: str, reason: str) -> None:
    await conn.execute(
        subs.update()
        .where(subs.c.id == subscription_id, subs.c.disabled_at.is_(None))
        .values(disabled_at=sa.func.clock_timestamp(), disabled_reason=reason)
    )


async def succeeded(conn: AsyncConnection, subscription_ids: set[str]) -> None:
    """A delivery to each of these succeeded: they are no longer failing."""
    if subscription_ids:
        await conn.execute(
            subs.update()
            .where(subs.c.id.in_(sorted(subscription_ids)), subs.c.failing_since.is_not(None))
            .values(failing_since=None)
        )


async def failed(conn: AsyncConnection, subscription_id: str) -> datetime:
    """Note a failed attempt; the moment since which every attempt has failed."""
    since: datetime = await conn.scalar(
        subs.update()
        .where(subs.c.id == subscription_id)
        .values(failing_since=sa.func.coalesce(subs.c.failing_since, sa.func.clock_timestamp()))
        .returning(subs.c.failing_since)
    )
    return since
