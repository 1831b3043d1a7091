"""Supervisor of one sandbox run, executed as a script by :mod:`agents.custody.sandbox`.

Usage (internal): ``python -I -S _sandbox_init.py '<json config>'``. The config holds
``status_fd`` (pipe to report on), ``workdir``, ``readonly`` (remount everything but the workdir
read-only), ``max_procs``, ``rlimits`` (name → [soft, hard]) and ``argv`` (the child command).

It forks the child, applies the resource limits in the child only (so the parent process never
needs ``preexec_fn``), then supervises until the child exits, writing one JSON status line:
``exit_code``, ``signal``, ``cpu_s`` (child user+system CPU seconds), ``killed`` — or
``error`` when the sandbox itself could not be set up (the child never ran).

When it runs as PID 1 of a fresh PID namespace (``unshare --pid --fork``) it also reaps orphans,
counts the processes in the namespace (its own ``/proc`` from ``--mount-proc``) and kills them
all with ``kill(-1, SIGKILL)`` when there are more than ``max_procs``; after the child exits it
kills every leftover. ``kill(-1)`` is only ever called as PID 1, where the kernel confines it
to the namespace. Outside a namespace it counts the processes of its process group instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import sys
import time
from typing import Any

__all__: list[str] = []

_MS_RDONLY, _MS_REMOUNT, _MS_BIND = 1, 32, 4096
_KEEP_FLAGS = 2 | 4 | 8  # nosuid, nodev, noexec: statvfs f_flag bits equal the MS_* bits


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        raw = [line.split()[4] for line in fh if line.strip()]
    return [p.encode().decode("unicode_escape") for p in raw]  # "\040" → " "


def _readonly_except(workdir: str) -> None:
    """Remount every mount point read-only, except a bind mount of ``workdir`` onto itself."""
    libc = ctypes.CDLL(None, use_errno=True)

    def mount(source: bytes, target: str, flags: int) -> None:
        if libc.mount(source, target.encode(), None, flags, None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount {target}: {os.strerror(err)}")

    mount(workdir.encode(), workdir, _MS_BIND)
    for target in _mount_points():
        if target == workdir:
            continue
        try:
            keep = os.statvfs(target).f_flag & _KEEP_FLAGS
        except OSError:
            continue  # shadowed or vanished mount point: unreachable from the child anyway
        mount(b"none", target, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | keep)


def _count_namespace() -> int:
    return sum(1 for name in os.listdir("/proc") if name.isdigit())


def _count_group(pgid: int) -> int:
    count = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        count += fields[2] == str(pgid)
    return count


def _child(cfg: dict[str, Any]) -> None:
    try:
        os.nice(int(cfg.get("nice", 0)))  # the supervisor must outrun a fork bomb
        for name, (soft, hard) in cfg["rlimits"].items():
            resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (soft, hard))
        os.chdir(cfg["workdir"])
        argv: list[str] = cfg["argv"]
        os.execv(argv[0], argv)  # noqa: S606 - argv is built by agents.custody.sandbox
    except BaseException as exc:  # noqa: BLE001 - report any setup failure, then exit
        os.write(2, f"sandbox: cannot start child: {exc}\n".encode())
    os._exit(127)


def _report(status_fd: int, report: dict[str, Any]) -> None:
    os.write(status_fd, json.dumps(report).encode())


def _supervise(pid: int, max_procs: int, is_init: bool, status_fd: int) -> dict[str, Any]:
    killed: str | None = None
    pgid = os.getpgid(0)
    interval = 0.002 if is_init else 0.02
    while True:
        wpid, status, usage = os.wait4(-1, os.WNOHANG)
        if wpid == pid:
            break
        if wpid:
            continue  # reaped an orphan; look again at once
        count = _count_namespace() if is_init else _count_group(pgid)
        if max_procs and count > max_procs:
            killed = "processes"
            if is_init:
                os.kill(-1, signal.SIGKILL)  # confined to this PID namespace
            else:  # the group kill takes this process too: report first
                _report(status_fd, {"exit_code": None, "signal": 9, "cpu_s": 0.0, "killed": killed})
                os.killpg(pgid, signal.SIGKILL)
        time.sleep(interval)
    if is_init:
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)
    return {
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "killed": killed,
    }


def main() -> None:
    """Entry point: parse the JSON config, fork the child, report its status."""
    cfg: dict[str, Any] = json.loads(sys.argv[1])
    status_fd: int = cfg["status_fd"]
    os.set_inheritable(status_fd, False)
    is_init = os.getpid() == 1
    if cfg["readonly"] and is_init:
        try:
            _readonly_except(cfg["workdir"])
        except OSError as exc:  # the environment, not the code under test: tell the parent
            _report(status_fd, {"error": f"read-only remount failed: {exc}"})
            return
    pid = os.fork()
    if pid == 0:
        os.close(status_fd)
        _child(cfg)
    _report(status_fd, _supervise(pid, int(cfg["max_procs"]), is_init, status_fd))


if __name__ == "__main__":
    main()
