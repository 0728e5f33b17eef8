"""Operator commands on the stream and the projection: replay, rebuild, status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table

from stanceline.cli.common import (
    DryRun,
    Json,
    StreamName,
    app,
    console,
    emit,
    engine_for,
    entry_id_option,
    progress_bar,
    redis_for,
    required_settings,
    run_or_exit,
)
from stanceline.ops import rebuild as rebuilding
from stanceline.ops import replay as replaying
from stanceline.ops import status as stats
from stanceline.settings import Settings


@app.command(rich_help_panel="Operating")
def replay(
    start: Annotated[
        str,
        typer.Option("--from", help="First entry id (MS or MS-SEQ), or - for the stream's start."),
    ],
    end: Annotated[
        str | None,
        typer.Option("--to", help="Last entry id, or + for the stream's end (the default)."),
    ] = None,
    stream: StreamName = None,
    group: Annotated[
        str | None,
        typer.Option(
            help="Instead of replaying, create this consumer group at --from, or move it "
            "there if it exists (its consumers and pending entries stay). The group is then "
            "handed every entry after --from (0: the whole stream, $: only new ones).",
        ),
    ] = None,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Re-deliver a range of the stream through validation, dedupe and projection.

    Idempotent: events already stored count as duplicates and change nothing, and
    entries that already have a dead letter are skipped (retry them with `stanceline
    dlq redrive`). The consumer group is not touched. With --group, position a
    consumer group instead.
    """
    settings = required_settings(redis=True, database=group is None)
    name = stream or settings.stream
    if group is not None:
        if end is not None:
            raise typer.BadParameter("does not apply with --group", param_hint="--to")
        position = entry_id_option(start, "--from", "$") or "$"
        result: BaseModel = run_or_exit(
            settings, _position_group(settings, name, group, position, dry_run)
        )
    else:
        entry_id_option(start, "--from", "-")
        entry_id_option(end, "--to", "+")
        try:
            replaying.check_range(start, end or "+")
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        with progress_bar("replaying") as progress:
            result = run_or_exit(
                settings, _replay(settings, name, start, end or "+", dry_run, progress)
            )
    if json_output:
        emit(result)
    elif isinstance(result, replaying.GroupReport):
        verb = "would move" if dry_run else "moved"
        if not result.existed:
            verb = "would create" if dry_run else "created"
        was = f" (was at {result.previous_position})" if result.existed else ""
        console.print(f"{verb} group {result.group} on {result.stream} at {result.position}{was}")
    elif isinstance(result, replaying.ReplayReport):
        would = "would be " if dry_run else ""
        console.print(
            f"{result.entries} entries from {result.stream}: {result.new} {would}new, "
            f"{result.duplicates} {would}duplicates, {result.dead_lettered} {would}dead-lettered, "
            f"{result.already_dead_lettered} already dead-lettered (skipped)"
        )


async def _replay(
    settings: Settings,
    stream: str,
    start: str,
    end: str,
    dry_run: bool,
    progress: Callable[[int, int | None], None],
) -> replaying.ReplayReport:
    async with engine_for(settings) as engine, redis_for(settings) as client:
        return await replaying.replay(
            engine,
            client,
            stream,
            start,
            end,
            dry_run=dry_run,
            chunk=settings.batch_size,
            progress=progress,
        )


async def _position_group(
    settings: Settings, stream: str, group: str, position: str, dry_run: bool
) -> replaying.GroupReport:
    async with redis_for(settings) as client:
        return await replaying.position_group(client, stream, group, position, dry_run=dry_run)


@app.command(rich_help_panel="Operating")
def rebuild(dry_run: DryRun = False, json_output: Json = False) -> None:
    """Rebuild every projection from the event store while the service keeps serving.

    The new tables are built aside and swapped in at once. --dry-run builds them,
    compares them with the live ones (rows differing per table), and drops them.
    """
    settings = required_settings(redis=False)

    async def run(progress: Callable[[int, int], None]) -> rebuilding.RebuildReport:
        async with engine_for(settings) as engine:
            return await rebuilding.rebuild(engine, dry_run=dry_run, progress=progress)

    with progress_bar("rebuilding") as progress:
        report = run_or_exit(settings, run(progress))
    document = {
        "dry_run": dry_run,
        "events": report.events,
        "seconds": report.seconds,
        "events_per_second": report.events_per_second,
        "swapped": report.swapped,
        "differences": report.differences,
    }
    if json_output:
        emit(document)
        return
    done = "rebuilt (swapped in)" if report.swapped else "built aside (nothing swapped)"
    console.print(
        f"{done}: {report.events} events in {report.seconds:.2f}s "
        f"({report.events_per_second:,.0f} events/s)"
    )
    if report.differences is not None:
        differing = {t: n for t, n in report.differences.items() if n}
        console.print(
            f"rows differing from the live tables: {differing}" if differing else "no differences"
        )


@app.command(rich_help_panel="Operating")
def status(stream: StreamName = None, json_output: Json = False) -> None:
    """The stream, its consumer groups, dead letters, the store and the projection.

    Per group: pending = delivered to a consumer and not acknowledged yet; lag =
    entries after the group's last-delivered id (not delivered to anyone yet), and
    lag seconds = the age of the oldest of them by the Redis clock.
    """
    settings = required_settings(redis=True)

    async def run() -> stats.Status:
        async with engine_for(settings) as engine, redis_for(settings) as client:
            return await stats.status(engine, client, stream or settings.stream)

    result = run_or_exit(settings, run())
    if json_output:
        emit(result)
        return
    s = result.stream
    console.print(
        f"stream [bold]{escape(s.name)}[/]: {s.length} entries"
        + (f", {s.first_entry_id} … {s.last_entry_id}" if s.last_entry_id else "")
        + ("" if s.exists else " (does not exist)")
    )
    table = Table("group", "consumer", "pending", "idle s", "lag", "lag s", "last delivered")
    if not s.groups:
        table = Table("no consumer groups")
    for g in s.groups:
        table.add_row(
            g.name,
            "",
            str(g.pending),
            "",
            str(g.lag_entries),
            f"{g.lag_seconds:.1f}",
            g.last_delivered_id,
        )
        for c in g.consumers:
            table.add_row("", c.name, str(c.pending), f"{c.idle_seconds:.1f}", "", "", "")
    console.print(table)
    console.print(
        f"events stored: {result.store.events} (last position {result.store.last_position})"
    )
    reasons = ", ".join(f"{k}: {v}" for k, v in result.dead_letters.by_reason.items())
    console.print(
        f"dead letters: {result.dead_letters.total}" + (f" ({reasons})" if reasons else "")
    )
    p = result.projection
    rebuilt = (
        f"last rebuilt {p.rebuilt_at:%Y-%m-%d %H:%M:%S%z} ({p.rebuilt_events} events, "
        f"{p.rebuilt_seconds:.1f}s)"
        if p.rebuilt_at
        else "never rebuilt"
    )
    console.print(f"projection {p.version}: revision {p.revision} (head {p.head}), {rebuilt}")


# --- dead letters -----------------------------------------------------------------------------
