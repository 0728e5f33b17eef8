"""A rebuild's progress as Prometheus metrics.

``stanceline rebuild`` is a one-shot command: nothing scrapes it. Its metrics
go where Prometheus keeps batch jobs' metrics, a Pushgateway, when
``STANCELINE_PUSHGATEWAY_URL`` names one: pushed as it goes (at most once a
second) and when it ends, under the job ``stanceline-rebuild``. Without a
gateway they are only kept in this process, and nothing is sent.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

log = logging.getLogger(__name__)

JOB = "stanceline-rebuild"
PUSH_EVERY_SECONDS = 1.0


class RebuildMetrics:
    def __init__(self, gateway: str | None) -> None:
        self.gateway = gateway
        self.registry = CollectorRegistry()
        self.applied = Gauge(
            "stanceline_rebuild_events_applied",
            "Events the running rebuild has applied to the tables it builds.",
            registry=self.registry,
        )
        self.target = Gauge(
            "stanceline_rebuild_events_target",
            "Events the running rebuild must apply (grows while events keep arriving).",
            registry=self.registry,
        )
        self.running = Gauge(
            "stanceline_rebuild_running", "1 while a rebuild runs.", registry=self.registry
        )
        self.last_success = Gauge(
            "stanceline_rebuild_last_success_timestamp_seconds",
            "When a rebuild last finished (Unix time).",
            registry=self.registry,
        )
        self._pushed_at = 0.0

    def started(self) -> None:
        self.running.set(1)
        self._push(force=True)

    def progress(self, applied: int, target: int) -> None:
        self.applied.set(applied)
        self.target.set(target)
        self._push(force=False)

    def finished(self, *, ok: bool) -> None:
        self.running.set(0)
        if ok:
            self.last_success.set(time.time())
        self._push(force=True)

    def _push(self, *, force: bool) -> None:
        now = time.monotonic()
        if self.gateway is None or (not force and now - self._pushed_at < PUSH_EVERY_SECONDS):
            return
        self._pushed_at = now
        try:
            push_to_gateway(self.gateway, job=JOB, registry=self.registry, timeout=5)
        except OSError as exc:
            # The rebuild matters more than its metrics: say so, and go on.
            log.warning("could not push rebuild metrics to the gateway (%s)", exc)
