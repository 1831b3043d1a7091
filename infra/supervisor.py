"""Supervised child processes for ``lvlup run``: start, restart with backoff, stop cleanly.

Each child runs in its own process group (``start_new_session``) with stdout/stderr to
``<run_dir>/<name>.log``. A child that exits while the supervisor runs is restarted after an
exponential backoff (tenacity's ``wait_exponential``: 1 s, 2 s, 4 s … capped at 30 s; the
count resets once a child stayed up 60 s). :meth:`Supervisor.stop` sends SIGTERM to every
group, waits, then SIGKILLs what is left.

A supervisor that dies without :meth:`~Supervisor.stop` (SIGKILL, a native crash, the OOM
killer) takes its children with it: each child is started with :data:`SUPERVISOR_PID_ENV` set
to the supervisor's pid, and a child that calls :func:`follow_supervisor` first thing (every
``lvlup`` command does, in ``main``) asks Linux for SIGTERM when its parent goes
(``prctl(PR_SET_PDEATHSIG)``, prctl(2)) — its usual graceful stop. Before this, a replay
benchmark whose parent crashed left both its sink processes consuming for half an hour.
prctl(2): the signal follows the *thread* that started the child, so start and restart
children from a thread that outlives them (``lvlup run``: the main thread).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog
import tenacity

__all__ = ["SUPERVISOR_PID_ENV", "ChildSpec", "ChildState", "Supervisor", "follow_supervisor"]

log = structlog.get_logger(__name__)
_BACKOFF = tenacity.wait_exponential(multiplier=1, min=1, max=30)
_STABLE_S = 60.0
SUPERVISOR_PID_ENV = "LVLUP_SUPERVISOR_PID"
"""Set in every child's environment to the supervisor's pid (module doc)."""
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass(frozen=True)
class ChildSpec:
    """A child: its ``name`` and command line."""

    name: str
    argv: tuple[str, ...]


@dataclass
class ChildState:
    """What the supervisor knows of one child."""

    spec: ChildSpec
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures_in_row: int = 0
    next_start: float = 0.0
    exit_codes: list[int] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.proc is None:
            return "waiting"
        return "running" if self.proc.poll() is None else f"exited {self.proc.returncode}"


class _Attempt:
    """The bit of tenacity's retry state that ``wait_exponential`` reads."""

    def __init__(self, n: int) -> None:
        self.attempt_number = n


class Supervisor:
    """Starts ``specs`` with ``env`` and keeps them running until :meth:`stop`."""

    def __init__(self, specs: Sequence[ChildSpec], env: Mapping[str, str], log_dir: Path) -> None:
        self.children = [ChildState(spec) for spec in specs]
        self.env = dict(env)
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)

    def _start(self, child: ChildState) -> None:
        with (self.log_dir / f"{child.spec.name}.log").open("ab") as out:
            env = {**self.env, SUPERVISOR_PID_ENV: str(os.getpid())}
            child.proc = subprocess.Popen(list(child.spec.argv), env=env, stdout=out,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
        child.started_at = time.monotonic()
        log.info("supervisor.started", child=child.spec.name, pid=child.proc.pid)

    def start(self) -> None:
        """Start every child."""
        for child in self.children:
            self._start(child)

    def poll(self) -> None:
        """Restart children that exited (with backoff). Call it every second or so."""
        now = time.monotonic()
        for child in self.children:
            proc = child.proc
            if proc is not None and proc.poll() is None:
                if now - child.started_at > _STABLE_S:
                    child.failures_in_row = 0
                continue
            if proc is not None and child.next_start == 0.0:
                child.exit_codes.append(proc.returncode)
                child.failures_in_row += 1
                delay = float(_BACKOFF(_Attempt(child.failures_in_row)))  # type: ignore[arg-type]
                child.next_start = now + delay
                log.warning("supervisor.child_exited", child=child.spec.name,
                            code=proc.returncode, restart_in_s=delay,
                            log=str(self.log_dir / f"{child.spec.name}.log"))
            if now >= child.next_start:
                child.restarts += 1 if proc is not None else 0
                child.next_start = 0.0
                self._start(child)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM every child's process group, wait ``timeout_s``, SIGKILL the rest."""
        for child in self.children:
            if child.proc is not None and child.proc.poll() is None:
                _signal_group(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in self.children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("supervisor.kill", child=child.spec.name)
            _signal_group(child.proc.pid, signal.SIGKILL)  # leftovers of the group, if any
            child.proc.wait(10)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return


def follow_supervisor() -> None:
    """In a supervised child: get SIGTERM when the supervisor dies (module doc).

    Reads and removes :data:`SUPERVISOR_PID_ENV` (so the child's own children do not act on
    it); does nothing when it is unset or off Linux. Raises :class:`SystemExit` (code 1) when
    the supervisor is already gone — the child's parent is no longer that pid, so no signal
    would ever come — and :class:`OSError` when ``prctl`` fails.
    """
    raw = os.environ.pop(SUPERVISOR_PID_ENV, None)
    if raw is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_PDEATHSIG): {os.strerror(err)}")
    if os.getppid() != int(raw):
        raise SystemExit(f"lvlup: the supervisor (pid {raw}) is gone; not starting")
