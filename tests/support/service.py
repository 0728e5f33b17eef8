"""Running the real ``stanceline`` command as a child process, the way users run it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

STANCELINE = Path(sys.executable).parent / "stanceline"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    process: asyncio.subprocess.Process
    base_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@asynccontextmanager
async def service_running(
    args: list[str], env: dict[str, str], cwd: Path, *, startup: float = 90.0
) -> AsyncIterator[Service]:
    """Start ``stanceline <args>``, wait for /healthz, and stop it with SIGINT (Ctrl-C)."""
    port = free_port()
    log = cwd / f"stanceline-{port}.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            str(STANCELINE),
            *args,
            "--port",
            str(port),
            cwd=cwd,
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    service = Service(process, f"http://127.0.0.1:{port}", log)
    try:
        await _wait_healthy(service, startup)
        yield service
    finally:
        await interrupt(process)


async def interrupt(process: asyncio.subprocess.Process) -> None:
    """Ctrl-C a child still running; kill it if it has not stopped within a minute."""
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()


def stop_all(processes: list[subprocess.Popen[bytes]], sig: signal.Signals, within: float) -> None:
    """Send ``sig`` to every server at once (they stop side by side), then wait for each,
    killing one still running after ``within`` seconds."""
    for process in processes:
        process.send_signal(sig)
    for process in processes:
        try:
            process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _wait_healthy(service: Service, within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with httpx.AsyncClient(base_url=service.base_url) as client:
        while loop.time() < deadline:
            if service.process.returncode is not None:
                raise AssertionError(f"stanceline exited early:\n{service.output()}")
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"stanceline did not answer within {within}s:\n{service.output()}")


async def stop(service: Service) -> int:
    """Ctrl-C, and the exit code once everything (embedded servers included) has stopped."""
    service.process.send_signal(signal.SIGINT)
    return await asyncio.wait_for(service.process.wait(), 60)


@asynccontextmanager
async def projector_child(
    env: dict[str, str], log: Path, *, append: bool = False
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run ``stanceline projector`` with ``env`` over the inherited environment, its output
    in ``log``, and hand over the process (a test may kill it). On leaving, one still
    running gets Ctrl-C, and is killed if it has not stopped within a minute."""
    with log.open("ab" if append else "wb") as sink:
        process = await asyncio.create_subprocess_exec(
            str(STANCELINE),
            "projector",
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        await interrupt(process)


@asynccontextmanager
async def projector_process(
    env: dict[str, str], log: Path, *, clean_exit: bool = True
) -> AsyncIterator[Path]:
    """``projector_child`` for a test that only reads its log; with ``clean_exit``, the
    projector must have stopped on Ctrl-C with exit 0."""
    async with projector_child(env, log) as process:
        yield log
    if clean_exit:
        assert process.returncode == 0, await asyncio.to_thread(log.read_text, errors="replace")
