"""What the projector tells ``/readyz`` about itself.

A neutral module, so the read model can show it without importing the projector:
the projector writes the flags, the API only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ProjectorHealth:
    running: bool = False
    store_ok: bool = True
    redis_ok: bool = True
    last_error: str | None = None

    @property
    def ready(self) -> bool:
        return self.running and self.store_ok and self.redis_ok
