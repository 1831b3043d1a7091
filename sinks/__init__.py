"""Sinks and stores: Postgres and ClickHouse writers, migrations, store clients."""

__all__: list[str] = []
