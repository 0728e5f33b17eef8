"""OpenTelemetry traces, exported only when an OTLP endpoint is configured.

Configured the standard way, by OpenTelemetry's own variables:
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), plus
``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_HEADERS`` and the rest. With no
endpoint nothing is set up: spans are OpenTelemetry's no-ops, nothing is sent,
and nothing warns. The projector traces each batch it consumes (``<stream key> process``),
FastAPI's instrumentation each request, and the committer each commit.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def enabled() -> bool:
    return any(os.environ.get(name) for name in _ENDPOINTS)


def configure(service_name: str) -> TracerProvider | None:
    """Install a provider that exports over OTLP/HTTP, once per process; None when off.

    ``OTEL_SERVICE_NAME`` wins over ``service_name``, as OpenTelemetry specifies.
    """
    if not enabled():
        return None
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def shutdown(provider: TracerProvider | None) -> None:
    """Send what is buffered before the process exits."""
    if provider is not None:
        provider.shutdown()
