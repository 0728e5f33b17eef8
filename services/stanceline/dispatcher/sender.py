"""One webhook request: signed as Standard Webhooks says, checked against the SSRF rule
first (what a name resolves to can change after subscribing), timed, never raising."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from stanceline.cursors import encode_cursor
from stanceline.dispatcher.origins import Origins
from stanceline.domain.webhooks import FeedEntry, body, message_id
from stanceline.egress import UrlRefused, check_url
from stanceline.store.outbox import Claimed


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt came to: the status (none: no answer), and why not in words."""

    attempted_at: datetime
    status_code: int | None
    latency_s: float
    error: str | None
    retry_after: str | None


def entry_of(claimed: Claimed) -> FeedEntry:
    e = claimed.entry
    return FeedEntry(
        change_id=e["change_id"],
        # The changes feed's own cursor (/v1/changes?cursor=...): resume the feed here.
        cursor=encode_cursor(e["xact_id"], e["change_id"]),
        status=e["status"],
        actor_id=e["actor_id"],
        topic_id=e["topic_id"],
        rollup=e["rollup"],
        statement_id=e["statement_id"],
        said_at=e["said_at"],
        stance=e["stance"],
        previous_stance=e["previous_stance"],
        previous_statement_id=e["previous_statement_id"],
        change=e["change"],
        recorded_at=e["recorded_at"],
    )


async def send(http: Origins, claimed: Claimed, *, allow_private: bool) -> Answer:
    msg_id = message_id(claimed.subscription_id, claimed.entry["change_id"])
    payload = body(claimed.subscription_id, claimed.sequence, entry_of(claimed))
    now = datetime.now(UTC)
    started = time.perf_counter()
    try:
        await check_url(claimed.url, allow_private=allow_private)
        async with http.client(claimed.url) as client:
            # Signed and timed once a connection to the receiver is ours, not while
            # waiting for one: the timestamp is when it was sent.
            now = datetime.now(UTC)
            started = time.perf_counter()
            headers = {
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": Webhook(claimed.secret).sign(msg_id, now, payload),
            }
            response = await client.post(claimed.url, content=payload, headers=headers)
    except UrlRefused as exc:
        return Answer(now, None, time.perf_counter() - started, f"refused: {exc}", None)
    except httpx.HTTPError as exc:
        reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
        return Answer(now, None, time.perf_counter() - started, reason[:500], None)
    return Answer(
        now,
        response.status_code,
        time.perf_counter() - started,
        None,
        response.headers.get("retry-after"),
    )
