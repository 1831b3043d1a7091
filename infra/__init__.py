"""The local stack: embedded Kafka (KRaft) and Postgres, behind lvlup up/down/status."""

__all__: list[str] = []
