"""Operator commands on the stream and the projection: replay, rebuild, status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Column, Table

from stanceline.cli.common import (
    DryRun,
    Json,
    StreamName,
    app,
    emit,
    engine_for,
    entry_id_option,
    progress_bar,
    redis_for,
    required_settings,
    results,
    run_or_exit,
)
from stanceline.ops import rebuild as rebuilding
from stanceline.ops import replay as replaying
from stanceline.ops import status as stats
from stanceline.ops.rebuild_metrics import RebuildMetrics
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
                settings,
                _replay(
                    settings,
                    name,
                    start,
                    end or "+",
                    dry_run,
                    progress,
                    shards=1 if stream else settings.stream_shards,
                ),
            )
    out = results()
    if json_output:
        emit(result)
    elif isinstance(result, replaying.GroupReport):
        verb = "would move" if dry_run else "moved"
        if not result.existed:
            verb = "would create" if dry_run else "created"
        was = f" (was at {result.previous_position})" if result.existed else ""
        out.print(
            f"{verb} group {result.group} on {result.stream} at {result.position}{was}",
            markup=False,
        )
    elif isinstance(result, replaying.ReplayReport):
        would = "would be " if dry_run else ""
        out.print(
            f"{result.entries} entries from {result.stream}: {result.new} {would}new, "
            f"{result.duplicates} {would}duplicates, {result.dead_lettered} {would}dead-lettered, "
            f"{result.already_dead_lettered} already dead-lettered (skipped)",
            markup=False,
        )
        for shard in result.shards:
            out.print(
                f"  {shard.stream}: {shard.entries} entries, {shard.new} {would}new, "
                f"{shard.duplicates} {would}duplicates, {shard.dead_lettered} {would}dead-lettered",
                markup=False,
            )


async def _replay(
    settings: Settings,
    stream: str,
    start: str,
    end: str,
    dry_run: bool,
    progress: Callable[[int, int | None], None],
    shards: int = 1,
) -> replaying.ReplayReport:
    async with engine_for(settings) as engine, redis_for(settings) as client:
        return await replaying.replay_shards(
            engine,
            client,
            stream,
            shards,
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
    metrics = RebuildMetrics(settings.pushgateway_url)

    async def run(progress: Callable[[int, int], None]) -> rebuilding.RebuildReport:
        async with engine_for(settings) as engine:
            return await rebuilding.rebuild(engine, dry_run=dry_run, progress=progress)

    def both(applied: int, target: int) -> None:
        bar(applied, target)
        metrics.progress(applied, target)

    metrics.started()
    ok = False
    try:
        with progress_bar("rebuilding") as bar:
            report = run_or_exit(settings, run(both))
        ok = True
    finally:
        metrics.finished(ok=ok)
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
    out = results()
    done = "rebuilt (swapped in)" if report.swapped else "built aside (nothing swapped)"
    out.print(
        f"{done}: {report.events} events in {report.seconds:.2f}s "
        f"({report.events_per_second:,.0f} events/s)"
    )
    if report.differences is not None:
        differing = {t: n for t, n in report.differences.items() if n}
        out.print(
            f"rows differing from the live tables: {differing}" if differing else "no differences",
            markup=False,
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
            return await stats.status(
                engine,
                client,
                stream or settings.stream,
                group=settings.group,
                shards=1 if stream else settings.stream_shards,
            )

    result = run_or_exit(settings, run())
    if json_output:
        emit(result)
        return
    show_status(result)


def show_status(result: stats.Status) -> None:
    """The status as an operator reads it, on stdout; every id and name whole."""
    out = results()
    s = result.stream
    out.print(
        f"stream [bold]{escape(s.name)}[/]: {s.length} entries"
        + (f", {s.first_entry_id} … {s.last_entry_id}" if s.last_entry_id else "")
        + ("" if s.exists else " (does not exist)")
    )
    if len(s.shards) > 1:
        for shard in s.shards:
            lag = sum(g.lag_entries for g in shard.groups)
            pending = sum(g.pending for g in shard.groups)
            out.print(
                f"  shard {shard.name}: {shard.length} entries, lag {lag}, pending {pending}",
                markup=False,
            )
    table = Table(
        Column("group", overflow="fold"),
        Column("consumer", overflow="fold"),
        Column("pending", justify="right"),
        Column("idle s", justify="right"),
        Column("lag", justify="right"),
        Column("lag s", justify="right"),
        Column("last delivered", overflow="fold"),
    )
    if not s.groups:
        table = Table("no consumer groups")
    for g in s.groups:
        table.add_row(
            escape(g.name),
            "" if g.exists else "[yellow]not created yet[/]",
            str(g.pending),
            "",
            str(g.lag_entries),
            f"{g.lag_seconds:.1f}",
            g.last_delivered_id or "-",
        )
        for c in g.consumers:
            table.add_row("", escape(c.name), str(c.pending), f"{c.idle_seconds:.1f}", "", "", "")
    out.print(table)
    for g in s.groups:
        if not g.exists:
            out.print(
                f"group {escape(g.name)} does not exist yet: the first projector creates it at "
                f"0 and then reads all {g.lag_entries} entries",
            )
    out.print(f"events stored: {result.store.events} (last position {result.store.last_position})")
    reasons = ", ".join(f"{k}: {v}" for k, v in result.dead_letters.by_reason.items())
    out.print(
        f"dead letters: {result.dead_letters.total}" + (f" ({reasons})" if reasons else ""),
        markup=False,
    )
    p = result.projection
    rebuilt = (
        f"last rebuilt {p.rebuilt_at:%Y-%m-%d %H:%M:%S%z} ({p.rebuilt_events} events, "
        f"{p.rebuilt_seconds:.1f}s)"
        if p.rebuilt_at
        else "never rebuilt"
    )
    out.print(f"projection {p.version}: revision {p.revision} (head {p.head}), {rebuilt}")


# --- dead letters -----------------------------------------------------------------------------
