"""HTTP clients per receiving origin, each with a few connections and no queue inside.

One client for every receiver would share one connection pool, and httpcore's pool
does work per waiting request and per connection on every state change: with the
dispatcher's hundreds of messages in flight, sending took ~2 ms of CPU per message
(measured: 350 deliveries/s on two cores). So each origin (scheme, host, port) gets
its own client with ``per_origin`` connections, and a semaphore of the same size in
front of it, so that requests wait here, cheaply, rather than in the pool. It is also
what a receiver expects of a webhook sender: a bounded number of concurrent
requests to it, however many messages are due.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx


class Origins:
    def __init__(self, *, per_origin: int, timeout_s: float) -> None:
        self.per_origin = per_origin
        self.timeout = httpx.Timeout(timeout_s)
        self._clients: dict[tuple[str, str, int | None], httpx.AsyncClient] = {}
        self._gates: dict[tuple[str, str, int | None], asyncio.Semaphore] = {}

    @asynccontextmanager
    async def client(self, url: str) -> AsyncIterator[httpx.AsyncClient]:
        """The client for ``url``'s origin, once one of its connections is free."""
        parsed = httpx.URL(url)
        origin = (parsed.scheme, parsed.host, parsed.port)
        if origin not in self._clients:
            self._clients[origin] = httpx.AsyncClient(
                timeout=self.timeout,
                limits=httpx.Limits(max_connections=self.per_origin),
                follow_redirects=False,
            )
            self._gates[origin] = asyncio.Semaphore(self.per_origin)
        async with self._gates[origin]:
            yield self._clients[origin]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        self._gates.clear()
