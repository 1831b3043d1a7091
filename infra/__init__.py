"""The composition root: the ``lvlup`` CLI (:mod:`infra.cli`), ``lvlup run`` and its
supervisor (:mod:`infra.run`, :mod:`infra.supervisor`), the sink process
(:mod:`infra.sinks_process`), bootstrap (:mod:`infra.setup`), health, the local stack
(embedded Kafka and Postgres behind ``lvlup up/down/status``), chaos and benchmarks. The top
layer: it may import every package; none imports it."""

__all__: list[str] = []
