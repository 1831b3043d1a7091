"""Replay and audit tooling (issue #10): the log is the system of record; these prove it.

- :mod:`~sinks.replay.certificate` — ``lvlup replay rebuild``: shadow stores rebuilt from
  the log with the sink code, compared view by view, a certificate written;
- :mod:`~sinks.replay.diff` — ``lvlup replay diff``: a window replayed under the current
  code (projections, rescoring, optionally re-inference) and diffed against live;
- :mod:`~sinks.replay.groups` — ``lvlup replay reset-group``: move a stopped consumer
  group's offsets to a time;
- :mod:`~sinks.replay.reinfer` — ``--reinfer``: call the model again for recorded requests;
- the parts: :mod:`.plan` (offset spans, scope), :mod:`.positions` (Kafka), :mod:`.reader`
  (bounded log read), :mod:`.compare` (checksums, differing keys), :mod:`.pgstore`,
  :mod:`.chstore` (the stores), :mod:`.viewsql` (a ClickHouse view's key and sampled
  columns), :mod:`.engine` (one replay).

Importing this package imports nothing heavy; import the submodules.
"""
