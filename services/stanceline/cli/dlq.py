"""``stanceline dlq``: list, show, redrive and purge dead letters."""

from __future__ import annotations

import base64
import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Column, Table
from rich.text import Text

from stanceline.cli.common import (
    DryRun,
    Json,
    app,
    confirmed,
    emit,
    engine_for,
    fail,
    moment_option,
    progress_bar,
    required_settings,
    results,
    run_or_exit,
    write_all,
)
from stanceline.ops import dlq as actions
from stanceline.store import dead_letters
from stanceline.store.db import reading

dlq = typer.Typer(
    help="Dead letters: list, show, redrive through today's validation, purge.\n\n"
    "A dead letter's reason is the field its rejection names (data.said_at, delivery, store, "
    "id, ...) or `entry` for an entry that was not an event at all; --reason matches it "
    "exactly or as a dotted prefix (data matches data.said_at).",
    no_args_is_help=True,
)
app.add_typer(dlq, name="dlq", rich_help_panel="Operating")
Reason = Annotated[str | None, typer.Option(help="Only this reason (or dotted prefix).")]
PREVIEW_BYTES = 4096
"""How much of a dead letter's raw bytes `dlq show` prints; --raw and --json carry all."""


@dlq.command("list")
def dlq_list(
    reason: Reason = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            parser=moment_option, metavar="TIME", help="Only those last seen at or after TIME."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 100,
    after: Annotated[int, typer.Option(min=0, help="Only ids after this one (paging).")] = 0,
    json_output: Json = False,
) -> None:
    """List dead letters, oldest first. TIME: RFC 3339, a date, or a duration ago (P7D)."""
    settings = required_settings(redis=False)

    async def run() -> dead_letters.DeadLetterPage:
        async with engine_for(settings) as engine, reading(engine) as conn:
            selection = dead_letters.Selection(reason=reason, since=since)
            return await dead_letters.list_dead_letters(conn, selection, after=after, limit=limit)

    page = run_or_exit(settings, run())
    if json_output:
        emit(page)
        return
    out = results()
    table = Table(
        Column("id", justify="right", no_wrap=True),
        Column("entry", overflow="fold"),
        Column("reason", overflow="fold"),
        Column("times", justify="right"),
        Column("last seen", no_wrap=True),
        "detail",
    )
    for d in page.dead_letters:
        table.add_row(
            str(d.id),
            escape(d.stream_entry_id or ""),
            escape(d.reason_key),
            str(d.delivery_count),
            f"{d.last_seen:%Y-%m-%d %H:%M:%S}",
            escape(d.reason[:100]),
        )
    out.print(table)
    more = (
        f"; more after id {page.next_after} (--after {page.next_after})" if page.next_after else ""
    )
    out.print(f"{len(page.dead_letters)} of {page.total} shown{more}", markup=False)


@dlq.command("show")
def dlq_show(
    dead_letter_id: Annotated[int, typer.Argument(metavar="ID", min=1, help="From `dlq list`.")],
    raw_output: Annotated[
        bool,
        typer.Option("--raw", help="Write only the raw bytes, exactly as they arrived, on stdout."),
    ] = False,
    json_output: Json = False,
) -> None:
    """One dead letter, with a preview of its raw bytes (the first 4 KiB).

    --raw writes all the raw bytes, exactly, on stdout (`> entry.bin`); --json carries
    them whole too (raw_base64, and raw_text when they are UTF-8).
    """
    if raw_output and json_output:
        raise typer.BadParameter("give --raw or --json, not both", param_hint="--raw")
    settings = required_settings(redis=False)

    async def run() -> dead_letters.DeadLetterDetail | None:
        async with engine_for(settings) as engine, reading(engine) as conn:
            return await dead_letters.show(conn, dead_letter_id)

    found = run_or_exit(settings, run())
    if found is None:
        fail(f"no dead letter with id {dead_letter_id}")
    if json_output:
        emit(found)
        return
    raw = base64.b64decode(found.raw_base64)
    if raw_output:
        write_all(raw)
        return
    out = results()
    for key, value in found.model_dump(exclude={"raw_text", "raw_base64"}).items():
        out.print(Text.assemble((key, "bold"), f": {_visible(str(value))}"), soft_wrap=True)
    utf8 = found.raw_text is not None
    shown = _preview(raw, utf8=utf8)
    kind = "UTF-8 text" if utf8 else "not UTF-8 (invalid bytes shown as \\xNN)"
    out.print(Text.assemble(("raw", "bold"), f": {len(raw)} bytes, {kind}"), soft_wrap=True)
    out.print(Text(_visible(shown.decode("utf-8", "backslashreplace"))), soft_wrap=True)
    left = len(raw) - len(shown)
    if left:
        out.print(
            f"… {left} more bytes not shown (the first {len(shown)} of {len(raw)} are): "
            f"`stanceline dlq show {dead_letter_id} --raw` writes them all, exactly, on "
            "stdout; --json carries them whole",
            markup=False,
            soft_wrap=True,
        )


def _preview(raw: bytes, *, utf8: bool) -> bytes:
    """The first PREVIEW_BYTES, cut before a character that would not fit whole."""
    cut = min(len(raw), PREVIEW_BYTES)
    if utf8:
        while 0 < cut < len(raw) and raw[cut] & 0xC0 == 0x80:  # a continuation byte
            cut -= 1
    return raw[:cut]


def _visible(text: str) -> str:
    """Control characters (an escape sequence in a hostile entry) as escapes, not as
    commands to the operator's terminal; new lines and tabs stay."""
    return "".join(
        c
        if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf")
        else (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        for c in text
    )


@dlq.command("redrive")
def dlq_redrive(
    ids: Annotated[
        list[int] | None, typer.Argument(metavar="[ID]...", help="Dead letter ids.")
    ] = None,
    reason: Reason = None,
    everything: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Send dead letters back through today's validation and store.

    Those that now pass are projected and removed; those that fail again stay, one
    row each with the reason refreshed. Safe to re-run: a dead letter whose event
    is already stored is just removed.
    """
    chosen = [bool(ids), reason is not None, everything]
    if sum(chosen) != 1:
        raise typer.BadParameter("give dead letter ids, --reason or --all (exactly one)")
    settings = required_settings(redis=False)
    selection = dead_letters.Selection(ids=ids or None, reason=reason)

    async def run(progress: Callable[[int, int | None], None]) -> actions.RedriveReport:
        async with engine_for(settings) as engine:
            return await actions.redrive(
                engine, selection, dry_run=dry_run, chunk=settings.batch_size, progress=progress
            )

    with progress_bar("redriving") as progress:
        report = run_or_exit(settings, run(progress))
    if json_output:
        emit(report)
        return
    out = results()
    would = "would be " if dry_run else ""
    out.print(
        f"{report.selected} dead letters: {report.projected} {would}projected, "
        f"{report.removed} {would}removed, {report.still_failing} still failing, "
        f"{report.skipped} skipped (no stream entry or no event bytes)",
        markup=False,
    )
    if report.missing:
        out.print(f"not found (already redriven or purged?): {report.missing}", markup=False)


@dlq.command("purge")
def dlq_purge(
    before: Annotated[
        datetime,
        typer.Option(
            parser=moment_option, metavar="TIME", help="Delete those last seen before TIME."
        ),
    ],
    reason: Reason = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Delete dead letters for good. TIME: RFC 3339, a date, or a duration ago (P30D)."""
    settings = required_settings(redis=False)
    selection = dead_letters.Selection(reason=reason, before=before)

    async def matching() -> int:
        async with engine_for(settings) as engine, reading(engine) as conn:
            return await dead_letters.count(conn, selection)

    async def purge() -> int:
        async with engine_for(settings) as engine:
            return await actions.purge(engine, selection)

    matched = run_or_exit(settings, matching())
    purged = 0
    if matched and not dry_run:
        what = f" with reason {reason}" if reason else ""
        question = f"Delete {matched} dead letters{what} last seen before {before.isoformat()}?"
        if not yes and not confirmed(question):
            fail("nothing deleted (not confirmed; --yes skips the question)")
        purged = run_or_exit(settings, purge())
    if json_output:
        emit(
            {
                "before": before.isoformat(),
                "reason": reason,
                "dry_run": dry_run,
                "matched": matched,
                "purged": purged,
            }
        )
    elif dry_run:
        results().print(f"would delete {matched} dead letters")
    else:
        results().print(f"deleted {purged} dead letters")
