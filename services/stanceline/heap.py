"""Keep a service's start-up objects out of the cycle collector's sight.

A service imports FastAPI, SQLAlchemy, pydantic, redis-py and our own models:
hundreds of thousands of objects that live as long as the process. CPython
collects its oldest generation whenever it has grown by a quarter, and every
such pass walks all of them, while the event loop answers nobody. Measured on
the API at 1M events (``tests/benchmarks/reads.py``, 4 clients, 2 workers):
history p50 2.8 ms both ways, p99 71.0 ms with those passes and 5.6 ms after
``gc.freeze()`` at start-up. Frozen objects are never collected, so only what
exists once the service is up is frozen, after a last full collection.
"""

from __future__ import annotations

import gc
from functools import cache


@cache
def settle() -> None:
    """Once a long-running process has started: collect, then freeze what is left.

    Only the first call in a process does anything: ``up`` settles once its services are
    built and its API's lifespan asks again, and a test session starts many apps, whose
    later objects must stay collectable."""
    gc.collect()
    gc.freeze()
