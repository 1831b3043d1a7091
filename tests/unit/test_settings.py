"""Settings: env prefix, nested delimiter, embedded defaults, secrets kept out of reprs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.settings import Settings


def test_nested_env_names_override_defaults(monkeypatch):
    monkeypatch.setenv("LVLUP_KAFKA__BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("LVLUP_POSTGRES__URL", "postgresql+psycopg://u:secret@db:5432/x")
    monkeypatch.setenv("LVLUP_CLICKHOUSE__URL", "http://u:pw@ch:8123")
    monkeypatch.setenv("LVLUP_DATA_DIR", "/tmp/somewhere")
    monkeypatch.setenv("LVLUP_MODEL__N_THREADS", "4")
    s = Settings()
    assert s.kafka.bootstrap() == "k1:9092,k2:9092" and not s.kafka.embedded
    assert s.postgres.sqlalchemy_url().endswith("@db:5432/x") and not s.postgres.embedded
    assert not s.clickhouse.embedded
    assert s.data_dir == Path("/tmp/somewhere")
    assert s.model.n_threads == 4
    assert "secret" not in repr(s)


def test_embedded_defaults_point_at_loopback(monkeypatch):
    for var in ("LVLUP_KAFKA__PORT", "LVLUP_POSTGRES__PORT", "LVLUP_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    s = Settings()
    assert s.kafka.embedded and s.kafka.bootstrap() == "127.0.0.1:39092"
    assert s.postgres.sqlalchemy_url() == "postgresql+psycopg://lvlup@127.0.0.1:55432/lvlup"
    assert s.clickhouse.embedded
    assert s.chdb_path() == (Path(".lvlup") / "clickhouse").resolve()
    assert s.model_path().name == "gemma-3-270m-q4_k_m.gguf"


@pytest.mark.parametrize(
    ("var", "value"),
    [("LVLUP_KAFKA__PORT", "80"), ("LVLUP_KAFKA__VERSION", "latest"),
     ("LVLUP_LOG_LEVEL", "LOUD"), ("LVLUP_CLICKHOUSE__DATABASE", "bad-name")],
)
def test_invalid_values_are_rejected(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError):
        Settings()
