"""Prometheus metrics of the dispatcher, in the process's default registry (served on
the API's ``/metrics`` under ``stanceline up``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "stanceline_webhook_deliveries_total",
    "Webhook attempts by outcome: delivered (2xx), retrying (a failure with attempts left),"
    " failed (the schedule is spent), gone (410: the subscription is disabled).",
    ["outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "stanceline_webhook_attempt_seconds",
    "From sending a webhook request to its answer (or to giving up on one).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OUTBOX_DEPTH = Gauge(
    "stanceline_webhook_outbox_depth", "Messages waiting in the outbox (active subscriptions)."
)
OUTBOX_OLDEST = Gauge(
    "stanceline_webhook_outbox_oldest_seconds",
    "Age of the oldest message waiting in the outbox (0: none).",
)
