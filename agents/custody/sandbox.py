"""Run untrusted Python in a bubblewrap sandbox with whole-tree limits; fail closed.

Every run (custody answers, proposal tests, experiments) goes through :func:`run_python`:

1. A fresh work directory (owned by the sandbox uid) holds ``main.py``; stdin, stdout,
   stderr and the completion-marker file live next to it, outside the sandbox's view, and
   reach the child only as open file descriptors 0, 1, 2 and :data:`MARKER_FD`.
2. A per-run cgroup (:mod:`agents.custody._cgroups`) bounds the whole tree's memory and
   process count. The first process (``/bin/sh`` waiting on a pipe) is moved into it and
   given its rlimits (``prlimit(2)``: CPU, address space, file size, open files, core 0)
   before it executes bubblewrap, so nothing runs unbounded.
3. ``bwrap`` (Debian ``bubblewrap``; bwrap(1)) builds the sandbox: new mount, PID, network,
   IPC, UTS and cgroup namespaces (no network: only a down loopback), a tmpfs root holding
   read-only binds of ``/usr`` (``/bin``, ``/lib``… are its symlinks) and of the
   interpreter's prefix only, the work directory read-write, fresh ``/proc``, ``/dev`` and
   ``/tmp``, an empty environment, a new session (no TIOCSTI into our terminal), death with
   its parent, and the seccomp filter of :mod:`agents.custody._seccomp`. bwrap sets
   ``no_new_privs``. As root it keeps only CAP_SETUID/SETGID/SETPCAP for ``setpriv(1)``
   (util-linux), which clears the bounding and inheritable sets, drops all supplementary
   groups and switches to uid/gid :data:`SANDBOX_UID` before Python starts: the code runs
   as host uid 65534 with every capability set empty. (``bwrap --unshare-user --uid 65534``
   run by root maps the sandbox uid to host uid 0 — files owned by root stay the owner's —
   so it is not used as root.) Not root: ``--unshare-user --disable-userns`` maps the caller.
4. The wall time is enforced from here; at the end every process left in the cgroup is
   killed and the cgroup removed.

If any of this cannot be set up — no ``bwrap``, no libseccomp, cgroups not writable, bwrap
refusing to build the sandbox — :class:`~agents.custody.errors.SandboxUnavailable` is
raised before the untrusted code runs. There is no weaker fallback.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from agents.custody._cgroups import RunCgroup, TreeUsage
from agents.custody._seccomp import filter_bpf
from agents.custody.errors import SandboxError, SandboxUnavailable

__all__ = ["MARKER_FD", "SANDBOX_UID", "SandboxLimits", "SandboxResult", "bwrap_path",
           "run_python"]

#: uid and gid of the sandboxed code (Debian's ``nobody``/``nogroup``), never host root.
SANDBOX_UID = 65534
#: The child's write-only descriptor to the completion-marker file (see ``SandboxResult``).
MARKER_FD = 3
_MARKER_CAP = 4096
_INSIDE_WORK = "/sandbox"
#: fd layout of the launcher: 0-2 stdio, 3 marker, 4 go-pipe, 5 seccomp program, 6 status.
_GO_FD, _SECCOMP_FD, _STATUS_FD = 4, 5, 6
_LAUNCH = f'read -r _ <&{_GO_FD} || exit 125; exec {_GO_FD}<&-; exec "$@"'
_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Limits of one run. ``cpu_seconds`` per process (RLIMIT_CPU), ``wall_seconds`` for the
    run, ``memory_bytes`` for the whole tree (cgroup) and per process (RLIMIT_AS),
    ``max_processes`` for the whole tree (cgroup ``pids.max``, the launcher included),
    ``max_output_bytes`` returned per stream, ``max_file_bytes`` per file written
    (RLIMIT_FSIZE; stdout/stderr too), ``max_open_files`` (RLIMIT_NOFILE)."""

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
    ``"memory"`` (a ``MemoryError`` or the cgroup's OOM killer), ``"processes"`` (the tree hit
    ``pids.max``: it is killed at once), ``"output"`` (RLIMIT_FSIZE), ``"signal:<n>"`` or
    ``None``. ``isolation`` is ``"bwrap"``. ``duration_ms`` is wall time in milliseconds.
    ``marker`` is what the program wrote to descriptor :data:`MARKER_FD` (at most 4 KiB): a
    channel to the harness that stdout cannot fake (see :mod:`agents.custody.scorers`).
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
    marker: str = ""


def bwrap_path() -> str | None:
    """The ``bwrap`` executable on PATH, or None (install: ``infra/install-sandbox.sh``)."""
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=8)
def _tree_args(interpreter: str) -> tuple[str, ...]:
    """bwrap arguments exposing ``/usr`` and the interpreter's prefix, read-only."""
    args: list[str] = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--perms", "0755", "--dir", "/etc",
             "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    real = Path(interpreter).resolve()
    base = Path(sys.base_prefix).resolve()
    prefix = base if real.is_relative_to(base) else real.parent.parent
    if not prefix.is_relative_to("/usr"):
        for parent in reversed(prefix.parents[:-1]):  # bwrap would create them 0700
            args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", str(prefix), str(prefix)]
    return tuple(args)


def _bwrap_argv(bwrap: str, interpreter: str, work: Path) -> list[str]:
    real = str(Path(interpreter).resolve())
    argv = [bwrap, *_tree_args(interpreter),
            "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--tmpfs", "/tmp",  # noqa: S108 - the sandbox's own fresh tmpfs
            "--bind", str(work), _INSIDE_WORK, "--chdir", _INSIDE_WORK,
            "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup", "--die-with-parent", "--new-session", "--clearenv",
            "--setenv", "PATH", _ENV["PATH"], "--setenv", "LANG", _ENV["LANG"],
            "--setenv", "HOME", _INSIDE_WORK,
            "--seccomp", str(_SECCOMP_FD), "--json-status-fd", str(_STATUS_FD),
            "--cap-drop", "ALL"]
    child = [real, "-I", "-S", "main.py"]
    if os.geteuid() != 0:
        return [*argv, "--unshare-user", "--disable-userns", "--uid", str(SANDBOX_UID),
                "--gid", str(SANDBOX_UID), "--", *child]
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise SandboxUnavailable("setpriv (util-linux) not found", "no_setpriv")
    return [*argv, "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add",
            "CAP_SETPCAP", "--", setpriv, f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}",
            "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--", *child]


def run_python(
    source: str,
    *,
    limits: SandboxLimits | None = None,
    python: str | None = None,
    stdin: bytes = b"",
) -> SandboxResult:
    """Run ``source`` as ``main.py`` in a fresh work directory inside the sandbox; report.

    ``stdin`` is fed to the child's standard input; ``python`` defaults to
    ``sys.executable`` (run with ``-I -S``: no environment, no site-packages). Blocking:
    returns after at most ``limits.wall_seconds`` plus clean-up. Raises
    :class:`SandboxUnavailable` when isolation cannot be set up (nothing ran) and
    :class:`SandboxError` for a missing interpreter; whatever the code itself does is
    reported in the result.
    """
    limits = limits or SandboxLimits()
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed: run "
                                 "infra/install-sandbox.sh", "no_bwrap")
    interpreter = python or sys.executable
    if not os.access(interpreter, os.X_OK):
        raise SandboxError(f"interpreter not executable: {interpreter}")
    program = filter_bpf()
    with tempfile.TemporaryDirectory(prefix="lvlup-sbx-") as tmp:
        root = Path(tmp)
        work = root / "work"
        work.mkdir()
        # bwrap chdirs into it as capability-less root; ``tmp`` around it stays 0700
        os.chmod(work, 0o711)  # noqa: S103
        (work / "main.py").write_text(source, encoding="utf-8")
        if os.geteuid() == 0:
            for path in (work, work / "main.py"):
                os.chown(path, SANDBOX_UID, SANDBOX_UID)
        (root / "stdin").write_bytes(stdin)
        argv = _bwrap_argv(bwrap, interpreter, work)
        cgroup = RunCgroup(limits.memory_bytes, limits.max_processes).create()
        try:
            started = time.monotonic()
            code, timed_out, status = _execute(argv, root, limits, cgroup, program)
            duration_ms = int((time.monotonic() - started) * 1000)
            cgroup.kill_all()
            usage = cgroup.usage()
        finally:
            cgroup.remove()
        out, out_size = _read_capped(root / "stdout", limits.max_output_bytes)
        err, err_size = _read_capped(root / "stderr", limits.max_output_bytes)
        marker, _ = _read_capped(root / "marker", _MARKER_CAP)
    if code is None and not timed_out and usage.oom_kills == 0 and not usage.pids_refused:
        raise SandboxUnavailable(f"bwrap could not build the sandbox: {err.strip()[-500:]}"
                                 f" (status {status!r})", "bwrap_failed")
    reason = _killed_reason(code, timed_out, usage, stderr=err,
                            file_bytes=max(out_size, err_size), limits=limits)
    exit_code = None if code is None or code > 128 else code
    return SandboxResult(
        passed=exit_code == 0 and reason is None, exit_code=exit_code,
        duration_ms=duration_ms, stdout=out, stderr=err,
        stdout_truncated=out_size > limits.max_output_bytes,
        stderr_truncated=err_size > limits.max_output_bytes,
        killed_reason=reason, isolation="bwrap", marker=marker)


def _rlimits(limits: SandboxLimits) -> dict[int, tuple[int, int]]:
    return {
        resource.RLIMIT_CPU: (limits.cpu_seconds, limits.cpu_seconds + 1),
        resource.RLIMIT_AS: (limits.memory_bytes, limits.memory_bytes),
        resource.RLIMIT_FSIZE: (limits.max_file_bytes, limits.max_file_bytes),
        resource.RLIMIT_NOFILE: (limits.max_open_files, limits.max_open_files),
        resource.RLIMIT_CORE: (0, 0),
    }


def _execute(argv: list[str], root: Path, limits: SandboxLimits, cgroup: RunCgroup,
             program: bytes) -> tuple[int | None, bool, list[dict[str, object]]]:
    """Launch, confine, release and wait. Returns (the child's exit status as bwrap reports
    it — 128 + n for signal n — or None if bwrap reported none, timed out, status lines)."""
    seccomp_fd = os.memfd_create("lvlup-seccomp", os.MFD_CLOEXEC)
    go_r, go_w = os.pipe()
    status_r, status_w = os.pipe()
    opened: list[int] = [seccomp_fd, go_r, go_w, status_r, status_w]
    try:
        os.write(seccomp_fd, program)
        os.lseek(seccomp_fd, 0, os.SEEK_SET)
        fds = [os.open(root / "stdin", os.O_RDONLY | os.O_CLOEXEC),
               os.open(root / "stdout", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600),
               os.open(root / "stderr", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600),
               os.open(root / "marker", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)]
        opened += fds
        # sources above every target, so no dup2 overwrites a source still to be copied
        sources = [*fds, go_r, seccomp_fd, status_w]
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in sources]
        opened += high
        actions = [(os.POSIX_SPAWN_DUP2, fd, n) for n, fd in enumerate(high)]
        try:
            pid = os.posix_spawn("/bin/sh", ["sh", "-c", _LAUNCH, "sh", *argv], _ENV,
                                 file_actions=actions, setsid=True)
        except OSError as exc:
            raise SandboxUnavailable(f"cannot start the sandbox: {exc}", "bwrap_failed"
                                     ) from exc
        try:
            cgroup.attach(pid)
            for which, value in _rlimits(limits).items():
                resource.prlimit(pid, which, value)
        except (SandboxUnavailable, OSError) as exc:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            if isinstance(exc, SandboxUnavailable):
                raise
            raise SandboxUnavailable(f"cannot limit the sandbox: {exc}", "no_cgroups"
                                     ) from exc
        for fd in (go_r, status_w, *high):  # the child holds its copies; EOF needs ours shut
            os.close(fd)
            opened.remove(fd)
        os.write(go_w, b"go\n")  # the launcher is confined: let it exec bwrap
        timed_out, wait_status = _wait(pid, limits.wall_seconds, cgroup)
        with os.fdopen(status_r, "rb") as pipe:
            opened.remove(status_r)
            cgroup.kill_all()  # also releases status pipe holders, if any survived
            raw = pipe.read()
    finally:
        for fd in opened:
            os.close(fd)
    status = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
    codes = [s["exit-code"] for s in status if "exit-code" in s]
    if codes:
        return int(codes[-1]), timed_out, status
    if not timed_out and os.WIFEXITED(wait_status) and os.WEXITSTATUS(wait_status) == 125:
        raise SandboxUnavailable("the sandbox launcher was not released", "bwrap_failed")
    return None, timed_out, status


def _wait(pid: int, wall_seconds: float, cgroup: RunCgroup) -> tuple[bool, int]:
    """Wait for ``pid`` up to ``wall_seconds``; the tree is killed at the wall limit or as
    soon as it hits its process cap. Returns (timed out, wait status)."""
    deadline = time.monotonic() + wall_seconds
    pidfd = os.pidfd_open(pid)
    timed_out = False
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        while not poller.poll(20):
            if time.monotonic() >= deadline:
                timed_out = True
                break
            if cgroup.usage().pids_refused:
                break
    finally:
        os.close(pidfd)
    if not cgroup.kill_all() or timed_out:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, wait_status = os.waitpid(pid, 0)
    return timed_out, wait_status


def _killed_reason(code: int | None, timed_out: bool, usage: TreeUsage, *, stderr: str,
                   file_bytes: int, limits: SandboxLimits) -> str | None:
    if usage.pids_refused:
        return "processes"
    if usage.oom_kills:
        return "memory"
    if timed_out:
        return "wall_time"
    if file_bytes >= limits.max_file_bytes:
        return "output"  # Python ignores SIGXFSZ: the write failed with EFBIG instead
    if code is not None and code > 128:
        sig = code - 128
        if sig == signal.SIGXCPU:
            return "cpu_time"
        return "output" if sig == signal.SIGXFSZ else f"signal:{sig}"
    if code and "MemoryError" in stderr[-2000:]:
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
