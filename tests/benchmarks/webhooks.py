"""Flip alerts under load: the dispatcher's deliveries/s to a local receiver, and the alert
latency from XADD to the webhook's arrival.

Ten subscriptions split the lag probe's actors between them (``workload.lag_event``:
every statement after an actor's first is a flip on its own series), so each statement
is one message. First a backlog: statements published while no dispatcher runs, drained
by the projector into the outbox, then one ``stanceline dispatcher`` started and timed
from the first arrival to the last (deliveries/s). Then the latency: statements XADDed at
a steady rate while the dispatcher runs; each one's latency is from just before its
XADD to its arrival at the receiver (a real HTTP server in this process, answering 204).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks import processes
from benchmarks.measure import Stream, _drained
from benchmarks.workload import lag_event, lag_statement_id
from stanceline.ops.subscriptions import subscribe
from support.receiver import serving

FIRST = 40_000_000
"""Probe numbers far beyond the lag phase's (``said_at`` grows with the number)."""


class _Arrivals:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.arrived = asyncio.Event()

    async def hook(self, request: Request) -> Response:
        data = json.loads(await request.body())["data"]
        self.at.setdefault(data["statement_id"], time.perf_counter())
        self.arrived.set()
        return Response(status_code=204)

    async def until(self, wanted: set[str], within: float) -> None:
        """Until every one of ``wanted`` has arrived, or ``within`` seconds passed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while not wanted <= self.at.keys():
                    self.arrived.clear()
                    await self.arrived.wait()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _publish(stream: Stream, numbers: range, actors: int) -> dict[int, float]:
    pipe = stream.client.pipeline(transaction=False)
    for n in numbers:
        pipe.xadd(stream.name, {"event": lag_event(n, actors)})
    moment = time.perf_counter()
    await pipe.execute()
    return dict.fromkeys(numbers, moment)


async def webhook_figures(
    stream: Stream,
    group: str,
    engine: AsyncEngine,
    start: Callable[[str, list[str], dict[str, str]], processes.Child],
    env: dict[str, str],
    *,
    rate: float,
    seconds: float,
    actors: int,
    backlog: int,
    subscriptions: int = 10,
    settle: float = 60.0,
) -> dict[str, Any]:
    first = FIRST - FIRST % actors
    # Each actor's first probe statement here may or may not flip: none is measured.
    await _publish(stream, range(first, first + actors), actors)
    await _drained(stream, group, within=120)
    arrivals = _Arrivals()
    app = Starlette(routes=[Route("/hook", arrivals.hook, methods=["POST"])])
    async with serving(app) as port:
        for i in range(subscriptions):
            watched = [f"bench-lag-actor-{k:04d}" for k in range(actors) if k % subscriptions == i]
            await subscribe(
                engine, f"http://127.0.0.1:{port}/hook", actors=watched, allow_private=True
            )
        # The backlog, in the outbox before any dispatcher runs.
        start_n = first + actors
        await _publish(stream, range(start_n, start_n + backlog), actors)
        await _drained(stream, group, within=300)
        dispatcher = start("dispatcher", ["dispatcher"], env)
        backlog_ids = {lag_statement_id(n) for n in range(start_n, start_n + backlog)}
        await arrivals.until(backlog_ids, settle + backlog / 100)
        times = sorted(arrivals.at[s] for s in backlog_ids if s in arrivals.at)
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        delivered = len(times)

        # The latency, at a steady rate.
        start_n += backlog
        sent_at: dict[int, float] = {}
        began = time.perf_counter()
        sent = 0
        while (elapsed := time.perf_counter() - began) < seconds:
            due = int(elapsed * rate) - sent
            if due > 0:
                numbers = range(start_n + sent, start_n + sent + due)
                sent_at |= await _publish(stream, numbers, actors)
                sent += due
            await asyncio.sleep(0.004)
        achieved = sent / (time.perf_counter() - began)
        wanted = {lag_statement_id(n): n for n in sent_at}
        await arrivals.until(set(wanted), settle)
        await asyncio.to_thread(dispatcher.stop)
        latencies = [
            (arrivals.at[s] - sent_at[n]) * 1000 for s, n in wanted.items() if s in arrivals.at
        ]
    return {
        "subscriptions": subscriptions,
        "probe_numbers": [first, start_n + sent],
        "backlog": backlog,
        "backlog_delivered": delivered,
        "deliveries_per_second": round((delivered - 1) / span, 1) if span else 0.0,
        "rate_target": rate,
        "rate_achieved": round(achieved, 1),
        "measured": len(latencies),
        "not_received": len(wanted) - len(latencies),
        "latency_ms": {
            "p50": round(_percentile(latencies, 0.5), 1),
            "p99": round(_percentile(latencies, 0.99), 1),
        },
    }
