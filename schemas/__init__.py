"""Event contracts of Lvl_UP Streams: Avro schemas, topic catalog, wire format, codec, models.

Data files (packaged with the module, read with :mod:`importlib.resources`):

* ``avro/<record_type>.v<N>.avsc`` — one Avro schema per record type and version,
  namespace ``io.lvlup``; every record starts with ``event_id``, ``occurred_at``,
  ``producer``, ``schema_version``;
* ``topics/<topic>.yaml`` — one definition per Kafka topic (:mod:`schemas.catalog`);
* ``examples/<record_type>.v<N>.json`` — example records per schema version.

Code: :mod:`schemas.registry` (schemas by version and fingerprint), :mod:`schemas.wire`
(single-object encoding), :mod:`schemas.codec` (encode/decode), :mod:`schemas.models`
(pydantic models built from the schemas), :mod:`schemas.validation` (JSON input records),
:mod:`schemas.compat` and :mod:`schemas.checks` (evolution and catalog checks),
:mod:`schemas.errors` (exception tree). Loaders are cached
functions (``load_registry``, ``load_codec``, ``load_catalog``); importing builds nothing.
"""

from schemas.catalog import Catalog, Topic, TopicSpec, dlq_topic, load_catalog
from schemas.checks import check_catalog, check_evolution
from schemas.codec import Codec, load_codec
from schemas.compat import check_backward_compatible
from schemas.errors import (
    CatalogError,
    DecodeError,
    EncodeError,
    SchemaError,
    UnknownSchema,
    ValidationFailed,
)
from schemas.models import RecordModel, record_model
from schemas.registry import SchemaRegistry, SchemaVersion, load_registry
from schemas.validation import MAX_RECORD_BYTES, validate_json_record

__all__ = [
    "MAX_RECORD_BYTES",
    "Catalog",
    "CatalogError",
    "Codec",
    "DecodeError",
    "EncodeError",
    "RecordModel",
    "SchemaError",
    "SchemaRegistry",
    "SchemaVersion",
    "Topic",
    "TopicSpec",
    "UnknownSchema",
    "ValidationFailed",
    "check_backward_compatible",
    "check_catalog",
    "check_evolution",
    "dlq_topic",
    "load_catalog",
    "load_codec",
    "load_registry",
    "record_model",
    "validate_json_record",
]
