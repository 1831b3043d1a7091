"""``lvlup replay rebuild``: prove the Postgres views are exactly what the log says.

1. A shadow database ``<db>_shadow_<id>`` is created and migrated.
2. The retained log (every catalog topic, from the first offset) is consumed into it by the
   *same* sink code (:func:`sinks.app.build_sink`), in a group of its own, until the shadow's
   stored offsets reach the live sink's stored offsets (the positions the live views reflect).
3. Per view, an order-independent checksum — md5 over the sorted md5s of every row's text —
   on live and shadow, with row counts; rows whose hash differs are named by primary key.
4. A certificate (JSON) records the offsets per partition, the code version (git SHA), the
   schema fingerprints, a hash of the table definitions, counts, checksums and the verdict.

Run it with the producers quiet (or the platform stopped): a live view moving during the
rebuild is reported as positions that differ, not as a mismatch.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from schemas.catalog import load_catalog
from schemas.codec import load_codec
from schemas.registry import load_registry
from sinks.app import POSTGRES_GROUP, build_sink
from sinks.postgres.migrate import upgrade
from sinks.postgres.models import VIEW_TABLES
from streams.errors import LvlupError
from streams.settings import Settings

__all__ = ["Certificate", "rebuild_postgres", "view_checksums"]


@dataclass
class Certificate:
    """The outcome of a rebuild; ``equal`` is the verdict."""

    equal: bool
    created_at: str
    code_version: str
    table_schema_hash: str
    schema_fingerprints: dict[str, str]
    offsets: dict[str, dict[str, int]]
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    mismatches: dict[str, list[str]] = field(default_factory=dict)


def _git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=False, cwd=Path(__file__).resolve().parent)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def view_checksums(engine: Engine) -> dict[str, dict[str, Any]]:
    """Per view: row count, order-independent checksum, and ``{primary key: row md5}``."""
    out: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for table in VIEW_TABLES:
            pk = [c.name for c in table.primary_key.columns]
            key_sql = " || '/' || ".join(f'"{c}"::text' for c in pk)
            rows = conn.execute(text(
                f'SELECT {key_sql} AS k, md5(t::text) AS h FROM "{table.name}" t'  # noqa: S608
            )).all()
            hashes = {str(r[0]): str(r[1]) for r in rows}
            digest = hashlib.md5("".join(sorted(hashes.values())).encode(),
                                 usedforsecurity=False).hexdigest()
            out[table.name] = {"rows": len(hashes), "checksum": digest, "keys": hashes}
    return out


def _stored(engine: Engine, group: str) -> dict[tuple[str, int], int]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT topic, partition, next_offset FROM sink_offsets "
                                 "WHERE consumer_group = :g"), {"g": group}).all()
    return {(str(r[0]), int(r[1])): int(r[2]) for r in rows}


def rebuild_postgres(settings: Settings, *, timeout_s: float = 600.0,
                     keep_shadow: bool = False, live_group: str = POSTGRES_GROUP) -> Certificate:
    """Rebuild every Postgres view from the log into a shadow database and compare.

    Raises :class:`LvlupError` when the live sink has stored no offsets (nothing to prove)
    or the shadow does not catch up within ``timeout_s`` seconds.
    """
    live_url = settings.postgres.sqlalchemy_url()
    live = create_engine(live_url)
    target = _stored(live, live_group)
    if not target:
        raise LvlupError("the live Postgres sink has stored no offsets: nothing to rebuild")
    base = make_url(live_url)
    shadow_name = f"{base.database}_shadow_{uuid.uuid4().hex[:8]}"
    admin = base.set(drivername="postgresql", database="postgres").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{shadow_name}"')
    shadow_url = base.set(database=shadow_name).render_as_string(hide_password=False)
    shadow = create_engine(shadow_url)
    try:
        upgrade(shadow_url)
        group = f"lvlup.replay.{uuid.uuid4().hex[:8]}"
        runner = build_sink(settings, load_codec(), list(load_catalog().names), kind="postgres",
                            engine=shadow, group=group)
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                have = _stored(shadow, group)
                if all(have.get(tp, 0) >= o for tp, o in target.items()):
                    break
                time.sleep(0.5)
            else:
                raise LvlupError(f"the shadow did not reach the live offsets in {timeout_s} s")
        finally:
            runner.stop()
            thread.join(60)
        shadow_positions = _stored(shadow, group)
        live_positions = _stored(live, live_group)
        return _certify(live_positions, shadow_positions, view_checksums(live),
                        view_checksums(shadow))
    finally:
        shadow.dispose()
        live.dispose()
        if not keep_shadow:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{shadow_name}" WITH (FORCE)')


def _certify(live_pos: dict[tuple[str, int], int], shadow_pos: dict[tuple[str, int], int],
             live: dict[str, dict[str, Any]], shadow: dict[str, dict[str, Any]]) -> Certificate:
    offsets: dict[str, dict[str, int]] = {}
    for (topic, partition), nxt in sorted(live_pos.items()):
        offsets.setdefault(topic, {})[str(partition)] = nxt
    table_hash = hashlib.sha256("".join(
        f"{t.name}:{[(c.name, str(c.type)) for c in t.columns]}" for t in VIEW_TABLES).encode())
    cert = Certificate(
        equal=True, created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        code_version=_git_sha(), table_schema_hash=table_hash.hexdigest(),
        schema_fingerprints={f"{sv.record_type}.v{sv.version}": sv.fingerprint.hex()
                             for sv in load_registry()},
        offsets=offsets)
    if live_pos != shadow_pos:
        cert.equal = False
        cert.mismatches["_positions"] = [f"{t}:{p} live {live_pos.get((t, p))} shadow "
                                         f"{shadow_pos.get((t, p))}"
                                         for (t, p) in sorted(set(live_pos) | set(shadow_pos))
                                         if live_pos.get((t, p)) != shadow_pos.get((t, p))][:20]
    for view, got in live.items():
        want = shadow[view]
        cert.views[view] = {"rows_live": got["rows"], "rows_shadow": want["rows"],
                            "checksum_live": got["checksum"],
                            "checksum_shadow": want["checksum"]}
        if got["checksum"] != want["checksum"]:
            cert.equal = False
            keys = sorted(k for k in set(got["keys"]) | set(want["keys"])
                          if got["keys"].get(k) != want["keys"].get(k))
            cert.mismatches[view] = keys[:20]
    return cert
