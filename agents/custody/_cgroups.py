"""Per-run control groups: whole-tree memory and process limits for one sandbox run.

RLIMIT_AS and RLIMIT_NPROC cannot bound a process tree (the first is per process, the second
per user and ignored for root), so every run gets its own cgroup, created before the sandbox
starts and removed after it ends:

* **cgroup v1** (``/sys/fs/cgroup/memory`` and ``/sys/fs/cgroup/pids`` mounted separately):
  ``memory.limit_in_bytes`` (and ``memory.memsw.limit_in_bytes`` where swap is accounted, so
  swap does not extend the limit), ``pids.max``; OOM kills are read from
  ``memory.oom_control`` (``oom_kill N``), the process cap from ``pids.events`` (``max N``).
  Source: the kernel's ``Documentation/admin-guide/cgroup-v1/memory.rst`` and ``pids.rst``.
  The run's group nests under the caller's own group of each hierarchy (``/proc/self/cgroup``),
  so a limit placed on the worker still holds for its sandboxes.
* **cgroup v2** (``/sys/fs/cgroup`` is ``cgroup2``): ``memory.max``, ``memory.swap.max`` 0,
  ``pids.max``; ``memory.events`` (``oom_kill``) and ``pids.events`` (``max``); the
  controllers are enabled in ``cgroup.subtree_control`` of ``lvlup-sandbox`` under the root
  (the root is exempt from the no-internal-processes rule). ``cgroup.kill`` empties a group.
  Source: ``Documentation/admin-guide/cgroup-v2.rst``.

Anything that cannot be created or written raises :class:`SandboxUnavailable` (fail closed).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from agents.custody.errors import SandboxUnavailable

__all__ = ["CGROUP_ROOT", "RunCgroup", "TreeUsage"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
_GROUP = "lvlup-sandbox"
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TreeUsage:
    """What the cgroup saw: ``oom_kills`` (processes the kernel's OOM killer ended),
    ``pids_refused`` (forks refused at ``pids.max``), ``memory_failcnt`` (times the memory
    limit was hit, v1 only; 0 on v2)."""

    oom_kills: int
    pids_refused: int
    memory_failcnt: int


def _own_path(root: Path, controller: str) -> str:
    """The caller's group in the v1 hierarchy of ``controller`` ("" when at its root)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        _, names, path = line.split(":", 2)
        if controller in names.split(",") and (root / controller / path.lstrip("/")).is_dir():
            return path.strip("/")
    return ""


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise SandboxUnavailable(f"cannot write {value!r} to {path}: {exc.strerror}",
                                 "no_cgroups") from exc


def _counter(path: Path, key: str) -> int:
    """The value of ``key`` in a flat-keyed cgroup file, 0 when absent."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        return 0
    return 0


@dataclass
class RunCgroup:
    """One run's group(s). Create with :meth:`create`, :meth:`attach` the sandbox's first
    process before it executes untrusted code, read :meth:`usage`, then :meth:`remove`.

    ``memory_bytes`` and ``max_pids`` are the whole-tree limits (bytes, processes). ``root``
    is where cgroupfs is mounted (tests pass a fake directory)."""

    memory_bytes: int
    max_pids: int
    root: Path = CGROUP_ROOT
    name: str = field(default_factory=lambda: f"run-{uuid.uuid4().hex[:12]}")
    dirs: list[Path] = field(default_factory=list)
    version: int = 0

    @staticmethod
    def detect(root: Path = CGROUP_ROOT) -> int:
        """1 or 2: the layout of ``root``. Raises :class:`SandboxUnavailable` when neither a
        cgroup2 root with ``memory`` and ``pids`` nor v1 ``memory`` and ``pids`` exist."""
        controllers = root / "cgroup.controllers"
        if controllers.exists():
            have = set(controllers.read_text().split())
            if {"memory", "pids"} <= have:
                return 2
            raise SandboxUnavailable(f"cgroup2 at {root} lacks memory/pids ({sorted(have)})",
                                     "no_cgroups")
        if (root / "memory" / "cgroup.procs").exists() and (root / "pids" / "cgroup.procs"
                                                            ).exists():
            return 1
        raise SandboxUnavailable(f"no memory and pids cgroups under {root}", "no_cgroups")

    def create(self) -> RunCgroup:
        """Make the group(s) and write the limits. Raises :class:`SandboxUnavailable`."""
        self.version = self.detect(self.root)
        try:
            if self.version == 2:
                base = self.root / _GROUP
                base.mkdir(exist_ok=True)
                _enable(self.root, base)
                run = base / self.name
                run.mkdir()
                self.dirs = [run]
                _write(run / "pids.max", str(self.max_pids))
                _write(run / "memory.max", str(self.memory_bytes))
                if (run / "memory.swap.max").exists():
                    _write(run / "memory.swap.max", "0")
                return self
            for controller in ("memory", "pids"):
                parent = self.root / controller / _own_path(self.root, controller) / _GROUP
                parent.mkdir(exist_ok=True)
                (parent / self.name).mkdir()
                self.dirs.append(parent / self.name)
            mem, pids = self.dirs
            _write(mem / "memory.limit_in_bytes", str(self.memory_bytes))
            if (mem / "memory.memsw.limit_in_bytes").exists():
                _write(mem / "memory.memsw.limit_in_bytes", str(self.memory_bytes))
            _write(pids / "pids.max", str(self.max_pids))
        except OSError as exc:
            self.remove()
            raise SandboxUnavailable(f"cannot create a cgroup under {self.root}: {exc}",
                                     "no_cgroups") from exc
        except SandboxUnavailable:
            self.remove()
            raise
        return self

    def attach(self, pid: int) -> None:
        """Move ``pid`` (and its future children) into the group(s)."""
        for d in self.dirs:
            _write(d / "cgroup.procs", str(pid))

    def usage(self) -> TreeUsage:
        """Counters of the run so far (see :class:`TreeUsage`)."""
        if self.version == 2:
            run = self.dirs[0]
            return TreeUsage(_counter(run / "memory.events", "oom_kill"),
                             _counter(run / "pids.events", "max"), 0)
        mem, pids = self.dirs
        try:
            failcnt = int((mem / "memory.failcnt").read_text())
        except (OSError, ValueError):
            failcnt = 0
        return TreeUsage(_counter(mem / "memory.oom_control", "oom_kill"),
                         _counter(pids / "pids.events", "max"), failcnt)

    def pids(self) -> list[int]:
        """Processes still in the group(s)."""
        found: set[int] = set()
        for d in self.dirs:
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (d / "cgroup.procs").read_text().split())
        return sorted(found)

    def kill_all(self, timeout_s: float = 5.0) -> bool:
        """SIGKILL every process in the group(s) until none is left (a fork racing the kill
        is caught by the next round); True when empty within ``timeout_s`` seconds."""
        deadline = time.monotonic() + timeout_s
        kill_file = self.dirs[0] / "cgroup.kill" if self.version == 2 and self.dirs else None
        while True:
            left = self.pids()
            if not left:
                return True
            if time.monotonic() > deadline:
                return False
            if kill_file is not None and kill_file.exists():
                with contextlib.suppress(OSError):
                    kill_file.write_text("1")
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)

    def remove(self) -> None:
        """Kill what is left and delete the group(s); a group that stays busy is logged."""
        if self.dirs and not self.kill_all():
            log.warning("sandbox.cgroup_not_empty", cgroup=self.name, pids=self.pids())
        for d in self.dirs:
            for _ in range(100):  # the kernel frees a group shortly after its last exit
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        log.warning("sandbox.cgroup_rmdir_failed", path=str(d), error=str(exc))
                        break
                    time.sleep(0.01)
            else:
                log.warning("sandbox.cgroup_left_behind", path=str(d))
        self.dirs = []


def _enable(root: Path, base: Path) -> None:
    """Enable the memory and pids controllers from the v2 root down to ``base``'s children."""
    for d in (root, base):
        wanted = {"memory", "pids"} - set((d / "cgroup.subtree_control").read_text().split())
        if wanted:
            _write(d / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(wanted)))
