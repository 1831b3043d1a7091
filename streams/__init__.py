"""Stream platform core: settings, Faust app factory, Kafka admin, producer SDK, CLI."""

__all__: list[str] = []
