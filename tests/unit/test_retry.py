"""The one backoff: what it retries, what it raises at once, and how fast it stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from stanceline.retry import Stopped, with_backoff

log = logging.getLogger(__name__)


class Away(Exception):
    pass


def flaky(failures: int, exc: Exception) -> tuple[list[int], Callable[[], Awaitable[str]]]:
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(len(calls))
        if len(calls) <= failures:
            raise exc
        return "done"

    return calls, attempt


async def test_retries_the_named_failures_with_a_warning_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[BaseException] = []
    calls, attempt = flaky(2, Away("server gone\nsecond line"))
    with caplog.at_level(logging.WARNING):
        result = await with_backoff(
            attempt,
            on=Away,
            what="Thing unavailable",
            log=log,
            failed=seen.append,
        )
    assert result == "done"
    assert len(calls) == 3
    assert [str(e) for e in seen] == ["server gone\nsecond line"] * 2
    assert [r.getMessage() for r in caplog.records] == [
        "Thing unavailable (server gone); retrying in 0.1s",
        "Thing unavailable (server gone); retrying in 0.2s",
    ]


async def test_a_lambda_returning_a_coroutine_is_awaited() -> None:
    calls, attempt = flaky(1, Away("down"))
    assert await with_backoff(lambda: attempt(), on=Away, what="x", log=log) == "done"
    assert len(calls) == 2


async def test_other_failures_are_raised_at_once() -> None:
    calls, attempt = flaky(1, ValueError("poison"))
    with pytest.raises(ValueError, match="poison"):
        await with_backoff(attempt, on=Away, what="x", log=log)
    assert len(calls) == 1


async def test_a_predicate_narrows_the_types() -> None:
    calls, attempt = flaky(1, Away("not transient"))
    with pytest.raises(Away):
        await with_backoff(
            attempt,
            on=Exception,
            transient=lambda exc: "not" not in str(exc),
            what="x",
            log=log,
        )
    assert len(calls) == 1


async def test_stop_ends_the_wait_at_once() -> None:
    stop = asyncio.Event()
    calls, attempt = flaky(100, Away("down"))
    loop = asyncio.get_running_loop()
    loop.call_later(0.4, stop.set)  # attempts at 0, 0.1 and 0.3 s, then a wait until 0.7 s
    started = loop.time()
    with pytest.raises(Stopped):
        await with_backoff(attempt, on=Away, what="x", log=log, stop=stop)
    assert loop.time() - started < 0.6
    assert len(calls) == 3  # and none after the stop


async def test_a_stop_set_during_an_attempt_ends_without_waiting() -> None:
    stop = asyncio.Event()

    async def attempt() -> None:
        stop.set()
        raise Away("down")

    with pytest.raises(Stopped):
        await asyncio.wait_for(with_backoff(attempt, on=Away, what="x", log=log, stop=stop), 0.05)
