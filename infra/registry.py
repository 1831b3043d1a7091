"""The embedded Apicurio Registry: a Confluent-compatible schema registry on 127.0.0.1.

Started only when the Confluent wire format is asked for without a registry URL
(``LVLUP_SCHEMAS__WIRE_FORMAT=confluent``, no ``LVLUP_SCHEMAS__REGISTRY_URL``; see
:func:`registry_wanted`); the default single-object format needs no registry.

Apicurio publishes the registry on Maven Central only as a Quarkus *module* jar
(``io.apicurio:apicurio-registry-app``). ``mvn package`` on ``infra/conf/apicurio-pom.xml``
(with ``infra/conf/apicurio-settings.xml``, which sends every repository to Central) runs the
Quarkus build once into ``<cache_dir>/apicurio/<version>/build``: a runner jar plus ``lib/``.
The registry then runs as ``java -jar …-runner.jar`` with its storage in an H2 *file* database
under ``<data_dir>/registry/db`` (the app's default is an in-memory H2, which would hand out
new ids after a restart while Kafka still holds records framed with the old ones). Its
Confluent-compatible API is ``http://127.0.0.1:<port>/apis/ccompat/v7``; readiness is
``GET /health/ready``.

Version: 2.4.2.Final (Quarkus 2.16.4.Final), the newest release whose modules are all on the
Maven Central reachable here; the pom's comment lists the two substitutions it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import httpx

from infra.errors import EnvironmentProblem, ServiceFailed
from infra.maven import require_tool, run_maven
from infra.process import (
    ensure_port_free,
    ensure_writable_dir,
    spawn_detached,
    stop_pid,
    wait_until,
)
from infra.service import DetachedService
from streams.settings import Settings

__all__ = [
    "APICURIO_VERSION",
    "EmbeddedRegistry",
    "build_registry",
    "registry_ready",
    "registry_wanted",
]

APICURIO_VERSION = "2.4.2.Final"
"""io.apicurio:apicurio-registry-app version built by ``infra/conf/apicurio-pom.xml``."""

_MARKER = ".complete"
_RUNNER = "lvlup-apicurio-registry-1-runner.jar"


def registry_wanted(settings: Settings) -> bool:
    """True when this checkout must run the registry (Confluent format, no registry URL)."""
    return settings.schemas.embedded_registry


def build_registry(cache_dir: Path, version: str = APICURIO_VERSION) -> Path:
    """Build the runnable registry into ``cache_dir/apicurio/<version>/build``; returns the jar.

    Reuses a complete earlier build (a marker file is written last, so an interrupted build is
    redone). The first build downloads ~300 jars and runs the Quarkus augmentation: about a
    minute with a warm ``~/.m2``, two to three minutes from scratch. Raises
    :class:`EnvironmentProblem` when Maven or Java is missing or Maven fails (last line shown).
    """
    build = cache_dir.resolve() / "apicurio" / version / "build"
    jar = build / _RUNNER
    if (build / _MARKER).exists() and jar.exists():
        return jar
    require_tool("java",
                 "apt-get install openjdk-17-jre-headless (Apicurio Registry needs Java 17)")
    build.mkdir(parents=True, exist_ok=True)
    conf = files("infra").joinpath("conf")
    what = f"io.apicurio:apicurio-registry-app:{version}"
    run_maven(["-s", str(conf.joinpath("apicurio-settings.xml")),
               "-f", str(conf.joinpath("apicurio-pom.xml")),
               f"-Dapicurio.version={version}", f"-Dapicurio.build.dir={build}", "package"],
              f"mvn could not build {what}", hint="needed to build the Apicurio Registry")
    if not jar.exists():
        raise EnvironmentProblem(f"mvn built {what} but left no {jar}")
    (build / _MARKER).write_text(version)
    return jar


def registry_ready(port: int, timeout_s: float = 2.0) -> bool:
    """True when ``GET http://127.0.0.1:<port>/health/ready`` answers 200 within ``timeout_s``."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


@dataclass(frozen=True)
class EmbeddedRegistry(DetachedService):
    """The Apicurio Registry described by ``settings.schemas`` (port, heap, timeouts).

    Its home ``<data_dir>/registry`` holds the H2 database (``db*``), the log and the pid file.
    """

    HOME = "registry"
    PID_FILE = "registry.pid"

    def _argv(self, jar: Path) -> list[str]:
        java = require_tool("java", "apt-get install openjdk-17-jre-headless")
        s = self.settings.schemas
        return [
            java,
            f"-Xms{min(128, s.registry_heap_mb)}m",
            f"-Xmx{s.registry_heap_mb}m",
            "-Djava.awt.headless=true",
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.http.port={s.registry_port}",
            # Stored in a file so ids survive restarts (the app's default is jdbc:h2:mem).
            f"-Dquarkus.datasource.jdbc.url=jdbc:h2:file:{self.home / 'db'}",
            "-Dquarkus.log.console.color=false",
            "-jar",
            str(jar),
        ]

    def start(self) -> int:
        """Build (first time) and start the registry unless it runs; wait until it is ready.

        Returns its pid. Raises :class:`EnvironmentProblem` (Java/Maven missing, build failed,
        port taken) or :class:`ServiceFailed` (not ready in time; its log is named).
        """
        s = self.settings.schemas
        running = self.pid()
        if running is not None:
            return running
        ensure_writable_dir(self.home)
        ensure_port_free(s.registry_port, "the schema registry", "LVLUP_SCHEMAS__REGISTRY_PORT")
        jar = build_registry(self.settings.cache_dir)
        pid = spawn_detached(self._argv(jar), log_path=self.home / "registry.log", cwd=self.home)
        self.pidfile.write(pid)
        if not wait_until(
            lambda: registry_ready(s.registry_port, 1.0),
            timeout_s=s.registry_start_timeout_s,
            interval_s=0.5,
        ):
            raise ServiceFailed(
                f"Apicurio Registry was not ready on 127.0.0.1:{s.registry_port} within "
                f"{s.registry_start_timeout_s:.0f} s; see {self.home / 'registry.log'}"
            )
        return pid

    def stop(self) -> bool:
        """Stop the registry (SIGTERM, SIGKILL after 30 s). Returns True if one was running."""
        pid = self.pid()
        if pid is None:
            return False
        stop_pid(pid, timeout_s=30, name="Apicurio Registry")
        self.pidfile.clear()
        return True
