"""Fault-injection trial: "nothing is lost" checked against real processes and real crashes.

It publishes a seeded corpus (``faults/corpus.py``) on a fresh stream while real
``stanceline projector`` processes consume it; at seeded moments it SIGKILLs one of them
and starts a replacement under a new consumer name, so the dead one's pending entries can
only come back through the reclaimer. It can also stop and start Postgres and Redis
mid-run. When the group is drained it compares Postgres with the pure fold over the
published events (``support.dump.predicted_series_rows``) and prints what was lost,
duplicated and dead-lettered. From the repository root:

    .venv/bin/python tests/faults/harness.py --events 100000 --kills 20
    .venv/bin/python tests/faults/harness.py --events 20000 --kills 10 \\
        --restart-postgres 2 --restart-redis 1 --seed 7 --json figures.json

Servers: embedded Postgres and Redis in a fresh temp dir, or a fresh database on
``STANCELINE_TEST_DATABASE_URL`` and a fresh stream on ``STANCELINE_TEST_REDIS_URL`` when
set (servers we do not own are never restarted).

Redis restarts are clean (``SHUTDOWN``, which flushes and fsyncs the AOF) and happen
between publishing chunks, never during one: every XADD the server acknowledged is on disk
when it stops, so a restart cannot lose published entries and any loss the trial finds is
the projector's. (A crash of Redis itself could lose up to a second of writes under
``appendfsync everysec``; that is Redis's durability, not what is under test here.)
"""

from __future__ import annotations

import sys
from pathlib import Path

# Runnable as a script from the repository root: the test helpers live under tests/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from asyncio.subprocess import PIPE, STDOUT
from bisect import bisect_right
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import redis.asyncio as aioredis
import sqlalchemy as sa
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from faults.corpus import Corpus, generate
from stanceline.store.db import create_engine
from support.dump import predicted_series_rows, series_rows
from support.scratch import scratch_servers
from support.service import STANCELINE

CHUNK = 500
"""Entries per pipelined XADD round trip, as ``stanceline publish`` sends them."""
BOOT_SECONDS = 2.0
"""Roughly how long ``stanceline projector`` takes to import and join the group."""


@dataclass
class TrialOptions:
    events: int = 2_000
    kills: int = 3
    projectors: int = 2
    restart_postgres: int = 0
    restart_redis: int = 0
    seed: int = 1
    batch_size: int | None = None
    """None: 1/40 of the events, between 50 and 500, so a small trial spans several batches."""
    reclaim_idle_ms: int = 1_000
    backlog: int = 10_000
    """Publish at most this far ahead of the group (0: no limit), so kills land mid-stream."""
    stall_timeout: float = 120.0
    """Give up when nothing has moved for this long: the group is stuck."""

    @property
    def batch(self) -> int:
        return self.batch_size or min(max(self.events // 40, 50), 500)


@dataclass(frozen=True)
class Control:
    """Stop and start a server we own, keeping its URL."""

    stop: Callable[[], object]
    start: Callable[[], object]


@dataclass(frozen=True)
class Servers:
    database_url: str
    redis_url: str
    postgres: Control | None = None
    redis: Control | None = None


@dataclass
class Figures:
    published: int
    valid: int
    duplicate_lines: int
    invalid: int
    projectors: int
    kills: int
    postgres_restarts: int
    redis_restarts: int
    unexpected_exits: int
    lost: int
    duplicated: int
    dead_lettered: int
    dead_letters_expected: int
    unexpected_dead_letters: int
    predicted_rows: int
    mismatched_rows: int
    converged: bool
    elapsed_s: float
    events_per_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.converged
            and self.lost == 0
            and self.duplicated == 0
            and self.mismatched_rows == 0
            and self.dead_lettered == self.dead_letters_expected
            and self.unexpected_dead_letters == 0
        )

    def table(self) -> str:
        rows = [
            ("events published", f"{self.published}"),
            ("valid (distinct)", f"{self.valid}"),
            ("duplicate lines", f"{self.duplicate_lines}"),
            ("invalid lines", f"{self.invalid}"),
            ("projectors", f"{self.projectors}"),
            ("kills done", f"{self.kills}"),
            ("postgres restarts", f"{self.postgres_restarts}"),
            ("redis restarts", f"{self.redis_restarts}"),
            ("projector exits not ours", f"{self.unexpected_exits}"),
            ("lost", f"{self.lost}"),
            ("duplicated", f"{self.duplicated}"),
            ("dead-lettered", f"{self.dead_lettered} (expected {self.dead_letters_expected})"),
            ("valid entries dead-lettered", f"{self.unexpected_dead_letters}"),
            ("projection rows mismatched", f"{self.mismatched_rows} (of {self.predicted_rows})"),
            ("converged", "yes" if self.converged else "NO"),
            ("elapsed s", f"{self.elapsed_s:.1f}"),
            ("events/s", f"{self.events_per_s:.0f}"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"  {name:<{width}}  {value}" for name, value in rows]
        lines += [f"  note: {note}" for note in self.notes]
        lines.append(f"RESULT: {'PASS' if self.ok else 'FAIL'}")
        return "\n".join(lines)


def _say(message: str) -> None:
    print(f"[faults] {message}", file=sys.stderr, flush=True)


def _die_with_us() -> Callable[[], None] | None:
    """Children get SIGKILL if the harness dies, so no projector outlives a trial."""
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return preexec


@dataclass
class _Member:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    launched_at: float = field(default_factory=time.monotonic)


class Fleet:
    """The projector processes, each a real ``stanceline projector`` in its own session."""

    def __init__(self, env: dict[str, str], logs: Path, tag: str) -> None:
        self.env = env
        self.logs = logs
        self.tag = tag
        self.members: list[_Member] = []
        self.launched = 0
        self.kills = 0
        self.unexpected: list[str] = []

    def launch(self) -> None:
        self.launched += 1
        name = f"{self.tag}-p{self.launched:02d}"
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(STANCELINE), "projector"],
                env={**self.env, "STANCELINE_CONSUMER": name},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_us(),
            )
        self.members.append(_Member(name, process, log))

    def kill(self, rng: random.Random) -> str:
        """SIGKILL one and start a replacement under a new name: only a reclaimer can
        bring back what the dead one had read but not acknowledged.

        Preferably one that has had time to start consuming: killing a process still
        importing its modules tests nothing the others do not.
        """
        settled = [m for m in self.members if time.monotonic() - m.launched_at > BOOT_SECONDS]
        victim = rng.choice(settled or self.members)
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait()
        self.members.remove(victim)
        self.kills += 1
        self.launch()
        return victim.name

    def replace_the_dead(self) -> None:
        for member in list(self.members):
            code = member.process.poll()
            if code is not None:
                tail = member.log.read_text(errors="replace").strip().splitlines()[-3:]
                self.unexpected.append(f"{member.name} exited with {code}: {' | '.join(tail)}")
                _say(f"projector {member.name} exited on its own ({code}); starting another")
                self.members.remove(member)
                self.launch()

    def stop(self, timeout: float = 45.0) -> list[str]:
        """SIGINT, the graceful stop; whatever does not exit in time is a finding."""
        problems = []
        for member in self.members:
            member.process.send_signal(signal.SIGINT)
        for member in self.members:
            try:
                code = member.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                member.process.kill()
                member.process.wait()
                problems.append(f"{member.name} did not stop within {timeout:.0f}s of SIGINT")
                continue
            if code != 0:
                problems.append(f"{member.name} exited with {code} on SIGINT")
        self.members.clear()
        return problems


def _entry_id(raw: bytes | str) -> tuple[int, int]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, seq = text.split("-")
    return int(ms), int(seq)


@dataclass
class _Progress:
    ids: list[tuple[int, int]] = field(default_factory=list)
    delivered: int = 0
    advanced: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at each look at the group, so the publisher can wait for room in the backlog."""


class Trial:
    def __init__(self, options: TrialOptions, servers: Servers, corpus: Corpus, logs: Path):
        self.options = options
        self.servers = servers
        self.corpus = corpus
        self.rng = random.Random(options.seed * 7919 + 1)
        tag = f"faults-{options.seed}-{uuid.uuid4().hex[:6]}"
        self.stream = f"{tag}:statements"
        self.group = f"{tag}-projector"
        env = {k: v for k, v in os.environ.items() if not k.startswith("STANCELINE_")}
        env |= {
            "STANCELINE_DATABASE_URL": servers.database_url,
            "STANCELINE_REDIS_URL": servers.redis_url,
            "STANCELINE_STREAM": self.stream,
            "STANCELINE_GROUP": self.group,
            "STANCELINE_RECLAIM_IDLE_MS": str(options.reclaim_idle_ms),
            "STANCELINE_BATCH_SIZE": str(options.batch),
            "COLUMNS": "200",
        }
        self.env = env
        self.fleet = Fleet(env, logs, tag)
        self.client = aioredis.Redis.from_url(servers.redis_url)
        self.gate = asyncio.Lock()
        """Held around each XADD pipeline and each Redis restart: never both at once."""
        self.progress = _Progress()
        self.restarts = Counter[str]()
        total = len(corpus.lines)
        actions = [("kill", options.kills), ("postgres", options.restart_postgres)]
        actions.append(("redis", options.restart_redis))
        self.actions = sorted(
            (self.rng.uniform(0.03, 0.97) * total, kind)
            for kind, count in actions
            for _ in range(count)
        )

    async def run(self, engine: AsyncEngine) -> tuple[bool, float]:
        """Publish under faults, then wait for the group to drain; (converged, elapsed)."""
        migrate = await asyncio.create_subprocess_exec(
            str(STANCELINE), "migrate", env=self.env, stdout=PIPE, stderr=STDOUT
        )
        output, _ = await migrate.communicate()
        if migrate.returncode != 0:
            raise RuntimeError(f"stanceline migrate failed:\n{output.decode(errors='replace')}")
        for _ in range(self.options.projectors):
            self.fleet.launch()
        started = time.perf_counter()
        publisher = asyncio.create_task(self._publish())
        try:
            await self._inject(publisher)
            if not publisher.done():
                publisher.cancel()  # stalled: the group will never make room in the backlog
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
            converged = await self._settle(engine)
        finally:
            publisher.cancel()
        return converged, time.perf_counter() - started

    async def _publish(self) -> None:
        lines = self.corpus.lines
        for start in range(0, len(lines), CHUNK):
            while self.options.backlog and (
                len(self.progress.ids) - self.progress.delivered > self.options.backlog
            ):
                self.progress.advanced.clear()
                await self.progress.advanced.wait()
            async with self.gate:
                pipe = self.client.pipeline(transaction=False)
                for line in lines[start : start + CHUNK]:
                    pipe.xadd(self.stream, {"event": line})
                ids = await pipe.execute()
            self.progress.ids.extend(_entry_id(i) for i in ids)

    async def _delivered(self) -> int:
        """How many published entries the group has handed out (its last-delivered id)."""
        try:
            groups = await self.client.xinfo_groups(self.stream)
        except RedisError:
            return self.progress.delivered
        for group in groups:
            name = group["name"]
            if (name.decode() if isinstance(name, bytes) else name) == self.group:
                return bisect_right(self.progress.ids, _entry_id(group["last-delivered-id"]))
        return 0

    async def _inject(self, publisher: asyncio.Task[None]) -> None:
        """Fire each fault when the group has delivered its share of the stream."""
        moved, last, reported = time.monotonic(), -1, 0.0
        while self.actions or not publisher.done():
            if publisher.done() and publisher.exception():
                return
            await asyncio.sleep(0.05)
            self.fleet.replace_the_dead()
            delivered = self.progress.delivered = await self._delivered()
            self.progress.advanced.set()
            now = time.monotonic()
            if delivered != last:
                moved, last = now, delivered
            elif now - moved > self.options.stall_timeout:
                _say(f"no delivery for {self.options.stall_timeout:.0f}s; faults left unfired")
                self.actions.clear()
                return
            if now - reported > 5:
                reported = now
                _say(
                    f"published {len(self.progress.ids)}/{len(self.corpus.lines)}, "
                    f"delivered {delivered}, kills {self.fleet.kills}/{self.options.kills}"
                )
            while self.actions and self.actions[0][0] <= delivered:
                await self._fire(self.actions.pop(0)[1])

    async def _fire(self, kind: str) -> None:
        if kind == "kill":
            # A random moment inside whatever batch is in flight.
            await asyncio.sleep(self.rng.uniform(0, 0.3))
            _say(f"SIGKILL {self.fleet.kill(self.rng)}")
        elif kind == "postgres" and self.servers.postgres:
            _say("stopping Postgres")
            self.servers.postgres.stop()
            await asyncio.sleep(self.rng.uniform(1.0, 3.0))
            self.servers.postgres.start()
            self.restarts["postgres"] += 1
            _say("Postgres is back")
        elif kind == "redis" and self.servers.redis:
            async with self.gate:
                _say("stopping Redis (SHUTDOWN: the AOF is flushed first)")
                self.servers.redis.stop()
                await asyncio.sleep(self.rng.uniform(0.5, 2.0))
                self.servers.redis.start()
                # Our pooled connections went to the old process: publish on new ones.
                await self.client.connection_pool.disconnect()
            self.restarts["redis"] += 1
            _say("Redis is back")

    async def _state(self, engine: AsyncEngine) -> tuple[Any, ...] | None:
        try:
            summary = await self.client.xpending(self.stream, self.group)
            stream = await self.client.xinfo_stream(self.stream)
            async with engine.connect() as conn:
                events = await conn.scalar(sa.text("SELECT count(*) FROM events"))
                letters = await conn.scalar(sa.text("SELECT count(*) FROM dead_letters"))
        except (RedisError, SQLAlchemyError, OSError):
            return None
        last = bisect_right(self.progress.ids, _entry_id(stream["last-generated-id"]))
        self.progress.delivered = await self._delivered()
        return (int(summary["pending"]), self.progress.delivered, last, events, letters)

    async def _settle(self, engine: AsyncEngine) -> bool:
        """Drained: nothing pending, everything delivered, counts unchanged for two looks."""
        previous: tuple[Any, ...] | None = None
        steady, moved = 0, time.monotonic()
        while True:
            self.fleet.replace_the_dead()
            state = await self._state(engine)
            if state is not None and state != previous:
                moved, steady = time.monotonic(), 0
            elif state is not None:
                pending, delivered, last, *_ = state
                if pending == 0 and delivered == last == len(self.corpus.lines):
                    steady += 1
                    if steady >= 2:
                        return True
            if time.monotonic() - moved > self.options.stall_timeout:
                await self._describe_stuck()
                return False
            previous = state
            await asyncio.sleep(0.5)

    async def _describe_stuck(self) -> None:
        with contextlib.suppress(RedisError):
            summary = await self.client.xpending(self.stream, self.group)
            _say(f"stuck: XPENDING {summary}")
            for entry in await self.client.xpending_range(
                self.stream, self.group, min="-", max="+", count=5
            ):
                _say(f"  pending {entry}")

    async def compare(self, engine: AsyncEngine, elapsed: float, converged: bool) -> Figures:
        corpus = self.corpus
        valid_ids = {e.id for e in corpus.events}
        async with engine.connect() as conn:
            stored = list((await conn.execute(sa.text("SELECT event_id FROM events"))).scalars())
            letters = (
                await conn.execute(sa.text("SELECT stream_entry_id, reason FROM dead_letters"))
            ).all()
        actual = Counter(await series_rows(engine))
        predicted = Counter(predicted_series_rows(corpus.events))
        invalid_entries = {
            "{}-{}".format(*self.progress.ids[i])
            for i in corpus.invalid_at
            if i < len(self.progress.ids)
        }
        unexpected = [(entry, reason) for entry, reason in letters if entry not in invalid_entries]
        notes = [f"projector exit not caused by the harness: {u}" for u in self.fleet.unexpected]
        for reason, count in Counter(r for _, r in unexpected).most_common(3):
            notes.append(f"{count} valid entries dead-lettered: {reason[:160]}")
        if strangers := set(stored) - valid_ids:
            notes.append(f"{len(strangers)} stored events were never published as valid")
        if len(self.progress.ids) < len(corpus.lines):
            notes.append(f"only {len(self.progress.ids)} of {len(corpus.lines)} published")
        return Figures(
            published=len(self.progress.ids),
            valid=len(corpus.events),
            duplicate_lines=corpus.duplicates,
            invalid=corpus.invalid,
            projectors=self.options.projectors,
            kills=self.fleet.kills,
            postgres_restarts=self.restarts["postgres"],
            redis_restarts=self.restarts["redis"],
            unexpected_exits=len(self.fleet.unexpected),
            lost=len(valid_ids - set(stored)),
            duplicated=(len(stored) - len(set(stored)))
            + sum(n - 1 for n in actual.values() if n > 1),
            dead_lettered=len(letters),
            dead_letters_expected=corpus.invalid,
            unexpected_dead_letters=len(unexpected),
            predicted_rows=predicted.total(),
            mismatched_rows=(actual - predicted).total() + (predicted - actual).total(),
            converged=converged,
            elapsed_s=round(elapsed, 2),
            events_per_s=round(len(self.progress.ids) / elapsed, 1) if elapsed else 0.0,
            notes=notes,
        )


async def run_trial(options: TrialOptions, servers: Servers, *, keep_logs: bool = False) -> Figures:
    """One trial on the given servers (a fresh, empty database; any Redis)."""
    if options.restart_postgres and servers.postgres is None:
        raise ValueError("cannot restart Postgres: it is not ours (given by URL)")
    if options.restart_redis and servers.redis is None:
        raise ValueError("cannot restart Redis: it is not ours (given by URL)")
    began = time.perf_counter()
    corpus = generate(options.events, options.seed)
    _say(
        f"corpus: {len(corpus.lines)} lines, {len(corpus.events)} valid, {corpus.duplicates} "
        f"duplicates, {corpus.invalid} invalid ({time.perf_counter() - began:.1f}s)"
    )
    logs = Path(tempfile.mkdtemp(prefix="stanceline-faults-logs-"))
    trial = Trial(options, servers, corpus, logs)
    engine = create_engine(servers.database_url)
    figures: Figures | None = None
    try:
        try:
            converged, elapsed = await trial.run(engine)
        finally:
            stop_problems = trial.fleet.stop()
        figures = await trial.compare(engine, elapsed, converged)
        figures.notes.extend(stop_problems)
        return figures
    finally:
        await engine.dispose()
        if keep_logs or figures is None or not figures.ok:
            _say(f"projector logs kept in {logs}; stream {trial.stream} left in Redis")
        else:
            shutil.rmtree(logs, ignore_errors=True)
            with contextlib.suppress(RedisError):
                await trial.client.delete(trial.stream)
        await trial.client.aclose()


@contextlib.asynccontextmanager
async def own_servers() -> AsyncIterator[Servers]:
    """Fresh servers for one trial: embedded ones, or a fresh database on the test server."""
    async with scratch_servers(
        "faults",
        os.environ.get("STANCELINE_TEST_DATABASE_URL"),
        os.environ.get("STANCELINE_TEST_REDIS_URL"),
    ) as scratch:
        postgres, redis_server = scratch.postgres, scratch.redis
        yield Servers(
            scratch.database_url,
            scratch.redis_url,
            postgres=Control(postgres.stop, postgres.start) if postgres else None,
            redis=Control(redis_server.stop, redis_server.start) if redis_server else None,
        )


HELP = {
    "events": "lines to publish, duplicates and invalid lines included",
    "kills": "projector SIGKILLs, each followed by a replacement under a new name",
    "projectors": "projector processes running at a time",
    "restart_postgres": "stop and start the embedded Postgres this many times",
    "restart_redis": "stop and start the embedded Redis this many times",
    "batch_size": "STANCELINE_BATCH_SIZE (default: events/40, between 50 and 500)",
    "backlog": "publish at most this far ahead of the group (0: no limit)",
    "stall_timeout": "seconds without progress before the group counts as stuck",
}


def _arguments(argv: list[str] | None) -> tuple[TrialOptions, argparse.Namespace]:
    """Every ``TrialOptions`` field is a flag of the same name, with the same default."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    defaults = asdict(TrialOptions())
    for option in fields(TrialOptions):
        kind = float if option.name == "stall_timeout" else int
        parser.add_argument(
            "--" + option.name.replace("_", "-"),
            type=kind,
            default=defaults[option.name],
            help=HELP.get(option.name),
        )
    parser.add_argument("--keep-logs", action="store_true", help="keep the projectors' logs")
    parser.add_argument(
        "--json", nargs="?", const="-", metavar="FILE", help="also write the figures as JSON"
    )
    args = parser.parse_args(argv)
    options = TrialOptions(
        **{option.name: getattr(args, option.name) for option in fields(TrialOptions)}
    )
    return options, args


def main(argv: list[str] | None = None) -> int:
    options, args = _arguments(argv)

    async def trial() -> Figures:
        async with own_servers() as servers:
            return await run_trial(options, servers, keep_logs=args.keep_logs)

    try:
        figures = asyncio.run(trial())
    except ValueError as exc:  # options the servers cannot honour, a corpus too small
        print(f"harness: {exc}", file=sys.stderr)
        return 2
    print(
        f"fault trial: seed {options.seed}, {options.projectors} projectors, "
        f"batch {options.batch}, reclaim idle {options.reclaim_idle_ms} ms"
    )
    print(figures.table())
    if args.json:
        document = json.dumps({**asdict(figures), "ok": figures.ok}, indent=2)
        if args.json == "-":
            print(document)
        else:
            Path(args.json).write_text(document + "\n")
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
