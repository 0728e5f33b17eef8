"""Prometheus metrics of the projector (served on the API's ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ENTRIES = Counter(
    "stanceline_projector_entries_total",
    "Stream entries handled, by outcome.",
    ["outcome"],
)
BATCH_SECONDS = Histogram(
    "stanceline_projector_batch_seconds",
    "Time from reading a batch to its commit.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STORE_UP = Gauge(
    "stanceline_projector_store_up",
    "1 while the projector can write to Postgres, 0 while it is retrying.",
)
