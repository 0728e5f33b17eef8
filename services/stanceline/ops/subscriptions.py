"""Webhook subscriptions as an operator makes them: checked, then stored, then replayed.

The admin API and ``stanceline subscriptions`` both call these, so a URL, a kind or an
actor is refused for the same reason, in the same words, on either.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from stanceline.domain.webhooks import DEFAULT_KINDS, Kind
from stanceline.egress import UrlRefused, check_url
from stanceline.store import outbox
from stanceline.store import subscriptions as store
from stanceline.store.db import writing
from stanceline.store.tables import actors as actor_table
from stanceline.store.tables import topics as topic_table


class SubscriptionRefused(ValueError):
    """A subscription that cannot be made as asked: which field, and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NoSuchSubscription(LookupError):
    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"no subscription with id {subscription_id!r}")


def kinds_of(names: Sequence[str] | None) -> list[Kind]:
    """The kinds asked for (default: flips); an unknown one is refused by name."""
    if not names:
        return list(DEFAULT_KINDS)
    known = {k.value: k for k in Kind}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SubscriptionRefused(
            "kinds", f"unknown kind {unknown[0]!r}; expected any of {', '.join(known)}"
        )
    return [known[n] for n in names]


async def _unknown(conn: AsyncConnection, column: sa.Column[str], ids: Sequence[str]) -> list[str]:
    if not ids:
        return []
    found = set(await conn.scalars(sa.select(column).where(column.in_(sorted(set(ids))))))
    return sorted(set(ids) - found)


async def subscribe(
    engine: AsyncEngine,
    url: str,
    *,
    actors: Sequence[str] = (),
    topics: Sequence[str] = (),
    kinds: Sequence[str] | None = None,
    include_descendants: bool = False,
    allow_private: bool = False,
) -> store.NewSubscription:
    """Check everything a subscription names, then store it (its secret shown once)."""
    chosen = kinds_of(kinds)
    try:
        await check_url(url, allow_private=allow_private)
    except UrlRefused as exc:
        raise SubscriptionRefused("url", str(exc)) from None
    async with writing(engine) as conn:
        for field, column, ids in (
            ("actors", actor_table.c.actor_id, actors),
            ("topics", topic_table.c.topic_id, topics),
        ):
            unknown = await _unknown(conn, column, ids)
            if unknown:
                raise SubscriptionRefused(field, f"unknown {field[:-1]} {unknown[0]!r}")
        return await store.create(conn, url, actors, topics, chosen, include_descendants)


async def replay(
    engine: AsyncEngine, subscription_id: str, since: datetime, until: datetime | None
) -> int:
    """Queue again, under their ids, the messages of feed entries recorded in [since,
    until); how many."""
    if until is not None and until <= since:
        raise SubscriptionRefused("until", "must be after since")
    async with writing(engine) as conn:
        if await store.get(conn, subscription_id) is None:
            raise NoSuchSubscription(subscription_id)
        return await outbox.replay(conn, subscription_id, since, until)


async def remove(engine: AsyncEngine, subscription_id: str) -> None:
    async with writing(engine) as conn:
        if not await store.remove(conn, subscription_id):
            raise NoSuchSubscription(subscription_id)
