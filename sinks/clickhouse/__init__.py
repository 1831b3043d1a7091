"""ClickHouse access: chdb in process or a server through clickhouse-connect."""

from sinks.clickhouse.client import (
    ChdbClient,
    ClickHouse,
    QueryResult,
    ServerClient,
    open_clickhouse,
)

__all__ = ["ChdbClient", "ClickHouse", "QueryResult", "ServerClient", "open_clickhouse"]
