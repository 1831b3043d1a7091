"""``lvlup replay rebuild``: prove the views are exactly what the log says, and certify it.

The retained log is replayed with the sinks' own code into shadow stores (a Postgres
database, a ClickHouse database; :mod:`sinks.replay.engine`), and every view is compared
with its live counterpart by an order-independent checksum. The certificate (JSON) records
the per-partition offset ranges compared, the code version (git SHA), the Avro schema
fingerprints, the table schemas' hashes, row counts, checksums, the keys that differ and
the verdict. Views that cannot be proven — a state view whose source topic lost records to
retention — are listed as unprovable and left out of the verdict.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from schemas.registry import load_registry
from sinks.clickhouse.client import ClickHouse
from sinks.replay.engine import Outcome, ReplayRequest, describe, run_replay
from streams.settings import Settings
from streams.wiring import Wiring

__all__ = ["CHECKSUMS", "Certificate", "certify", "git_sha", "rebuild"]

CHECKSUMS = {
    "postgres": "md5 over the sorted md5(row::text) of the rows in scope",
    "clickhouse.events": "sum modulo 2^64 of cityHash64 of every column but ingested_at",
    "clickhouse views": "md5 over the sorted md5 of each row (floats to 9 significant digits)",
}


@dataclass
class Certificate:
    """The outcome of a rebuild; ``equal`` is the verdict. ``mismatches`` names, per view,
    the keys that differ (at most ``ReplayRequest.max_keys``)."""

    equal: bool
    created_at: str
    code_version: str
    schema_fingerprints: dict[str, str]
    table_schema_hash: str
    window: dict[str, str | None]
    stores: dict[str, Any]
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    mismatches: dict[str, list[str]] = field(default_factory=dict)
    unprovable: dict[str, str] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=lambda: dict(CHECKSUMS))

    @property
    def verdict(self) -> str:
        """``equal`` or ``different``."""
        return "equal" if self.equal else "different"

    def to_json(self) -> dict[str, Any]:
        """The certificate as written to disk."""
        return {"verdict": self.verdict, **asdict(self)}


def git_sha() -> str:
    """The checkout's HEAD commit, ``-dirty`` appended when tracked files were changed
    since; ``unknown`` outside a git checkout."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=40"],
                             capture_output=True, text=True, check=False,
                             cwd=Path(__file__).resolve().parent)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def certify(outcome: Outcome, request: ReplayRequest) -> Certificate:
    """The certificate of a replay outcome."""
    stores = describe(outcome)
    schema = "".join(f"{s}:{sorted(v['schema'].items())}" for s, v in sorted(stores.items()))
    cert = Certificate(
        equal=outcome.equal, created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        code_version=git_sha(),
        schema_fingerprints={f"{sv.record_type}.v{sv.version}": sv.fingerprint.hex()
                             for sv in load_registry()},
        table_schema_hash=hashlib.sha256(schema.encode()).hexdigest(),
        window={"from": _iso(request.since_ms), "to": _iso(request.until_ms)},
        stores=stores,
        records={"read": outcome.read.records, "undecodable": outcome.read.undecodable},
        seconds={k: round(v, 3) for k, v in outcome.seconds.items()})
    for name, cmp in outcome.views.items():
        cert.views[name] = cmp.summary()
        if cmp.unprovable:
            cert.unprovable[name] = cmp.unprovable
        elif not cmp.equal:
            cert.mismatches[name] = cmp.differing
    return cert


def rebuild(settings: Settings, request: ReplayRequest | None = None, *,
            engine: Engine | None = None, clickhouse: ClickHouse | None = None,
            wiring: Wiring | None = None) -> Certificate:
    """Rebuild the views in shadow stores from the log and certify the comparison.

    ``clickhouse`` None leaves ClickHouse out; ``wiring``: the caller's process wiring (its
    codec decodes the log as the live sinks do, its catalog names the topics; default:
    :func:`streams.wiring.wiring_for` of ``settings``). Raises what :func:`run_replay` raises.
    """
    request = request or ReplayRequest()
    outcome = run_replay(settings, request, engine=engine, clickhouse=clickhouse, wiring=wiring)
    return certify(outcome, request)
