"""Pydantic v2 models of the record types, built from the ``.avsc`` files so they cannot drift.

``record_model("learning_event")`` returns the model of the newest ``learning_event`` schema;
``record_model("learning_event", 1)`` the model of version 1. Each model is a frozen
:class:`RecordModel` subclass with one field per Avro field (same names, same optionality,
types mapped as documented in :mod:`schemas.avro_types`) and the class variables
``record_type`` and ``avro_version``. Models are built on first use and cached.

Example::

    Model = record_model("learning_event")
    event = Model.model_validate(json_obj)        # pydantic.ValidationError if invalid
    data = load_codec().encode(Model.record_type, event.to_avro())
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from pydantic import create_model

from schemas.avro_types import FrozenModel, fields_for
from schemas.registry import SchemaVersion, load_registry

__all__ = ["RecordModel", "build_model", "record_model"]


class RecordModel(FrozenModel):
    """Base of the generated record models.

    ``record_type`` is the Avro record name (``"learning_event"``); ``avro_version`` the schema
    version the model was built from.
    """

    record_type: ClassVar[str]
    avro_version: ClassVar[int]

    def to_avro(self) -> dict[str, Any]:
        """The record as physical Avro values, keyed by Avro field names.

        UUIDs are ``str``, timestamps ``int`` epoch milliseconds, dates ``int`` epoch days,
        enums ``str``, nested records ``dict``: JSON-ready, accepted by
        :meth:`schemas.codec.Codec.encode` and equal to what ``Codec.decode`` returns, so
        ``decode(encode(t, m.to_avro()))[1] == m.to_avro()``. (``model_dump(mode="json")``
        gives ISO-8601 strings for timestamps and dates instead, for HTTP answers.)
        """
        return self.model_dump(by_alias=True)


def _class_name(record_type: str, version: int) -> str:
    """``learning_event``, 2 → ``LearningEventV2``."""
    return "".join(part.capitalize() for part in record_type.split("_")) + f"V{version}"


def build_model(sv: SchemaVersion) -> type[RecordModel]:
    """Build the model of one schema version (uncached; use :func:`record_model`).

    Raises :class:`schemas.errors.SchemaError` when the schema uses an Avro construct
    :mod:`schemas.avro_types` does not map.
    """
    names: dict[str, Any] = {}
    fields = fields_for(list(sv.schema["fields"]), names)
    model: type[RecordModel] = create_model(
        _class_name(sv.record_type, sv.version),
        __base__=RecordModel,
        __module__=__name__,
        __doc__=sv.schema.get("doc"),
        **fields,
    )
    model.record_type = sv.record_type
    model.avro_version = sv.version
    return model


def record_model(record_type: str, version: int | None = None) -> type[RecordModel]:
    """The model of ``record_type`` at ``version`` (newest when ``None``), built once (cached).

    ``record_model(t)`` and ``record_model(t, newest)`` return the same class. Raises
    :class:`schemas.errors.UnknownSchema` for an unknown type or version.
    """
    registry = load_registry()
    sv = registry.latest(record_type) if version is None else registry.get(record_type, version)
    return _model(sv.record_type, sv.version)


@functools.cache
def _model(record_type: str, version: int) -> type[RecordModel]:
    return build_model(load_registry().get(record_type, version))
