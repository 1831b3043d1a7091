"""The packaged example records, ``examples/<record_type>.v<N>.json`` (a JSON list each).

Examples are written the way a producer writes JSON input (UUIDs and timestamps as strings);
:func:`example_records` turns them into codec-ready dicts through the version's model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from schemas import resources
from schemas.errors import SchemaError
from schemas.models import record_model

__all__ = ["example_files", "example_records", "load_examples"]


def example_files() -> list[resources.VersionedFile]:
    """Every packaged example file, sorted by (record type, version)."""
    return resources.list_versioned("examples", "json")


def load_examples(record_type: str, version: int) -> list[dict[str, Any]]:
    """The raw JSON examples of ``record_type`` version ``version``.

    Raises :class:`SchemaError` when the file is missing, is not a non-empty list of objects.
    """
    filename = f"{record_type}.v{version}.json"
    try:
        data = resources.read_json("examples", filename)
    except FileNotFoundError as exc:
        raise SchemaError(f"no example file examples/{filename}") from exc
    if not isinstance(data, list) or not data or not all(isinstance(r, dict) for r in data):
        raise SchemaError(f"examples/{filename} must be a non-empty JSON list of objects")
    return data


def example_records() -> Iterator[tuple[str, int, dict[str, Any]]]:
    """``(record_type, version, codec_ready_record)`` for every packaged example.

    Each example is validated by the model of its own version; a pydantic ``ValidationError``
    propagates if an example does not fit its schema.
    """
    for vf in example_files():
        model = record_model(vf.record_type, vf.version)
        for raw in load_examples(vf.record_type, vf.version):
            yield vf.record_type, vf.version, model.model_validate(raw).to_avro()
