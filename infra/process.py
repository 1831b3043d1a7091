"""Detached service processes with pid files: start, liveness, stop.

A pid file holds ``<pid> <create_time>``; a pid whose process no longer exists, or whose
creation time differs (the pid was reused), is *stale* and is removed. Used for the Kafka
broker; Postgres manages its own ``postmaster.pid`` through ``pg_ctl``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import tenacity

from infra.errors import EnvironmentProblem, ServiceFailed

__all__ = [
    "PidFile",
    "ensure_port_free",
    "ensure_writable_dir",
    "free_port",
    "port_open",
    "spawn_detached",
    "stop_pid",
    "wait_until",
]


@dataclass(frozen=True)
class PidFile:
    """A pid file at ``path`` naming one live process, or none."""

    path: Path

    def write(self, pid: int) -> None:
        """Record ``pid`` with its creation time so a reused pid is never mistaken for ours."""
        created = psutil.Process(pid).create_time()
        self.path.write_text(f"{pid} {created:.3f}\n")

    def read_alive(self) -> int | None:
        """The recorded pid if that very process is alive; removes a stale file and returns None."""
        try:
            pid_s, created_s = self.path.read_text().split()
            pid, created = int(pid_s), float(created_s)
        except (FileNotFoundError, ValueError):
            self.path.unlink(missing_ok=True)
            return None
        try:
            proc = psutil.Process(pid)
            alive = proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
            if alive and abs(proc.create_time() - created) < 0.01:
                return pid
        except psutil.NoSuchProcess:
            pass
        self.path.unlink(missing_ok=True)
        return None

    def clear(self) -> None:
        """Remove the file (missing is fine)."""
        self.path.unlink(missing_ok=True)


def spawn_detached(
    argv: Sequence[str], *, log_path: Path, cwd: Path, env: Mapping[str, str] | None = None
) -> int:
    """Start ``argv`` in its own session (survives the caller), stdout+stderr to ``log_path``.

    Returns the pid. Raises :class:`EnvironmentProblem` when the program is not found.
    """
    with log_path.open("ab") as log:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise EnvironmentProblem(f"{argv[0]} not found: install it or fix PATH") from exc
    return proc.pid


def stop_pid(
    pid: int, *, timeout_s: float = 30.0, name: str = "process", sig: int = signal.SIGTERM
) -> None:
    """Send ``sig`` (default SIGTERM) to ``pid``, wait up to ``timeout_s`` seconds, then SIGKILL.

    Raises :class:`ServiceFailed` if it is still alive 5 s after SIGKILL.
    """
    try:
        proc = psutil.Process(pid)
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        return
    try:
        proc.wait(timeout=timeout_s)
        return
    except psutil.TimeoutExpired:
        proc.kill()
    try:
        proc.wait(timeout=5)
    except psutil.TimeoutExpired as exc:
        raise ServiceFailed(f"{name} (pid {pid}) did not exit after SIGKILL") from exc


def port_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the OS reports free on ``host`` now (bind to port 0; another process may
    still take it before the caller binds it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ensure_port_free(port: int, what: str, setting: str) -> None:
    """Raise :class:`EnvironmentProblem` naming ``setting`` when ``port`` is already bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise EnvironmentProblem(
                f"port {port} for {what} is taken by another process: stop it or set {setting}"
            ) from exc


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and check it is writable; returns it resolved.

    Raises :class:`EnvironmentProblem` with the path when it cannot be created or written.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(
            f"data dir {path} cannot be created ({exc.strerror}): set LVLUP_DATA_DIR"
        ) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise EnvironmentProblem(f"data dir {path} is not writable: set LVLUP_DATA_DIR")
    return path.resolve()


def wait_until(
    predicate: Callable[[], bool], *, timeout_s: float, interval_s: float = 0.2
) -> bool:
    """Poll ``predicate`` every ``interval_s`` seconds until it is true or ``timeout_s`` pass.

    Returns the last result (tenacity does the polling; exceptions from ``predicate`` propagate).
    """
    poll = tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout_s),
        wait=tenacity.wait_fixed(interval_s),
        retry=tenacity.retry_if_result(lambda ok: not ok),
        retry_error_callback=lambda state: False,
    )
    return bool(poll(predicate))
