"""The benchmark's verdicts against the issue's targets, as a rich table and as JSON rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

FULL_SCALE = 1_000_000
"""The targets marked @1M are stated for this many stored events."""


@dataclass(frozen=True)
class Verdict:
    figure: str
    target: str
    measured: str
    result: str
    """pass, MISS, baseline or info; a * when a target stated for 1M events was measured
    with fewer (an indication, not a verdict)."""


def _result(ok: bool | None, *, scaled: bool = False, kind: str = "info") -> str:
    if ok is None:
        return kind
    return ("pass" if ok else "MISS") + ("*" if scaled else "")


def _entries(n: int) -> str:
    """200000 → 200k, 1000000 → 1M, 20001 → 20,001."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"


def _backfill(document: dict[str, Any]) -> list[Verdict]:
    """The backfill's ingest against the in-order one it was compared with (``run.py``)."""
    backfill = document.get("backfill")
    if not backfill:
        return []
    shuffled = backfill["backfill"]
    stored = shuffled["stored"]
    same_run = backfill["compared_with"] == "projector"
    if same_run:
        figure = "1. Ingest: backfill (said_at in random order)"
        compared = "in-order projector above"
        in_order_ok = bool(document["ingest"]["projector"]["completed"])
    else:
        size = _entries(int(shuffled["entries"]))
        figure = f"1. Ingest: backfill (said_at in random order), on {size}"
        compared = f"in-order on the same {size}"
        in_order_ok = bool(backfill["in_order"]["completed"])
    right = (
        stored["events"] == stored["expected_events"]
        and stored["dead_letters"] == stored["expected_dead_letters"]
    )
    measured = (
        f"{shuffled['events_per_second']:,.0f} ev/s = {backfill['ratio']:.2f} × {compared} "
        f"({backfill['in_order_events_per_second']:,.0f} ev/s)"
    )
    if not right:
        measured += (
            f"; stored {stored['events']:,} events / {stored['dead_letters']:,} dead letters, "
            f"expected {stored['expected_events']:,} / {stored['expected_dead_letters']:,}"
        )
    ok = backfill["ratio"] >= 0.5 and shuffled["completed"] and in_order_ok and right
    return [Verdict(figure, "≥ 0.5 × in-order", measured, _result(ok))]


def _throughput(document: dict[str, Any]) -> list[Verdict]:
    """Requests/s of the history reads, beside /healthz read the same way (the ceiling of
    the load generator and the HTTP stack on this machine)."""
    throughput = document.get("throughput")
    if not throughput:
        return []
    history, floor = throughput["history"], throughput["floor_healthz"]
    clients = throughput["clients"]

    def measured(figure: dict[str, Any]) -> str:
        latency, cpu = figure["latency_ms"], figure["cpu_cores"]
        per_request = figure.get("cpu_ms_per_request", {})
        errors = f", {figure['errors']} errors" if figure["errors"] else ""
        return (
            f"{figure['requests_per_second']:,.0f} req/s, p50 {latency['p50']:.1f} / "
            f"p99 {latency['p99']:.1f} ms (cores: API {cpu.get('api', 0.0):.2f} = "
            f"{per_request.get('api', 0.0):.2f} ms CPU/request, "
            f"clients {cpu.get('client', 0.0):.2f}{errors})"
        )

    return [
        Verdict(
            f"3. Read: history throughput, {clients} clients"
            f" ({throughput.get('api_workers', 1)} API workers)",
            "≥ 2,000 req/s",
            measured(history),
            _result(history["requests_per_second"] >= 2_000 and history["errors"] == 0),
        ),
        Verdict(
            f"3. Read: HTTP floor throughput, GET /healthz, {clients} clients",
            "baseline",
            measured(floor),
            "baseline",
        ),
    ]


def _p99_over_floor(reads: dict[str, Any]) -> list[Verdict]:
    history, floor = reads["history"], reads["floor_healthz"]
    if not floor["p99"]:
        return []
    ratio = history["p99"] / floor["p99"]
    return [
        Verdict(
            "3. History p99 ≤ 3 × /healthz p99 (same run)",
            "≤ 3 × floor",
            f"{ratio:.2f} × (p99 {history['p99']:.1f} / {floor['p99']:.1f} ms, "
            f"{reads['clients']} clients)",
            _result(ratio <= 3),
        )
    ]


def _latencies(p: dict[str, Any]) -> str:
    errors = f", {p['errors']} errors" if p.get("errors") else ""
    return f"p50 {p['p50']:.1f} / p95 {p['p95']:.1f} / p99 {p['p99']:.1f} ms{errors}"


def read_verdicts(document: dict[str, Any], *, small: bool) -> list[Verdict]:
    """The rows of phase 3: latencies at a few clients, then throughput at many."""
    reads = document["reads"]
    history, stances, floor = reads["history"], reads["topic_stances"], reads["floor_healthz"]
    return [
        Verdict(
            f"3. Read: history, {history['points_requested']} points, {reads['clients']} clients"
            f" ({reads.get('api_workers', 1)} API workers)",
            "p99 ≤ 15 ms @1M",
            _latencies(history),
            _result(history["p99"] <= 15 and history["errors"] == 0, scaled=small),
        ),
        Verdict(
            f"3. Read: topic stances, {reads['clients']} clients",
            "(none)",
            _latencies(stances),
            "info",
        ),
        Verdict(
            f"3. Read: HTTP floor, GET /healthz, {reads['clients']} clients",
            "baseline",
            _latencies(floor),
            "baseline",
        ),
        *_p99_over_floor(reads),
        *_throughput(document),
    ]


def verdicts(document: dict[str, Any]) -> list[Verdict]:
    ingest = document["ingest"]
    bare, real = ingest["bare"], ingest["projector"]
    stored = ingest["stored"]["events"]
    small = stored < FULL_SCALE * 0.95
    rebuilt = document["rebuild"]
    rss = document["rss"]
    lag = document["lag"]
    lag_ok = (
        lag["lag_ms"]["p99"] <= 250
        and lag["not_seen"] == 0
        and lag["rate_achieved"] >= 0.95 * lag["rate_target"]
        and lag["measured"] > 0
    )
    return [
        Verdict(
            "1. Ingest: bare pipeline (redis-py + asyncpg COPY)",
            "baseline",
            f"{bare['events_per_second']:,.0f} ev/s ({bare['cpu_cores']:.2f} cores)",
            "baseline",
        ),
        Verdict(
            "1. Ingest: stanceline projector",
            "≥ 0.60 × bare",
            f"{real['events_per_second']:,.0f} ev/s = {ingest['ratio']:.2f} × bare "
            f"({real['cpu_cores']:.2f} cores)",
            _result(ingest["ratio"] >= 0.60 and real["completed"]),
        ),
        *_backfill(document),
        Verdict(
            "2. Rebuild from events",
            "≥ 100,000 ev/s @1M",
            f"{rebuilt['events_per_second']:,.0f} ev/s for {rebuilt['events']:,} events "
            f"= {rebuilt['ratio_to_baseline']:.3f} × SQL copy "
            f"({rebuilt['baseline_copy_events_per_second']:,.0f} ev/s)",
            _result(rebuilt["events_per_second"] >= 100_000, scaled=small),
        ),
        *read_verdicts(document, small=small),
        *_network(document),
        Verdict(
            "4. Projector peak RSS over the ingest",
            "≤ 250 MB @1M",
            f"{rss['peak_mb']:.0f} MB",
            _result(rss["peak_mb"] <= 250, scaled=small),
        ),
        Verdict(
            "4. Projector RSS flat (growth after the first 20%)",
            "≤ +10% @1M",
            f"{rss['growth_after_20pct']:+.1%} ({rss['at_20pct_mb']:.0f} → "
            f"{rss['at_end_mb']:.0f} MB)",
            _result(rss["growth_after_20pct"] <= 0.10, scaled=small),
        ),
        Verdict(
            f"5. Lag XADD → visible over HTTP at {lag['rate_target']:,.0f} ev/s",
            "p99 ≤ 250 ms",
            f"p50 {lag['lag_ms']['p50']:.0f} / p99 {lag['lag_ms']['p99']:.0f} ms "
            f"({lag['rate_achieved']:,.0f} ev/s achieved, {lag['not_seen']} not seen)",
            _result(lag_ok),
        ),
        *_webhooks(document),
    ]


def _webhooks(document: dict[str, Any]) -> list[Verdict]:
    """The dispatcher's figures (``webhooks.py``): no target yet, measured as they are."""
    hooks = document.get("webhooks")
    if hooks is None:
        return []
    return [
        Verdict(
            f"8. Webhook deliveries to a local receiver ({hooks['backlog']:,} queued)",
            "measured",
            f"{hooks['deliveries_per_second']:,.0f} deliveries/s",
            _result(None),
        ),
        Verdict(
            f"8. Alert latency XADD → webhook received at {hooks['rate_target']:,.0f} ev/s, "
            f"{hooks['subscriptions']} subscriptions",
            "measured",
            f"p50 {hooks['latency_ms']['p50']:.0f} / p99 {hooks['latency_ms']['p99']:.0f} ms "
            f"({hooks['rate_achieved']:,.0f} ev/s achieved, {hooks['not_received']} not received)",
            _result(None),
        ),
    ]


def print_report(console: Console, document: dict[str, Any], rows: list[Verdict]) -> None:
    machine = document["machine"]
    corpus = document["corpus"]
    stored = document["ingest"]["stored"]
    title = (
        f"stanceline benchmark: {corpus['lines']:,} entries "
        f"({corpus['actors']} actors, {corpus['topics']} topics, seed {corpus['seed']}), "
        f"{stored['events']:,} events stored"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    table.add_column("target")
    table.add_column("measured")
    table.add_column("result")
    styles = {"pass": "green", "MISS": "bold red", "baseline": "dim", "info": "dim"}
    for row in rows:
        style = styles.get(row.result.rstrip("*"), "")
        table.add_row(row.figure, row.target, row.measured, f"[{style}]{row.result}[/]")
    console.print(table)
    console.print(
        f"machine: {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['ram_gb']:.0f} GB "
        f"RAM, load {machine['load_average'][0]:.2f} at start, Python {machine['python']}",
        highlight=False,
    )
    console.print(
        f"servers: Postgres {machine['postgres']} ({machine['postgres_server']}, "
        f"shared_buffers {machine['postgres_settings'].get('shared_buffers')}), "
        f"Redis {machine['redis']} ({machine['redis_server']})",
        highlight=False,
    )
    code = document.get("code") or {}
    if code:
        changed = ", ".join(code.get("changed", [])) or "none"
        console.print(
            f"code: {code.get('commit')} (changed in the work tree: {changed})", highlight=False
        )
    generator = document.get("load_generator")
    if generator:
        console.print(
            f"reads' load generator: {generator}"
            + ("" if generator.startswith("wrk") else " (wrk not installed: see stderr)"),
            highlight=False,
        )
    throughput = document.get("throughput")
    if throughput and throughput["floor_healthz"]["requests_per_second"] < 2_000:
        console.print(
            f"the {throughput['clients']} clients reach only "
            f"{throughput['floor_healthz']['requests_per_second']:,.0f} req/s on GET /healthz "
            "here: a history throughput near that is the load generator's limit, not the API's",
            highlight=False,
        )
    if any(r.result.endswith("*") for r in rows):
        console.print(
            f"* measured with {stored['events']:,} events stored; the target is stated for "
            "1M (run with --full): an indication, not a verdict",
            highlight=False,
        )
    for phase, profile in (document.get("profile") or {}).items():
        print_profile(console, phase, profile)
    console.print(f"elapsed {document['elapsed_s']:.0f} s; JSON: {document['json_path']}")


WHO = {"ingest": "the projector", "rebuild": "rebuild()", "reads": "the API"}


def print_profile(console: Console, phase: str, profile: dict[str, Any]) -> None:
    """The top of a phase's profile (--profile)."""
    who = WHO.get(phase, phase)
    activity = profile.get("postgres_activity") or {}
    table = Table(
        title=f"{phase}: {who}'s Postgres connections, sampled "
        "(% of samples, summed over connections)"
    )
    table.add_column("state / statement")
    table.add_column("%", justify="right")
    for name, share in activity.get("shares", [])[:12]:
        table.add_row(name, f"{share:.1f}")
    console.print(table)
    python = profile.get("python") or {}
    kinds = (
        ("self", "function on top of the stack"),
        ("self_by_package", "package on top of the stack"),
        ("stanceline_inclusive", "stanceline functions with their callees"),
    )
    for kind, title in kinds:
        rows = python.get(kind, [])[:15]
        if not rows:
            continue
        table = Table(title=f"{phase}: {who}'s Python on CPU (py-spy), {title} (% of samples)")
        table.add_column("function")
        table.add_column("%", justify="right")
        for name, share in rows:
            table.add_row(name, f"{share:.1f}")
        console.print(table)
    if profile.get("python_file"):
        console.print(f"collapsed stacks: {profile['python_file']}", highlight=False)


def _network(document: dict[str, Any]) -> list[Verdict]:
    """The agreement network's answer time (``networks.py``); scaled below 100k statements."""
    network = document.get("network")
    if network is None:
        return []
    size = network["size"]
    return [
        Verdict(
            f"3. Agreement network, {size['actors']} actors × {size['topics']} topics × "
            f"{size['statements']:,} statements, {network['windows']} weekly windows, "
            "triangular: JSON answer",
            f"≤ {network['target_seconds']:g} s",
            f"{network['seconds_median']:.2f} s median ({network['edges']:,} edges, "
            f"{network['bytes'] / 1e6:.0f} MB)",
            _result(
                network["seconds_median"] <= network["target_seconds"],
                scaled=size["statements"] < 100_000,
            ),
        )
    ]


def verdict_rows(rows: list[Verdict]) -> list[dict[str, str]]:
    return [asdict(r) for r in rows]
