"""The Postgres sink runs as ``sinks.postgres_members`` processes of one consumer group:
every place that starts sinks (``lvlup run``, the benches and chaos through
``sink_children``) starts that many, the ClickHouse sink stays one process."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.run import child_specs
from infra.sinks_process import sink_children
from streams.settings import Settings, SinkSettings


def _sink_argv(argv: tuple[str, ...]) -> tuple[str, ...]:
    return argv[argv.index("sink"):]


def test_sink_children_start_the_postgres_members_first_then_one_clickhouse_sink(
        tmp_path: Path) -> None:
    sup = sink_children(["t"], ".x", tmp_path, postgres_members=3)
    names = [c.spec.name for c in sup.children]
    assert names == ["pg-sink", "pg-sink-2", "pg-sink-3", "ch-sink"]
    kinds = [_sink_argv(c.spec.argv)[1] for c in sup.children]
    assert kinds == ["postgres", "postgres", "postgres", "clickhouse"]
    # one group: the same topics and suffix on every member
    assert len({_sink_argv(c.spec.argv)[2:] for c in sup.children}) == 1
    assert [c.spec.name for c in sink_children(["t"], ".x", tmp_path).children] == [
        "pg-sink", "ch-sink"]


def test_lvlup_run_adds_postgres_members_beside_the_sinks_process(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, sinks=SinkSettings(postgres_members=3))
    specs = {s.name: _sink_argv(s.argv) for s in child_specs(settings) if "sink" in s.argv}
    assert specs == {"sinks": ("sink", "all"), "pg-sink-2": ("sink", "postgres"),
                     "pg-sink-3": ("sink", "postgres")}
    one = Settings(data_dir=tmp_path, sinks=SinkSettings(postgres_members=1))
    assert [s.name for s in child_specs(one) if "sink" in s.argv] == ["sinks"]


def test_members_are_at_least_one() -> None:
    with pytest.raises(ValidationError):
        SinkSettings(postgres_members=0)
