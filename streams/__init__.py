"""The foundation every other package builds on: settings, the producer SDK, consumer helpers
(messages, serial loops, DLQ, log reader, watchdog), Kafka admin and offsets, failpoint hooks
and the Faust app factory and transport. It imports only :mod:`schemas`; the ``lvlup`` CLI and
process wiring live in :mod:`infra`."""

__all__: list[str] = []
