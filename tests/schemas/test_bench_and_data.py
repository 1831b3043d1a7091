"""The codec benchmark's report, the packaged example files, and the package's exports."""

from __future__ import annotations

import importlib
import inspect
import tomllib
from pathlib import Path

import pytest

import schemas
from infra.bench import codec as bench
from schemas.errors import SchemaError
from schemas.example_data import example_files, load_examples
from schemas.logical import to_physical
from schemas.registry import load_registry

ROOT = Path(__file__).resolve().parents[2]
MODULES = [
    "schemas", "schemas.avro_types", "infra.bench.codec", "schemas.catalog", "schemas.checks",
    "schemas.codec", "schemas.commands", "schemas.compat", "schemas.errors", "schemas.example_data",
    "schemas.logical", "schemas.models", "schemas.registry", "schemas.resources",
    "schemas.validation", "schemas.wire",
]  # fmt: skip


def test_bench_codec_reports_every_type():
    report = bench.bench_codec(iterations=60, repeats=2)
    assert set(report["per_type"]) == set(load_registry().record_types)
    for figures in report["per_type"].values():
        assert figures["encode_us"] > 0 and figures["decode_us"] > 0
        assert figures["total_us"] == pytest.approx(
            figures["encode_us"] + figures["decode_us"], abs=0.01
        )
        assert figures["bytes"] > 10
    slowest = report["slowest_type"]
    assert report["max_total_us"] == report["per_type"][slowest]["total_us"]
    assert report["goal_us"] == 12
    assert report["pass"] == (report["max_total_us"] <= report["goal_us"])
    assert report["max_total_us"] < 1000  # catastrophic regressions only; timing varies by machine
    with pytest.raises(ValueError, match=">= 1"):
        bench.bench_codec(iterations=0)


def test_every_schema_version_has_examples_and_every_example_file_has_a_schema():
    versions = {(sv.record_type, sv.version) for sv in load_registry()}
    files = {(vf.record_type, vf.version) for vf in example_files()}
    assert files == versions
    for record_type, version in versions:
        assert load_examples(record_type, version)
    with pytest.raises(SchemaError, match="no example file"):
        load_examples("learning_event", 99)


def test_package_data_ships_the_data_folders():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["schemas"]
    for folder, pattern in (("avro", "*.avsc"), ("topics", "*.yaml"), ("examples", "*.json")):
        assert f"{folder}/{pattern}" in patterns
        assert list((ROOT / "schemas" / folder).glob(pattern))


def test_to_physical():
    from datetime import UTC, date, datetime
    from uuid import UUID

    assert (
        to_physical("timestamp-millis", datetime(1970, 1, 1, 0, 0, 1, 999999, tzinfo=UTC)) == 1999
    )
    assert to_physical("timestamp-millis", 5) == 5
    assert to_physical("date", date(1970, 1, 11)) == 10
    assert to_physical("uuid", UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    with pytest.raises(ValueError, match="naive"):
        to_physical("timestamp-millis", datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="datetime given for a date"):
        to_physical("date", datetime(2025, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("name", MODULES)
def test_all_is_honest(name):
    module = importlib.import_module(name)
    exported = set(module.__all__)
    for public in exported:
        assert hasattr(module, public), f"{name}.__all__ lists missing {public}"
    if name == "schemas":
        return
    defined_here = {
        n
        for n, obj in vars(module).items()
        if not n.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and getattr(obj, "__module__", None) == name
    }
    assert defined_here <= exported, f"{name}: public but not exported: {defined_here - exported}"


def test_public_names_have_docstrings():
    for name in MODULES:
        module = importlib.import_module(name)
        assert module.__doc__, name
        for public in module.__all__:
            obj = getattr(module, public)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                assert inspect.getdoc(obj), f"{name}.{public}"


def test_top_level_exports_cover_the_main_api():
    for public in ("Codec", "load_codec", "load_catalog", "validate_json_record"):
        assert public in schemas.__all__
    assert "bench_codec" not in schemas.__all__  # benchmarks live at the root (infra/bench)
