"""Child processes of a benchmark run: the real ``stanceline`` commands, the bare loop, py-spy.

Each runs in its own session with its output in a log file, and gets SIGKILL if the run
dies (``faults.harness``'s preexec), so no child outlives the benchmark.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from faults.harness import _die_with_us
from support.service import STANCELINE

BARE = Path(__file__).resolve().parent / "bare.py"


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 60.0) -> int:
        """SIGINT (a graceful stop for stanceline and py-spy), then SIGKILL if it hangs."""
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def launch(name: str, command: list[str], env: dict[str, str], logs: Path) -> Child:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_us(),
        )
    return Child(name, process, log)


def stanceline(name: str, args: list[str], env: dict[str, str], logs: Path) -> Child:
    return launch(name, [str(STANCELINE), *args], env, logs)


def bare(args: list[str], env: dict[str, str], logs: Path) -> Child:
    return launch("bare", [sys.executable, str(BARE), *args], env, logs)


def wait_healthy(child: Child, base_url: str, within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    with httpx.Client(base_url=base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited early:\n{child.tail()}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/healthz").status_code == 200:
                    return
            time.sleep(0.2)
    raise RuntimeError(f"{child.name} did not answer within {within:.0f}s:\n{child.tail()}")


def rss_bytes(pid: int) -> int:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0


def peak_rss_bytes(pid: int) -> int:
    """The kernel's high-water mark of resident memory (VmHWM): the true peak so far."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


# --- py-spy -----------------------------------------------------------------------------------


def py_spy_path() -> Path | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return candidate if candidate.exists() else None


def start_profile(pid: int, output: Path, logs: Path) -> Child | None:
    """py-spy sampling ``pid`` and its children (the API's workers; on-CPU stacks only,
    without pausing them) into collapsed stacks."""
    binary = py_spy_path()
    if binary is None:
        return None
    command = [str(binary), "record", "--pid", str(pid), "--rate", "100", "--nonblocking"]
    command += ["--subprocesses"]
    command += ["--format", "raw", "--output", str(output)]
    return launch("py-spy", command, {}, logs)


def summarise_profile(collapsed: Path, top: int = 15) -> dict[str, list[tuple[str, float]]]:
    """Shares of on-CPU samples (line numbers dropped): by the function on top of the stack
    (self), by the package that function is in, and, for stanceline's own functions, by
    every one on the stack (inclusive: what it and its callees cost)."""
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    lines = collapsed.read_text(errors="replace").splitlines() if collapsed.exists() else []
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        own[_frame(frames[-1])] += count
        packages[_package(frames[-1])] += count
        for frame in {_frame(f) for f in frames if "stanceline/" in f and "/cli/" not in f}:
            inclusive[frame] += count
    if not total:
        return {"self": [], "self_by_package": [], "stanceline_inclusive": [], "samples": []}

    def shares(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(f, round(100 * c / total, 1)) for f, c in counter.most_common(n)]

    return {
        "self": shares(own, top),
        "self_by_package": shares(packages, top),
        "stanceline_inclusive": shares(inclusive, top * 2),
        "samples": [("total", float(total))],
    }


def _where(frame: str) -> str:
    return frame.partition(" (")[2].rstrip(")").rsplit(":", 1)[0].replace("\\", "/")


def _frame(frame: str) -> str:
    """``func (path/to/module.py:123)`` → ``func (to/module.py)``."""
    name = frame.partition(" (")[0]
    parts = _where(frame).split("/")
    return f"{name} ({'/'.join(parts[-2:])})" if parts != [""] else name


def _package(frame: str) -> str:
    """The top-level package of a frame's file: ``sqlalchemy``, ``stanceline``, ``asyncio``."""
    path = _where(frame)
    for marker in ("site-packages/", "/stanceline/"):
        if marker in path:
            rest = path.split(marker, 1)[1]
            return "stanceline" if marker == "/stanceline/" else rest.split("/", 1)[0]
    parts = path.split("/")
    if len(parts) > 1:
        return parts[0]
    return parts[0].removesuffix(".py") or "?"
