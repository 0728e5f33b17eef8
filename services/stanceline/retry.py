"""Retrying an operation while Postgres or Redis is away: one backoff for the whole service.

A server that restarts must neither end a process nor lose a batch, so the
projector's commits, its joining the consumer group and the migration at start
all wait for it the same way: the first retry after 0.1 s, each wait twice the
last up to 5 s, a warning before each, and only for failures that say the
server is away; anything else is the caller's to handle and is raised at once.
A caller that must stay stoppable (Ctrl-C while Postgres is still down) hands
in its stop event: the wait ends as soon as it is set, and `Stopped` is raised
instead of trying again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar, cast

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

T = TypeVar("T")

FIRST_WAIT = 0.1
"""Seconds before the first retry; each further wait doubles."""
MAX_WAIT = 5.0
"""Seconds: the longest wait, so a returning server is noticed soon."""


class Stopped(Exception):
    """The stop event was set before the operation succeeded."""


async def with_backoff(
    attempt: Callable[[], Awaitable[T]],
    *,
    on: type[BaseException] | tuple[type[BaseException], ...],
    what: str,
    log: logging.Logger,
    transient: Callable[[BaseException], bool] | None = None,
    failed: Callable[[BaseException], None] | None = None,
    stop: asyncio.Event | None = None,
) -> T:
    """Await ``attempt()`` until it succeeds, retrying the failures ``on`` names.

    ``transient`` narrows those further (a predicate on the exception);
    ``failed`` is called with each failure that will be retried, for the
    caller's health flags; ``what`` starts the warning (``"Postgres
    unavailable"``), which ``log`` records under the caller's name. With
    ``stop``, raise `Stopped` once it is set, without waiting out the backoff.
    """

    def retryable(exc: BaseException) -> bool:
        return isinstance(exc, on) and (transient is None or transient(exc))

    def after(state: RetryCallState) -> None:
        if failed is not None:
            failed(_exception(state))

    def before_sleep(state: RetryCallState) -> None:
        exc = _exception(state)
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        log.warning("%s (%s); retrying in %.1fs", what, reason, state.upcoming_sleep)

    def stop_now(state: RetryCallState) -> NoReturn:
        raise Stopped from _exception(state)

    async def sleep(seconds: float) -> None:
        if stop is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        if stop.is_set():
            raise Stopped

    async def call() -> T:
        # tenacity awaits only coroutine functions; ``attempt`` may be a lambda.
        return await attempt()

    retrying = AsyncRetrying(
        sleep=sleep,
        wait=wait_exponential(multiplier=FIRST_WAIT, exp_base=2, max=MAX_WAIT),
        retry=retry_if_exception(retryable),
        after=after,
        before_sleep=before_sleep,
        # Checked after each retryable failure: a stop set meanwhile ends it there.
        stop=lambda _state: stop is not None and stop.is_set(),
        retry_error_callback=stop_now,
    )
    return cast("T", await retrying(call))


def _exception(state: RetryCallState) -> BaseException:
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    assert exc is not None, "tenacity calls these hooks only after a failed attempt"
    return exc
