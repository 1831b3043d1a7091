"""``lvlup emit``: JSON lines → validate → Avro → Kafka, with a per-line report.

Each line is one JSON object with a ``type`` field (the record type). A line is *rejected*
— and nothing is sent for it — when it is not JSON, fails validation (missing field, wrong
type, unknown type) or is over the size limit; its number and reason are reported. A valid
line is *accepted* once the broker acked it (``acks=all``); a valid line the broker did not
ack is *failed*. Blank lines are skipped.

Authority (:mod:`schemas.catalog`): by default the lines are written as an external
*producer*, which may write observation records only (learning, build and error events); a
line of any other record type is rejected with the reason. Platform tooling passes
``writer=Writer.WORKER`` (results and commands too) or ``Writer.ADMIN`` (also decisions —
``lvlup run``'s first start, whose sample file holds the platform's own records);
``lvlup emit --as worker|admin`` does the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from schemas.catalog import Catalog, Writer
from schemas.errors import SchemaError
from schemas.validation import validate_json_record
from streams.producer import Delivery, EventProducer

__all__ = ["EmitReport", "Rejection", "emit_lines"]


@dataclass(frozen=True)
class Rejection:
    """A line that was not sent: its 1-based ``line`` number and one-line ``reason``."""

    line: int
    reason: str


@dataclass
class EmitReport:
    """What happened to every line of an input."""

    accepted: int = 0
    failed: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    by_type: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every non-blank line was accepted."""
        return not self.rejected and self.failed == 0


def emit_lines(
    lines: Iterable[str],
    producer: EventProducer,
    catalog: Catalog,
    *,
    progress: Callable[[int], None] | None = None,
    flush_timeout_s: float = 120.0,
    writer: Writer = Writer.PRODUCER,
) -> EmitReport:
    """Validate and send each line; wait for every ack; return the report.

    ``progress(n_bytes)`` is called per line (for a progress bar). ``writer`` is who writes
    (module docstring): a line whose record type needs an authority it lacks in ``catalog``
    (the process wiring's) is rejected (:class:`schemas.errors.RecordNotWritable`'s message
    as the reason).
    """
    report = EmitReport()
    failures: list[str] = []

    def on_delivery(delivery: Delivery | None, err: object) -> None:
        if err is not None or delivery is None:
            report.failed += 1
            failures.append(str(err))
        else:
            report.accepted += 1

    for number, line in enumerate(lines, start=1):
        if progress is not None:
            progress(len(line.encode()) + 1)
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            report.rejected.append(Rejection(number, f"invalid JSON: {exc.msg} at column "
                                                     f"{exc.colno}"))
            continue
        try:
            record_type, record = validate_json_record(obj)
            catalog.check_writable(record_type, writer)
            producer.emit(record_type, record, on_delivery)
        except SchemaError as exc:
            report.rejected.append(Rejection(number, str(exc)))
            continue
        report.by_type[record_type] = report.by_type.get(record_type, 0) + 1
    left = producer.flush(flush_timeout_s)
    report.failed += left
    return report
