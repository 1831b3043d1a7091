"""The benchmarks (``lvlup bench NAME``, ``make bench``) and the data they run on.

One module per benchmark — ``codec``, ``sinks``, ``inference`` (in-process model),
``inference_kafka``, ``ingest``, ``replay``, ``custody`` (sandbox), ``api`` — plus
``sample`` (the synthetic event stream benchmarks, chaos and tests feed) and ``page``
(BENCHMARKS.md). They live at the root because they start and wire whole processes.
"""

__all__: list[str] = []
