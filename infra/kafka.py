"""The embedded Apache Kafka broker: a single-node KRaft broker+controller on 127.0.0.1.

Jars come from Maven Central: ``mvn dependency:copy-dependencies`` on ``infra/conf/kafka-pom.xml``
resolves ``org.apache.kafka:kafka_2.13:<version>`` and its runtime dependencies into
``<cache_dir>/kafka/<version>/libs`` once; later starts reuse them. Storage is formatted with
``kafka.tools.StorageTool format`` (KIP-500 / KIP-631 KRaft mode) and the broker runs as
``java -cp libs/* kafka.Kafka server.properties``. Data and logs live in ``<data_dir>/kafka``.

Version choice: 3.9.x, the last line with ZooKeeper-era protocol versions still present
(Kafka 4.0 removed them, KIP-896); faust-streaming pins old request versions in places.
"""

from __future__ import annotations

import base64
import signal
import subprocess
import uuid
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from confluent_kafka.admin import AdminClient

from infra.errors import ServiceFailed
from infra.maven import require_tool, run_maven
from infra.process import (
    ensure_port_free,
    ensure_writable_dir,
    spawn_detached,
    stop_pid,
    wait_until,
)
from infra.service import DetachedService

__all__ = ["KafkaBroker", "broker_ready", "new_cluster_id", "resolve_kafka_jars"]

_MARKER = ".complete"


def resolve_kafka_jars(cache_dir: Path, version: str) -> Path:
    """Resolve the broker's jars from Maven Central into ``cache_dir/kafka/<version>/libs``.

    Returns the libs directory. Reuses a complete earlier download (a marker file is written
    last, so an interrupted download is redone). Raises :class:`EnvironmentProblem` when Maven
    is missing or Maven Central cannot be reached.
    """
    libs = cache_dir / "kafka" / version / "libs"
    if (libs / _MARKER).exists():
        return libs
    libs.mkdir(parents=True, exist_ok=True)
    pom = Path(str(files("infra").joinpath("conf", "kafka-pom.xml")))
    run_maven(["-f", str(pom), f"-Dkafka.version={version}", f"-DoutputDirectory={libs}",
               "-DincludeScope=runtime", "dependency:copy-dependencies"],
              f"mvn could not resolve org.apache.kafka:kafka_2.13:{version} from Maven Central",
              hint="needed to fetch the Kafka broker jars")
    (libs / _MARKER).write_text(version)
    return libs


def broker_ready(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """True when a metadata request to ``bootstrap`` succeeds within ``timeout_s`` seconds."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        meta = admin.list_topics(timeout=timeout_s)
    except Exception:  # noqa: BLE001 - any client error means "not ready yet"; we poll again
        return False
    return bool(meta.brokers)


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 chars).

    Like Kafka's ``Uuid.randomUuid()`` (clients/src/main/java/org/apache/kafka/common/Uuid.java)
    an id starting with ``-`` is drawn again: command-line parsers take it for an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True)
class KafkaBroker(DetachedService):
    """The embedded broker described by ``settings`` (ports, version, data dir, heap).

    Its home ``<data_dir>/kafka`` holds the config, the data (``data/``), logs and the pid file.
    """

    HOME = "kafka"
    PID_FILE = "broker.pid"

    def _write_config(self) -> Path:
        k = self.settings.kafka
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{k.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{k.port},CONTROLLER://127.0.0.1:{k.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{k.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.home / "data"),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "12",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Every topic is created explicitly from the catalog with its partition count
            # (Faust fails with PartitionsMismatch against auto-created topics).
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "log.retention.hours": "-1",
            "log.segment.bytes": str(64 * 1024 * 1024),
        }
        path = self.home / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in props.items()))
        log4j = self.home / "log4j.properties"
        log4j.write_text(
            "log4j.rootLogger=INFO, file\n"
            "log4j.appender.file=org.apache.log4j.RollingFileAppender\n"
            f"log4j.appender.file.File={self.home / 'server.log'}\n"
            "log4j.appender.file.MaxFileSize=20MB\n"
            "log4j.appender.file.MaxBackupIndex=2\n"
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka.request.logger=WARN\n"
            "log4j.logger.state.change.logger=WARN\n"
        )
        return path

    def _java(self, libs: Path) -> list[str]:
        java = require_tool("java",
                            "apt-get install openjdk-17-jre-headless (Kafka needs Java 11+)")
        return [
            java,
            f"-Xms{min(256, self.settings.kafka.heap_mb)}m",
            f"-Xmx{self.settings.kafka.heap_mb}m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}",
            f"-Dkafka.logs.dir={self.home}",
            "-cp",
            f"{libs}/*",
        ]

    def start(self) -> int:
        """Start the broker unless it runs; wait until metadata answers. Returns its pid.

        Raises :class:`EnvironmentProblem` (Java/Maven missing, Maven Central unreachable, port
        taken, data dir not writable) or :class:`ServiceFailed` (no metadata in time; the
        broker's log is named).
        """
        k = self.settings.kafka
        running = self.pid()
        if running is not None:
            return running
        ensure_writable_dir(self.home)
        ensure_port_free(k.port, "the Kafka broker", "LVLUP_KAFKA__PORT")
        ensure_port_free(k.controller_port, "the KRaft controller", "LVLUP_KAFKA__CONTROLLER_PORT")
        libs = resolve_kafka_jars(self.settings.cache_dir, k.version)
        config = self._write_config()
        java = self._java(libs)
        if not (self.home / "data" / "meta.properties").exists():
            cluster_id = new_cluster_id()
            fmt = subprocess.run(
                [*java, "kafka.tools.StorageTool", "format",
                 f"--cluster-id={cluster_id}", f"--config={config}"],
                capture_output=True,
                text=True,
                check=False,
            )
            if fmt.returncode != 0:
                raise ServiceFailed(f"kafka storage format failed: {fmt.stderr.strip()[:300]}")
        pid = spawn_detached(
            [*java, "kafka.Kafka", str(config)],
            log_path=self.home / "stdout.log",
            cwd=self.home,
        )
        self.pidfile.write(pid)
        if not wait_until(lambda: broker_ready(k.bootstrap(), 1.0), timeout_s=k.start_timeout_s):
            raise ServiceFailed(
                f"Kafka did not answer metadata on {k.bootstrap()} within "
                f"{k.start_timeout_s:.0f} s; see {self.home / 'server.log'}"
            )
        return pid

    def stop(self, *, kill: bool = False) -> bool:
        """Stop the broker (SIGTERM, or SIGKILL with ``kill``). Returns True if one was running."""
        pid = self.pid()
        if pid is None:
            return False
        stop_pid(
            pid, timeout_s=60, name="Kafka broker", sig=signal.SIGKILL if kill else signal.SIGTERM
        )
        self.pidfile.clear()
        return True
