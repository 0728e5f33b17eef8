"""The dispatcher's loop: claim due messages, send them, record each outcome, commit.

Each of ``webhook_workers`` loops claims a batch in its own transaction and keeps the
rows locked while it sends them concurrently, so other dispatchers (other loops, other
processes) skip them; the outcome is committed with the attempt log. Killed mid-send,
the transaction rolls back and the messages are sent again under the same ids: at
least once, never under two ids. When every attempt is spent the message is marked
failed; a 410 disables its subscription; a subscription whose attempts have all failed
for ``webhook_disable_after`` is disabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from stanceline.dispatcher import metrics
from stanceline.dispatcher.origins import Origins
from stanceline.dispatcher.sender import Answer, send
from stanceline.domain.webhooks import next_delay, parse_schedule, retry_after, should_retry
from stanceline.retry import Stopped, with_backoff
from stanceline.settings import Settings
from stanceline.store import outbox, subscriptions
from stanceline.store.db import writing
from stanceline.store.errors import is_transient

log = logging.getLogger(__name__)
GAUGE_SECONDS = 5.0


class Dispatcher:
    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.schedule = parse_schedule(settings.webhook_retry_schedule)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; the batches in flight finish first."""
        http = Origins(
            per_origin=self.settings.webhook_connections_per_origin,
            timeout_s=self.settings.webhook_timeout_s,
        )
        try:
            loops = [self._loop(http, stop) for _ in range(self.settings.webhook_workers)]
            await asyncio.gather(*loops, self._gauges(stop))
        finally:
            await http.aclose()

    async def _loop(self, http: Origins, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                sent = await with_backoff(
                    lambda: self.once(http),
                    on=Exception,
                    transient=is_transient,
                    what="Postgres unavailable",
                    log=log,
                    stop=stop,
                )
            except Stopped:
                return
            if sent < self.settings.webhook_batch:
                # Idle: look again soon, or stop at once when asked.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.webhook_poll_s)

    async def once(self, http: Origins) -> int:
        """Claim, send and settle one batch; how many messages it held."""
        async with writing(self.engine) as conn:
            claimed = await outbox.claim(conn, self.settings.webhook_batch)
            if not claimed:
                return 0
            allow = self.settings.webhook_allow_private
            answers = await asyncio.gather(*(send(http, c, allow_private=allow) for c in claimed))
            outcomes = [
                await self._settle(conn, message, answer)
                for message, answer in zip(claimed, answers, strict=True)
            ]
            await outbox.record(conn, outcomes)
            await subscriptions.succeeded(
                conn,
                {
                    m.subscription_id
                    for m, o in zip(claimed, outcomes, strict=True)
                    if o.state == "delivered"
                },
            )
        return len(claimed)

    async def _settle(
        self, conn: AsyncConnection, message: outbox.Claimed, answer: Answer
    ) -> outbox.Outcome:
        """Where this answer moves its message; a 410, or failing for too long, disables
        the subscription here (rare: one statement each)."""
        metrics.ATTEMPT_SECONDS.observe(answer.latency_s)
        attempt = outbox.Attempt(
            message.outbox_id,
            answer.attempted_at,
            answer.status_code,
            answer.latency_s * 1000,
            answer.error,
        )
        status = answer.status_code
        if status is not None and 200 <= status < 300:
            metrics.DELIVERIES.labels("delivered").inc()
            return outbox.Outcome(attempt, "delivered")
        if not should_retry(status):  # 410 Gone: the receiver asks to be forgotten
            await subscriptions.disable(
                conn, message.subscription_id, "the receiver answered 410 Gone"
            )
            metrics.DELIVERIES.labels("gone").inc()
            return outbox.Outcome(attempt, "failed")
        now = datetime.now(UTC)
        floor = retry_after(answer.retry_after, now) if status in (429, 503) else None
        delay = next_delay(self.schedule, message.attempts + 1, floor, random.random())
        since = await subscriptions.failed(conn, message.subscription_id)
        if now - since >= self.settings.webhook_disable_after:
            await subscriptions.disable(
                conn,
                message.subscription_id,
                f"every delivery has failed since {since.isoformat()}",
            )
        if delay is None:
            metrics.DELIVERIES.labels("failed").inc()
            return outbox.Outcome(attempt, "failed")
        metrics.DELIVERIES.labels("retrying").inc()
        return outbox.Outcome(attempt, "pending", delay)

    async def _gauges(self, stop: asyncio.Event) -> None:
        """Outbox depth and oldest age, read every few seconds."""
        while not stop.is_set():
            try:
                async with writing(self.engine) as conn:
                    count, oldest = await outbox.depth(conn)
                metrics.OUTBOX_DEPTH.set(count)
                age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
                metrics.OUTBOX_OLDEST.set(max(age, 0.0))
            except Exception as exc:
                if not is_transient(exc):
                    raise
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), GAUGE_SECONDS)
