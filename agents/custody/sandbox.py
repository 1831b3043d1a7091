"""Run untrusted Python in a subprocess with resource limits and no network.

Mechanism (Linux):

* **Namespaces** (preferred, ``isolation="namespace"``): the child runs under
  ``unshare --net --pid --mount --mount-proc --fork --kill-child`` (util-linux; as root
  directly, otherwise with ``--user --map-root-user``). A fresh network namespace has only a
  down loopback device, so every connect fails (``ENETUNREACH``) and DNS cannot resolve. The
  supervisor :mod:`agents.custody._sandbox_init` is PID 1 of the new PID namespace: it remounts
  every mount point read-only except the work directory, counts the processes of the namespace
  and kills them all past ``max_processes``, and when PID 1 exits the kernel kills whatever is
  left — a double-forked or ``setsid`` escapee included.
* **Guard** (fallback, ``isolation="guard"``, used when ``unshare`` is missing or not
  permitted): sockets are disabled in-process by :mod:`agents.custody._sandbox_guard`, the
  supervisor polls the child's process group, no read-only file system. Weaker: ``ctypes`` or
  a network tool started in a subprocess get around the guard.

Both modes: the child gets ``RLIMIT_CPU`` (SIGXCPU at the soft limit, SIGKILL one second
later), ``RLIMIT_AS``, ``RLIMIT_NPROC`` (the kernel ignores it for root — hence the process
count above), ``RLIMIT_FSIZE`` (bounds stdout/stderr files too: SIGXFSZ), ``RLIMIT_NOFILE``,
``RLIMIT_CORE=0``; it starts in a new session and the whole process group is SIGKILLed at the
wall-time limit. stdout/stderr go to files and are returned truncated to ``max_output_bytes``.
The interpreter runs with ``-I -S``: no environment variables, no site-packages.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agents.custody.errors import SandboxError

__all__ = ["SandboxLimits", "SandboxResult", "namespace_prefix", "run_python"]

_HERE = Path(__file__).resolve().parent
_NS_FLAGS = ("--net", "--pid", "--mount", "--mount-proc", "--fork", "--kill-child")


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Limits of one run. Units: seconds, bytes, counts."""

    cpu_seconds: int = 5
    wall_seconds: float = 10.0
    memory_bytes: int = 512 * 2**20
    max_processes: int = 32
    max_output_bytes: int = 64 * 2**10
    max_file_bytes: int = 8 * 2**20
    max_open_files: int = 64


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """Outcome of one run.

    ``passed`` is exit code 0 and no limit hit. ``exit_code`` is ``None`` when the child was
    killed by a signal. ``killed_reason`` is one of ``"wall_time"``, ``"cpu_time"``,
    ``"memory"`` (a ``MemoryError`` under ``RLIMIT_AS``), ``"processes"``, ``"output"``
    (``RLIMIT_FSIZE``), ``"signal:<n>"``, ``"supervisor_lost"`` or ``None``. ``isolation`` is
    ``"namespace"`` or ``"guard"``. ``duration_ms`` is wall time in milliseconds.
    """

    passed: bool
    exit_code: int | None
    duration_ms: int
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    killed_reason: str | None
    isolation: str


@functools.lru_cache(maxsize=1)
def namespace_prefix() -> tuple[str, ...] | None:
    """The ``unshare`` command prefix that works here, or ``None`` (probed once, cached).

    Tries the plain flags as root, then ``--user --map-root-user``; a candidate counts only if
    ``unshare … -- true`` exits 0 within 10 s.
    """
    exe = shutil.which("unshare")
    if exe is None:
        return None
    candidates: list[tuple[str, ...]] = [(exe, *_NS_FLAGS)] if os.geteuid() == 0 else []
    candidates.append((exe, "--user", "--map-root-user", *_NS_FLAGS))
    for prefix in candidates:
        try:
            probe = subprocess.run(
                [*prefix, "--", "true"], capture_output=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return prefix
    return None


def run_python(
    source: str,
    *,
    limits: SandboxLimits | None = None,
    network: Literal["auto", "namespace", "guard"] = "auto",
    python: str | None = None,
    stdin: bytes = b"",
) -> SandboxResult:
    """Run ``source`` as ``main.py`` in a fresh temporary work directory and report.

    ``stdin`` is fed to the child's standard input (from a file outside the work directory).
    ``network="auto"`` uses namespaces when :func:`namespace_prefix` finds them, else the
    guard; ``"namespace"`` raises :class:`SandboxError` when they are unavailable. ``python``
    defaults to ``sys.executable``. Raises :class:`SandboxError` when the sandbox cannot be
    set up (no interpreter, the read-only remount failed); anything the code itself does is
    reported in the result.
    """
    limits = limits or SandboxLimits()
    prefix = namespace_prefix() if network != "guard" else None
    if network == "namespace" and prefix is None:
        raise SandboxError("Linux namespaces (unshare --net --pid --mount) are not available")
    isolation = "namespace" if prefix else "guard"
    interpreter = python or sys.executable
    if not os.access(interpreter, os.X_OK):
        raise SandboxError(f"interpreter not executable: {interpreter}")
    with tempfile.TemporaryDirectory(prefix="lvlup-sbx-") as root:
        work = Path(root, "work")
        work.mkdir()
        (work / "main.py").write_text(source, encoding="utf-8")
        Path(root, "stdin").write_bytes(stdin)
        script = ["main.py"] if prefix else [str(_HERE / "_sandbox_guard.py"), "main.py"]
        child = [interpreter, "-I", "-S", *script]
        started = time.monotonic()
        status, timed_out = _execute(prefix, child, work, Path(root), limits)
        if status is not None and "error" in status:
            raise SandboxError(f"sandbox setup failed: {status['error']}")
        duration_ms = int((time.monotonic() - started) * 1000)
        out, out_size = _read_capped(Path(root, "stdout"), limits.max_output_bytes)
        err, err_size = _read_capped(Path(root, "stderr"), limits.max_output_bytes)
    if timed_out:
        reason: str | None = "wall_time"
    elif max(out_size, err_size) >= limits.max_file_bytes:
        reason = "output"  # Python ignores SIGXFSZ: the write failed with EFBIG instead
    else:
        reason = _killed_reason(status, err, limits)
    exit_code = None if status is None else status.get("exit_code")
    return SandboxResult(
        passed=exit_code == 0 and reason is None,
        exit_code=exit_code,
        duration_ms=duration_ms,
        stdout=out,
        stderr=err,
        stdout_truncated=out_size > limits.max_output_bytes,
        stderr_truncated=err_size > limits.max_output_bytes,
        killed_reason=reason,
        isolation=isolation,
    )


def _rlimits(limits: SandboxLimits) -> dict[str, list[int]]:
    return {
        "CPU": [limits.cpu_seconds, limits.cpu_seconds + 1],
        "AS": [limits.memory_bytes, limits.memory_bytes],
        "NPROC": [limits.max_processes, limits.max_processes],
        "FSIZE": [limits.max_file_bytes, limits.max_file_bytes],
        "NOFILE": [limits.max_open_files, limits.max_open_files],
        "CORE": [0, 0],
    }


def _execute(
    prefix: tuple[str, ...] | None,
    child: list[str],
    work: Path,
    root: Path,
    limits: SandboxLimits,
) -> tuple[dict[str, Any] | None, bool]:
    """Start the supervisor, enforce the wall time; return (status or None, timed out)."""
    read_fd, write_fd = os.pipe()
    config = {
        "status_fd": write_fd,
        "workdir": str(work),
        "readonly": prefix is not None,
        "max_procs": limits.max_processes,
        "nice": 10,
        "rlimits": _rlimits(limits),
        "argv": child,
    }
    init = [child[0], "-I", "-S", str(_HERE / "_sandbox_init.py"), json.dumps(config)]
    argv = [*prefix, "--", *init] if prefix else init
    with os.fdopen(read_fd, "rb") as status_pipe:
        timed_out = _spawn_and_wait(argv, work, root, limits.wall_seconds, write_fd)
        raw = status_pipe.read()  # EOF: every holder of the write end is gone
    if not raw:
        return None, timed_out
    status: dict[str, Any] = json.loads(raw.splitlines()[0])
    return status, timed_out


def _spawn_and_wait(
    argv: list[str], work: Path, root: Path, wall_seconds: float, write_fd: int
) -> bool:
    """Run ``argv`` in a new session; SIGKILL its process group at ``wall_seconds`` and after
    it exits. Closes ``write_fd`` once the child has it. Returns whether the wall limit hit."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work)}
    with (
        open(root / "stdin", "rb") as inp,
        open(root / "stdout", "wb") as out,
        open(root / "stderr", "wb") as err,
    ):
        try:
            proc = subprocess.Popen(
                argv,
                cwd=work,
                env=env,
                stdin=inp,
                stdout=out,
                stderr=err,
                start_new_session=True,
                pass_fds=(write_fd,),
            )
        except OSError as exc:
            raise SandboxError(f"cannot start the sandbox: {exc}") from exc
        finally:
            os.close(write_fd)
        timed_out = False
        try:
            proc.wait(timeout=wall_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group; PID 1 takes its namespace along
        proc.wait()
    return timed_out


def _killed_reason(status: dict[str, Any] | None, stderr: str, limits: SandboxLimits) -> str | None:
    if status is None:
        return "supervisor_lost"  # killed before reporting (e.g. by the child in guard mode)
    if status.get("killed"):
        return str(status["killed"])
    sig = status.get("signal")
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and status["cpu_s"] >= limits.cpu_seconds):
        return "cpu_time"
    if sig == signal.SIGXFSZ:
        return "output"
    if sig is not None:
        return f"signal:{sig}"
    if status.get("exit_code") and "MemoryError" in stderr[-2000:]:
        return "memory"
    return None


def _read_capped(path: Path, cap: int) -> tuple[str, int]:
    """First ``cap`` bytes of ``path`` as text, and the file's size in bytes."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(cap)
            size = os.fstat(fh.fileno()).st_size
    except FileNotFoundError:
        return "", 0
    return data.decode("utf-8", errors="replace"), size
