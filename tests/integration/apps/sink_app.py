"""A sink process for fault tests: ``python -m tests.integration.apps.sink_app``.

Environment: ``SINK_KIND`` (postgres|clickhouse), ``SINK_GROUP``, ``SINK_TOPICS`` (comma
separated), optional ``SINK_KILL_AFTER`` (SIGKILL itself after that many written batches,
between the write and the commit), plus the usual ``LVLUP_*`` settings. SIGTERM stops it
cleanly.
"""

from __future__ import annotations

import os
import signal

from schemas.codec import load_codec
from sinks.app import build_sink, postgres_engine
from sinks.clickhouse.client import open_clickhouse
from sinks.records import Batch
from streams.settings import Settings


def main() -> None:
    settings = Settings()
    kind = os.environ["SINK_KIND"]
    kill_after = int(os.environ.get("SINK_KILL_AFTER", "0"))
    written = 0

    def after_write(batch: Batch) -> None:
        nonlocal written
        if batch.records:
            written += 1
        if kill_after and written >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    engine = postgres_engine(settings) if kind == "postgres" else None
    clickhouse = (open_clickhouse(settings.clickhouse, settings.chdb_path())
                  if kind == "clickhouse" else None)
    runner = build_sink(settings, load_codec(), os.environ["SINK_TOPICS"].split(","), kind=kind,
                        engine=engine, clickhouse=clickhouse, group=os.environ["SINK_GROUP"],
                        after_write=after_write)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    runner.run()
    if clickhouse is not None:
        clickhouse.close()


if __name__ == "__main__":
    main()
