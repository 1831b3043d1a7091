"""Agents' knowledge: source passages, memory recall, role prompts grounded in memory, cloze
items generated from the sources, and the measures of the learning benchmark (issue #20).

Pure functions and small types; the memory itself is a Postgres view
(``sinks.postgres.memory``) materialized from the learning records and read through the
:class:`~agents.knowledge.recall.Recall` collaborator given by the composition root.
"""
