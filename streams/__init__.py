"""The foundation every other package builds on: settings, the producer SDK, the consumer
toolkit (consumer Protocols and their Kafka versions, the serial record loop, DLQ, log
reader, offsets; an in-memory broker for tests in ``streams.testing``), messages, watchdog,
Kafka admin, failpoint hooks and the Faust app factory and transport. It imports only
:mod:`schemas`; the ``lvlup`` CLI and process wiring live in :mod:`infra`."""

__all__: list[str] = []
