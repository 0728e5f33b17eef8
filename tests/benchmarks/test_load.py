"""The read figures' load generators (``load.py``) against a tiny local HTTP server.

Both count the same things the same way: completed requests, errors (a status above 399),
latencies; a request-counted run stops near its count, a timed one after its window.
Without wrk the benchmark says so and uses httpx.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmarks import load


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the API serves

    def do_GET(self) -> None:
        status = 200 if self.path.startswith("/ok") else 404
        body = b'{"ok": true}' if status == 200 else b"no"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a generator closing its connections at the end resets them


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


GENERATORS = [
    "httpx",
    pytest.param(
        "wrk", marks=pytest.mark.skipif(load.wrk_binary() is None, reason="wrk is not installed")
    ),
]


@pytest.mark.parametrize("generator", GENERATORS)
async def test_a_counted_run_counts_requests_and_errors(generator: str, base_url: str) -> None:
    result = await load.closed_loop(
        generator, base_url, ["/ok/1", "/ok/2", "/missing"], clients=2, requests=60, seed=1
    )
    assert result.generator == generator
    assert 55 <= result.requests <= 62
    # A third of the paths answer 404: errors, whichever client walked them.
    assert result.requests / 4 <= result.errors <= result.requests / 2
    latency = result.latency_ms
    assert latency["n"] == result.requests
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert result.seconds > 0
    assert result.client_cpu_seconds >= 0


@pytest.mark.parametrize("generator", GENERATORS)
async def test_a_timed_run_lasts_its_window(generator: str, base_url: str) -> None:
    result = await load.closed_loop(
        generator, base_url, ["/ok"], clients=2, seconds=1.0, warmup=0.2, seed=1
    )
    assert result.errors == 0
    assert result.requests > 10
    assert 0.9 <= result.seconds <= 1.5
    assert result.requests_per_second > 0


def test_without_wrk_the_run_says_so_and_uses_httpx(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(load, "wrk_binary", lambda: None)
    monkeypatch.setattr(load, "_warned", False)
    assert load.choose("auto") == "httpx"
    assert "wrk is not installed" in capsys.readouterr().err
    assert load.choose("auto") == "httpx"
    assert capsys.readouterr().err == ""  # once per run
    with pytest.raises(RuntimeError, match="not installed"):
        load.choose("wrk")
    assert load.choose("httpx") == "httpx"


def test_percentiles_are_nearest_rank() -> None:
    figures = load.percentiles([float(n) for n in range(1, 101)])
    assert (figures["p50"], figures["p95"], figures["p99"], figures["max"]) == (50, 95, 99, 100)
    assert load.percentiles([])["n"] == 0
