"""Access to the data files packaged with :mod:`schemas` (``avro/``, ``topics/``, ``examples/``).

Files are read with :mod:`importlib.resources` relative to the ``schemas`` package, so they are
found both in a source checkout and in an installed wheel. Nothing is read at import time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from schemas.errors import SchemaError

__all__ = ["VersionedFile", "list_versioned", "read_json", "read_text", "list_files"]

_PACKAGE = "schemas"
_VERSIONED = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.(?P<ext>[a-z]+)$")


@dataclass(frozen=True, slots=True)
class VersionedFile:
    """A packaged file named ``<record_type>.v<version>.<ext>``, e.g. ``learning_event.v2.avsc``."""

    record_type: str
    version: int
    filename: str


def list_files(folder: str, suffix: str) -> list[str]:
    """Names of the files in the package folder ``folder`` ending with ``suffix``, sorted."""
    root = files(_PACKAGE).joinpath(folder)
    return sorted(p.name for p in root.iterdir() if p.is_file() and p.name.endswith(suffix))


def list_versioned(folder: str, ext: str) -> list[VersionedFile]:
    """The ``<record_type>.v<N>.<ext>`` files of ``folder``, sorted by (record type, version).

    Raises :class:`SchemaError` for a file with that extension whose name does not follow the
    pattern, so a misnamed file cannot be silently ignored.
    """
    found: list[VersionedFile] = []
    for name in list_files(folder, f".{ext}"):
        match = _VERSIONED.match(name)
        if match is None or match["ext"] != ext:
            raise SchemaError(f"{folder}/{name}: expected a name like '<record_type>.v<N>.{ext}'")
        found.append(VersionedFile(match["name"], int(match["version"]), name))
    return sorted(found, key=lambda f: (f.record_type, f.version))


def read_text(folder: str, filename: str) -> str:
    """The UTF-8 text of the packaged file ``folder/filename``."""
    return files(_PACKAGE).joinpath(folder).joinpath(filename).read_text(encoding="utf-8")


def read_json(folder: str, filename: str) -> Any:
    """The parsed JSON of the packaged file ``folder/filename``; :class:`SchemaError` if invalid."""
    try:
        return json.loads(read_text(folder, filename))
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{folder}/{filename}: invalid JSON: {exc}") from exc
