"""``stanceline subscriptions``: webhook subscriptions for flip alerts, as the admin API has."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Column, Table

from stanceline.cli.common import (
    Json,
    app,
    emit,
    engine_for,
    fail,
    moment_option,
    required_settings,
    results,
    run_or_exit,
)
from stanceline.ops import subscriptions as ops
from stanceline.store import deliveries, subscriptions
from stanceline.store.db import writing

subs = typer.Typer(
    help="Webhook subscriptions: who is sent which stance changes (Standard Webhooks).",
    no_args_is_help=True,
)
app.add_typer(subs, name="subscriptions", rich_help_panel="Operating")
Id = Annotated[str, typer.Argument(metavar="ID", help="From `subscriptions list`.")]


@subs.command("add")
def add(
    url: Annotated[str, typer.Argument(help="The receiver: an absolute http(s) URL.")],
    actor: Annotated[list[str] | None, typer.Option(help="Watch this actor (repeat).")] = None,
    topic: Annotated[list[str] | None, typer.Option(help="Watch this topic (repeat).")] = None,
    kind: Annotated[
        list[str] | None, typer.Option(help="flip, change or withdrawn (repeat; default flip).")
    ] = None,
    include_descendants: Annotated[
        bool, typer.Option(help="Watch each actor's rolled-up series.")
    ] = False,
    json_output: Json = False,
) -> None:
    """Subscribe a receiver; prints its signing secret, shown only now."""
    settings = required_settings(redis=False)

    async def run() -> subscriptions.NewSubscription:
        async with engine_for(settings) as engine:
            return await ops.subscribe(
                engine,
                url,
                actors=actor or (),
                topics=topic or (),
                kinds=kind,
                include_descendants=include_descendants,
                allow_private=settings.webhook_allow_private,
            )

    try:
        made = run_or_exit(settings, run())
    except ops.SubscriptionRefused as exc:
        fail(str(exc), 2)
    if json_output:
        emit(made)
        return
    out = results()
    out.print(f"subscribed {made.id} → {made.url}", markup=False)
    out.print(f"secret (shown only now): {made.secret}", markup=False)


@subs.command("list")
def list_command(json_output: Json = False) -> None:
    """Every subscription and its state."""
    settings = required_settings(redis=False)

    async def run() -> list[subscriptions.Subscription]:
        async with engine_for(settings) as engine, writing(engine) as conn:
            return await subscriptions.list_all(conn)

    found = run_or_exit(settings, run())
    if json_output:
        emit({"subscriptions": [s.model_dump(mode="json") for s in found]})
        return
    table = Table(
        Column("id", no_wrap=True), Column("url", overflow="fold"), "watches", "kinds", "state"
    )
    for s in found:
        watches = ", ".join(s.actors) or "every actor"
        if s.include_descendants:
            watches += " (with descendants)"
        if s.topics:
            watches += " on " + ", ".join(s.topics)
        state = s.state + (f": {s.disabled_reason}" if s.disabled_reason else "")
        table.add_row(s.id, escape(s.url), escape(watches), ", ".join(s.kinds), escape(state))
    results().print(table)


@subs.command("show")
def show(subscription_id: Id, json_output: Json = False) -> None:
    """One subscription: active, or disabled and why."""
    settings = required_settings(redis=False)

    async def run() -> subscriptions.Subscription | None:
        async with engine_for(settings) as engine, writing(engine) as conn:
            return await subscriptions.get(conn, subscription_id)

    found = run_or_exit(settings, run())
    if found is None:
        fail(f"no subscription with id {subscription_id!r}")
    if json_output:
        emit(found)
        return
    for key, value in found.model_dump(mode="json").items():
        results().print(f"{key}: {value}", markup=False)


@subs.command("remove")
def remove(subscription_id: Id, json_output: Json = False) -> None:
    """Remove a subscription, its undelivered messages and its log."""
    settings = required_settings(redis=False)

    async def run() -> None:
        async with engine_for(settings) as engine:
            await ops.remove(engine, subscription_id)

    try:
        run_or_exit(settings, run())
    except ops.NoSuchSubscription as exc:
        fail(str(exc))
    if json_output:
        emit({"removed": subscription_id})
        return
    results().print(f"removed {subscription_id}", markup=False)


@subs.command("deliveries")
def deliveries_command(
    subscription_id: Id,
    after: Annotated[int, typer.Option(min=0, help="Only log ids after this one (paging).")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    json_output: Json = False,
) -> None:
    """The delivery log: each message, its attempts, status codes, latency, next attempt."""
    settings = required_settings(redis=False)

    async def run() -> deliveries.DeliveryPage | None:
        async with engine_for(settings) as engine, writing(engine) as conn:
            if await subscriptions.get(conn, subscription_id) is None:
                return None
            return await deliveries.page(conn, subscription_id, after, limit)

    page = run_or_exit(settings, run())
    if page is None:
        fail(f"no subscription with id {subscription_id!r}")
    if json_output:
        emit(page)
        return
    table = Table("id", Column("webhook-id", no_wrap=True), "type", "state", "attempts", "next")
    for d in page.deliveries:
        tries = ", ".join(
            f"{a.status_code or a.error or '?'} ({a.latency_ms:.0f} ms)" for a in d.attempts
        )
        upcoming = f"{d.next_attempt_at:%Y-%m-%d %H:%M:%S}" if d.next_attempt_at else ""
        table.add_row(str(d.id), d.webhook_id, d.type, d.state, escape(tries), upcoming)
    out = results()
    out.print(table)
    if page.next_after is not None:
        out.print(f"more after id {page.next_after} (--after {page.next_after})", markup=False)


@subs.command("replay")
def replay(
    subscription_id: Id,
    since: Annotated[datetime, typer.Option(parser=moment_option, metavar="TIME")],
    until: Annotated[datetime | None, typer.Option(parser=moment_option, metavar="TIME")] = None,
    json_output: Json = False,
) -> None:
    """Send again, under the same webhook ids, the changes recorded in [since, until).

    TIME: RFC 3339, a date, or a duration ago (P7D)."""
    settings = required_settings(redis=False)

    async def run() -> int:
        async with engine_for(settings) as engine:
            return await ops.replay(engine, subscription_id, since, until)

    try:
        queued = run_or_exit(settings, run())
    except ops.NoSuchSubscription as exc:
        fail(str(exc))
    except ops.SubscriptionRefused as exc:
        fail(str(exc), 2)
    if json_output:
        emit({"queued": queued})
        return
    results().print(f"queued {queued} messages for {subscription_id}", markup=False)
