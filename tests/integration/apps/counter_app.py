"""A Faust worker for the backbone test: counts records per key in a table with a changelog
and forwards ``key=count`` to an output topic.

Run: ``python -m tests.integration.apps.counter_app worker`` with ``COUNTER_APP_ID``,
``COUNTER_SOURCE``, ``COUNTER_SINK`` and ``COUNTER_PARTITIONS`` in the environment (plus the
usual ``LVLUP_*`` settings).
"""

from __future__ import annotations

import os

from streams.app import create_faust_app, recovered
from streams.settings import Settings


def build():  # type: ignore[no-untyped-def]
    partitions = int(os.environ["COUNTER_PARTITIONS"])
    app = create_faust_app(Settings(), os.environ["COUNTER_APP_ID"], partitions=partitions)
    source = app.topic(os.environ["COUNTER_SOURCE"], key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw", partitions=partitions)
    sink = app.topic(os.environ["COUNTER_SINK"], key_type=bytes, value_type=bytes,
                     key_serializer="raw", value_serializer="raw", partitions=partitions)
    counts = app.Table("counts", default=int, partitions=partitions, key_type=str,
                       value_type=int)

    @app.agent(source)
    async def count(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            await recovered(app)  # the table is restored before it is read
            key = event.key.decode()
            counts[key] += 1
            await sink.send(key=event.key, value=f"{key}={counts[key]}".encode())

    return app


app = build()

if __name__ == "__main__":
    app.main()
