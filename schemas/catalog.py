"""The topic catalog: one ``topics/<name>.yaml`` per Kafka topic, loaded into frozen dataclasses.

Each topic carries exactly one record type (``value_schema``; every version of it may appear
on the topic) and is keyed by one field of that record (``key``). :class:`Topic` lists the
names statically for code that refers to a topic; a test keeps it equal to the YAML files.
Dead-letter topics are not in the catalog: a consumer group ``g`` writes its failures to
``dlq_topic(g)`` = ``"g.dlq"``.

A YAML file holds: ``name``, ``key``, ``value_schema``, ``partitions``,
``replication_factor``, ``retention_ms`` (``-1`` = kept forever), ``cleanup_policy``
(``delete`` for event logs, ``compact`` for latest-state-per-key topics), ``system_of_record``
(the platform's state is rebuilt from it, so it is never deleted by time), ``owner`` (the
component that writes it), ``authority`` (who may write its record type, :class:`Authority`),
``consumers`` (consumer groups) and ``description``.

**Authority by record type** (docs/SECURITY.md: producers may write observation records
only; results and decisions are written by the workers that own them):

* ``observation`` — what an external producer saw (learning, build and error events): any
  producer may write it (``POST /api/events``, ``lvlup emit``);
* ``command`` — a request the API's command routes write for a ``command``-scope key, with
  the actor filled in by the route (registry commands, cycle and custody requests);
* ``worker`` — a result the owning worker writes (custody results, levels, budget ledger,
  experiment results, findings …);
* ``admin`` — an operator decision, written by the API's admin routes (proposal decisions,
  trusted-source changes) or by the owning worker's policy.

:class:`Writer` says which authorities a writer holds; :meth:`Catalog.check_writable`
refuses the rest with :class:`~schemas.errors.RecordNotWritable`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Literal

import yaml

from schemas import resources
from schemas.errors import CatalogError, RecordNotWritable

__all__ = [
    "Authority",
    "Catalog",
    "Topic",
    "TopicSpec",
    "Writer",
    "dlq_topic",
    "load_catalog",
    "parse_topic",
]

_NAME = re.compile(r"^lvlup(\.[a-z0-9][a-z0-9-]*)+$")
_FIELDS = (
    "name",
    "key",
    "value_schema",
    "partitions",
    "replication_factor",
    "retention_ms",
    "cleanup_policy",
    "system_of_record",
    "owner",
    "authority",
    "consumers",
    "description",
)


class Authority(StrEnum):
    """Who may write a record type (module docstring)."""

    OBSERVATION = "observation"
    COMMAND = "command"
    WORKER = "worker"
    ADMIN = "admin"


class Writer(StrEnum):
    """Who is writing: an external ``producer``, a platform ``worker`` (or a replay of the
    platform's own records), or an ``admin`` (operator tooling, ``lvlup run``'s first start)."""

    PRODUCER = "producer"
    WORKER = "worker"
    ADMIN = "admin"

    def may_write(self, authority: Authority) -> bool:
        """True when this writer holds ``authority``: a producer writes observations only,
        a worker observations, commands and results, an admin everything."""
        return authority in _HELD[self]


_HELD = {
    Writer.PRODUCER: frozenset({Authority.OBSERVATION}),
    Writer.WORKER: frozenset({Authority.OBSERVATION, Authority.COMMAND, Authority.WORKER}),
    Writer.ADMIN: frozenset(Authority),
}


class Topic(StrEnum):
    """Every topic of the catalog, by name (kept equal to ``topics/*.yaml`` by a test)."""

    AGENT_COMMANDS = "lvlup.agents.commands"
    AGENT_METRICS = "lvlup.agents.metrics"
    AGENT_LEVELS = "lvlup.agents.levels"
    LEARNING_EVENTS = "lvlup.learning.events"
    LEARNING_CYCLES_STARTED = "lvlup.learning.cycles.started"
    LEARNING_CYCLES_COMPLETED = "lvlup.learning.cycles.completed"
    LEARNING_CYCLES_REQUESTED = "lvlup.learning.cycles.requested"
    INTERNET_RESULTS = "lvlup.learning.internet-results"
    KNOWLEDGE_TRANSFERS = "lvlup.learning.knowledge-transfers"
    TRUSTED_SOURCES = "lvlup.learning.trusted-sources"
    CUSTODY_REQUESTS = "lvlup.custody.requests"
    CUSTODY_ITEM_RESULTS = "lvlup.custody.item-results"
    CUSTODY_RUN_RESULTS = "lvlup.custody.run-results"
    CUSTODY_REGRESSIONS = "lvlup.custody.regressions"
    PROPOSALS_SUBMITTED = "lvlup.proposals.submitted"
    PROPOSALS_GATED = "lvlup.proposals.gated"
    PROPOSALS_SCANNED = "lvlup.proposals.scanned"
    PROPOSALS_EXPERIMENTED = "lvlup.proposals.experimented"
    PROPOSALS_DECIDED = "lvlup.proposals.decided"
    GUARDIAN_FINDINGS = "lvlup.guardian.findings"
    EXPERIMENT_REQUESTS = "lvlup.experiments.requests"
    EXPERIMENT_RESULTS = "lvlup.experiments.results"
    BUILD_EVENTS = "lvlup.builds.events"
    CONQUEST_RECOMMENDATIONS = "lvlup.conquest.recommendations"
    INFERENCE_REQUESTS = "lvlup.inference.requests"
    INFERENCE_RESPONSES = "lvlup.inference.responses"
    INFERENCE_CHUNKS = "lvlup.inference.chunks"
    TOKEN_USAGE = "lvlup.inference.token-usage"  # noqa: S105 - a topic name, not a secret
    BUDGET_LEDGER = "lvlup.inference.budget-ledger"
    NOTIFICATIONS = "lvlup.notifications"
    ERRORS = "lvlup.errors"
    COMMAND_AUDIT = "lvlup.api.command-audit"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic's definition (see the module docstring for the meaning of each field).

    ``retention_ms`` is in milliseconds, ``-1`` meaning unlimited.
    """

    name: str
    key: str
    value_schema: str
    partitions: int
    replication_factor: int
    retention_ms: int
    cleanup_policy: Literal["delete", "compact"]
    system_of_record: bool
    owner: str
    consumers: tuple[str, ...]
    description: str
    authority: Authority = Authority.WORKER

    def config(self) -> dict[str, str]:
        """Topic-level broker config for creating the topic (``cleanup.policy``,
        ``retention.ms``), as the string map Kafka admin clients take."""
        return {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}


def dlq_topic(group: str) -> str:
    """The dead-letter topic of consumer group ``group``: ``"<group>.dlq"``."""
    return f"{group}.dlq"


def _require(doc: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CatalogError(
            f"{where}: field {name!r} is missing or not {getattr(kind, '__name__', kind)}"
        )
    return value


def parse_topic(doc: Any, where: str = "<topic>") -> TopicSpec:
    """Check one parsed YAML document and build its :class:`TopicSpec`.

    ``where`` names the source in errors. Raises :class:`CatalogError` for a missing or unknown
    field, a wrong type, a bad name (``lvlup.<part>[.<part>…]``, lower case), a partition
    count < 1, a retention < -1, a cleanup policy other than ``delete``/``compact`` or an
    ``authority`` that is not one of :class:`Authority` (it is required).
    """
    if not isinstance(doc, Mapping):
        raise CatalogError(f"{where}: a topic file must hold a mapping")
    unknown = sorted(set(doc) - set(_FIELDS))
    if unknown:
        raise CatalogError(f"{where}: unknown field {unknown[0]!r}")
    name = _require(doc, "name", str, where)
    if not _NAME.match(name) or name.endswith(".dlq"):
        raise CatalogError(f"{where}: bad topic name {name!r}")
    partitions = _require(doc, "partitions", int, where)
    retention = _require(doc, "retention_ms", int, where)
    policy = _require(doc, "cleanup_policy", str, where)
    if partitions < 1 or retention < -1 or policy not in {"delete", "compact"}:
        raise CatalogError(f"{where}: partitions >= 1, retention_ms >= -1, delete|compact")
    authority = _require(doc, "authority", str, where)
    if authority not in Authority.__members__.values():
        raise CatalogError(f"{where}: authority must be one of "
                           f"{', '.join(a.value for a in Authority)}")
    consumers = _require(doc, "consumers", list, where)
    if not all(isinstance(c, str) for c in consumers):
        raise CatalogError(f"{where}: 'consumers' must be a list of consumer group names")
    return TopicSpec(
        name=name,
        key=_require(doc, "key", str, where),
        value_schema=_require(doc, "value_schema", str, where),
        partitions=partitions,
        replication_factor=_require(doc, "replication_factor", int, where),
        retention_ms=retention,
        cleanup_policy=policy,
        system_of_record=_require(doc, "system_of_record", bool, where),
        owner=_require(doc, "owner", str, where),
        consumers=tuple(consumers),
        description=_require(doc, "description", str, where).strip(),
        authority=Authority(authority),
    )


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every topic, with lookups by name and by record type."""

    topics: tuple[TopicSpec, ...]

    def __post_init__(self) -> None:
        """Reject two topics with one name or one record type on two topics."""
        for attr in ("name", "value_schema"):
            values = [getattr(t, attr) for t in self.topics]
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise CatalogError(f"{attr} {dupes[0]!r} appears in more than one topic")

    def prefixed(self, prefix: str) -> Catalog:
        """This catalog with ``prefix`` before every topic name — scratch topics of a test, a
        benchmark or a side-by-side API beside the live ones (``""``: this catalog). Routes,
        lookups and partition counts follow the prefixed names."""
        if not prefix:
            return self
        return Catalog(tuple(replace(t, name=prefix + t.name) for t in self.topics))

    @property
    def names(self) -> tuple[str, ...]:
        """Topic names, sorted."""
        return tuple(sorted(t.name for t in self.topics))

    def topic(self, name: str) -> TopicSpec:
        """The topic named ``name`` (a ``str`` or :class:`Topic`); :class:`CatalogError` if none."""
        for spec in self.topics:
            if spec.name == name:
                return spec
        raise CatalogError(f"unknown topic {name!r}")

    def for_record(self, record_type: str) -> TopicSpec:
        """The topic carrying ``record_type``; :class:`CatalogError` if none does."""
        for spec in self.topics:
            if spec.value_schema == record_type:
                return spec
        raise CatalogError(f"no topic carries record type {record_type!r}")

    def route(self, record_type: str) -> tuple[str, str]:
        """``(topic, key field)`` for ``record_type`` (the producer SDK's router)."""
        spec = self.for_record(record_type)
        return spec.name, spec.key

    def check_writable(self, record_type: str, writer: Writer) -> None:
        """Raise :class:`RecordNotWritable` unless ``writer`` may write ``record_type``;
        :class:`CatalogError` for a record type no topic carries."""
        spec = self.for_record(record_type)
        if not writer.may_write(spec.authority):
            raise RecordNotWritable(record_type, spec.authority.value, spec.owner,
                                    writer.value)


@functools.lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The catalog of the packaged ``topics/*.yaml`` files, loaded once (cached).

    Raises :class:`CatalogError` for invalid YAML, an invalid definition, or a file whose name
    is not ``<topic name>.yaml``.
    """
    specs = []
    for filename in resources.list_files("topics", ".yaml"):
        where = f"topics/{filename}"
        try:
            doc = yaml.safe_load(resources.read_text("topics", filename))
        except yaml.YAMLError as exc:
            raise CatalogError(f"{where}: invalid YAML: {exc}") from exc
        spec = parse_topic(doc, where)
        if filename != f"{spec.name}.yaml":
            raise CatalogError(f"{where}: file must be named {spec.name}.yaml")
        specs.append(spec)
    return Catalog(tuple(specs))
