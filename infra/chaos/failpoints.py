"""Failpoints for fault injection (``lvlup chaos``): a write that fails after partial work.

A failpoint is armed by creating a file named ``<writer>.partial_write`` (e.g.
``clickhouse.partial_write``) in the directory ``sinks.failpoints_dir``; it fires once (the
file is removed). :class:`FailpointWriter` wraps a :class:`~sinks.runner.SinkWriter`: when
armed, it writes the first half of the batch — really, through the wrapped writer — and then
raises :class:`~sinks.errors.StoreUnavailable`, as a store that died mid-insert would. The
runner retries the whole batch; idempotent writers must store every record once (ClickHouse:
the half carries another deduplication token, so its rows collapse in
``ReplacingMergeTree`` ``FINAL``; Postgres: upserts keyed by the view's key).

Off unless the setting is given: production runs have no failpoint directory. The idea is
FoundationDB's / TiKV's fail points, reduced to a file per point. :func:`arm` and
:func:`fire` are the generic part; :class:`FileFailpoints` is the
:class:`streams.failpoints.Failpoints` a root hands to library code (the API's
``api.before_publish`` / ``api.after_publish``, :mod:`api.commands`), and
:func:`failpoints_for` / :func:`writer_wrapper` are what the roots call with their settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from sinks.errors import StoreUnavailable
from sinks.records import Batch, TopicPartitionKey
from sinks.runner import SinkWriter
from streams.failpoints import NO_FAILPOINTS, Failpoints
from streams.settings import Settings

__all__ = [
    "PARTIAL_WRITE",
    "FailpointWriter",
    "FileFailpoints",
    "arm",
    "failpoints_for",
    "fire",
    "writer_wrapper",
]

PARTIAL_WRITE = "partial_write"
log = structlog.get_logger(__name__)


def arm(directory: Path, writer: str, point: str = PARTIAL_WRITE) -> Path:
    """Arm ``point`` of ``writer`` (``postgres`` | ``clickhouse`` | ``api`` …) once; returns
    the file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{writer}.{point}"
    path.touch()
    return path


def fire(directory: Path | None, writer: str, point: str) -> bool:
    """True once per :func:`arm` of ``point`` of ``writer`` in ``directory`` (the file is
    removed; of several processes checking the same point, one wins); False when not armed
    or ``directory`` is None (production)."""
    if directory is None:
        return False
    try:
        (directory / f"{writer}.{point}").unlink()
    except FileNotFoundError:
        return False
    return True


class FailpointWriter:
    """``inner`` with the :data:`PARTIAL_WRITE` failpoint (module doc) read from ``directory``."""

    def __init__(self, inner: SinkWriter, directory: Path) -> None:
        self.inner, self.directory = inner, directory
        self.name = inner.name
        self.fired = 0

    def stored_offsets(
        self, group: str, partitions: Sequence[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, int]:
        """The wrapped writer's."""
        return self.inner.stored_offsets(group, partitions)

    def write(self, group: str, batch: Batch) -> None:
        """Write ``batch``; when armed, write its first half and raise StoreUnavailable."""
        if len(batch.records) < 2 or not fire(self.directory, self.name, PARTIAL_WRITE):
            self.inner.write(group, batch)
            return
        half = Batch()
        for rec in batch.records[: len(batch.records) // 2]:
            half.add(rec)
        self.inner.write(group, half)
        self.fired += 1
        log.warning("sink.failpoint", writer=self.name, point=PARTIAL_WRITE,
                    written=len(half.records), of=len(batch.records))
        raise StoreUnavailable(f"failpoint {self.name}.{PARTIAL_WRITE}: "
                               f"{len(half.records)} of {len(batch.records)} records written")


class FileFailpoints:
    """:class:`streams.failpoints.Failpoints` armed by files in ``directory`` (:func:`arm`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def fire(self, owner: str, point: str) -> bool:
        """:func:`fire` on this directory."""
        return fire(self.directory, owner, point)


def failpoints_for(settings: Settings) -> Failpoints:
    """File failpoints in ``sinks.failpoints_dir`` when set (``lvlup chaos``), otherwise
    :data:`streams.failpoints.NO_FAILPOINTS`."""
    directory = settings.sinks.failpoints_dir
    return NO_FAILPOINTS if directory is None else FileFailpoints(directory)


def writer_wrapper(settings: Settings) -> Callable[[SinkWriter], SinkWriter] | None:
    """Wraps a sink writer in :class:`FailpointWriter` when ``sinks.failpoints_dir`` is set
    (for :func:`sinks.app.build_sink`'s ``wrap_writer``); None in production."""
    directory = settings.sinks.failpoints_dir
    if directory is None:
        return None
    return lambda inner: FailpointWriter(inner, directory)
