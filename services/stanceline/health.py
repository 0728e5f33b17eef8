"""What the projector tells ``/readyz`` about itself.

A neutral module, so the read model can show it without importing the projector:
the projector writes the flags, the API and the projector's own probe only read
them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ProjectorHealth:
    running: bool = False
    store_ok: bool = True
    redis_ok: bool = True
    last_error: str | None = None
    """The driver's own words, for the log only: they can hold SQL, hosts, parameters."""

    @property
    def ready(self) -> bool:
        return self.running and self.store_ok and self.redis_ok

    @property
    def problem(self) -> str | None:
        """Why the projector is not ready, in a sentence an operator can act on; None when
        it is. Never the driver's text: that goes to the log."""
        if not self.store_ok:
            return "the projector cannot reach Postgres; it retries and resumes by itself"
        if not self.redis_ok:
            return "the projector cannot reach Redis; it retries and resumes by itself"
        if not self.running:
            return "the projector is not consuming (starting, or stopping)"
        return None
