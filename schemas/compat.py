"""Backward-compatibility check between two versions of a schema.

"Backward compatible" means a reader using the *new* schema can read data written with the
*old* one, by the rules of Avro schema resolution (Avro 1.11.1 specification, "Schema
Resolution", https://avro.apache.org/docs/1.11.1/specification/#schema-resolution):

* a field the reader has and the writer lacks needs a default (fields the writer has and the
  reader lacks are skipped); fields are matched by name or by a reader field's ``aliases``;
* types must match, or be a promotion: int → long, float, double; long → float, double;
  float → double; string ↔ bytes;
* every symbol of the writer's enum must be in the reader's enum, unless the reader's enum
  declares a ``default``;
* a writer union needs each branch readable by the reader; a reader union needs one branch
  that reads the writer's type;
* named types (record, enum, fixed) keep their name (or the reader lists it in ``aliases``);
  fixed types keep their size.

Stricter than the spec on purpose: a changed ``logicalType`` is reported, because it changes
the meaning of the bytes (``timestamp-millis`` → ``timestamp-micros``) even when resolution
would succeed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_backward_compatible"]

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_PROMOTIONS = {
    ("int", "long"),
    ("int", "float"),
    ("int", "double"),
    ("long", "float"),
    ("long", "double"),
    ("float", "double"),
    ("string", "bytes"),
    ("bytes", "string"),
}


class _Names:
    """Named types of one schema by full name, for resolving references like ``"Severity"``."""

    def __init__(self) -> None:
        self.types: dict[str, dict[str, Any]] = {}

    def resolve(self, avro_type: Any, namespace: str) -> tuple[Any, str]:
        """The definition of ``avro_type`` (following name references) and its namespace."""
        if isinstance(avro_type, str) and avro_type not in _PRIMITIVES:
            full = avro_type if "." in avro_type else f"{namespace}.{avro_type}".lstrip(".")
            found = self.types.get(full) or self.types.get(avro_type)
            if found is None:
                return avro_type, namespace
            return found, found.get("namespace", namespace)
        if isinstance(avro_type, dict) and avro_type.get("type") in {"record", "enum", "fixed"}:
            name = str(avro_type["name"])
            ns = str(avro_type.get("namespace", namespace if "." not in name else ""))
            full = name if "." in name else f"{ns}.{name}".lstrip(".")
            self.types.setdefault(full, {**avro_type, "namespace": full.rpartition(".")[0]})
            return avro_type, full.rpartition(".")[0]
        return avro_type, namespace


def _kind(avro_type: Any) -> str:
    if isinstance(avro_type, list):
        return "union"
    if isinstance(avro_type, dict):
        inner = avro_type["type"]
        return inner if isinstance(inner, str) else _kind(inner)
    return str(avro_type)


def _short(name: Any) -> str:
    return str(name).rsplit(".", 1)[-1]


class _Checker:
    def __init__(self) -> None:
        self.old_names = _Names()
        self.new_names = _Names()
        self.problems: list[str] = []
        self._seen: set[tuple[int, int]] = set()

    def check(self, old: Any, new: Any, path: str, ns: tuple[str, str] = ("", "")) -> None:
        """Record the problems of reading ``old``-typed data as ``new`` at ``path``.

        ``ns`` holds the enclosing namespaces (old side, new side) for name references.
        """
        old, old_ns = self.old_names.resolve(old, ns[0])
        new, new_ns = self.new_names.resolve(new, ns[1])
        ns = (old_ns, new_ns)
        old_kind, new_kind = _kind(old), _kind(new)
        if old_kind == "union":
            for branch in old:
                if not self._readable(branch, new, ns):
                    self.problems.append(f"{path}: union branch {_kind(branch)} is not readable")
            return
        if new_kind == "union":
            if not any(self._readable(old, b, ns) for b in new):
                self.problems.append(f"{path}: no union branch reads {old_kind}")
            return
        if old_kind != new_kind:
            if (old_kind, new_kind) not in _PROMOTIONS:
                self.problems.append(f"{path}: type changed from {old_kind} to {new_kind}")
            return
        if isinstance(old, dict) or isinstance(new, dict):
            self._same_logical(old, new, path)
        if old_kind in {"record", "enum", "fixed"}:
            self._named(old, new, old_kind, path, ns)
        elif old_kind == "array":
            self.check(old["items"], new["items"], f"{path}[]", ns)
        elif old_kind == "map":
            self.check(old["values"], new["values"], f"{path}{{}}", ns)

    def _readable(self, old: Any, new: Any, ns: tuple[str, str]) -> bool:
        probe = _Checker()
        probe.old_names, probe.new_names = self.old_names, self.new_names
        probe._seen = set(self._seen)
        probe.check(old, new, "", ns)
        return not probe.problems

    def _same_logical(self, old: Any, new: Any, path: str) -> None:
        old_lt = old.get("logicalType") if isinstance(old, dict) else None
        new_lt = new.get("logicalType") if isinstance(new, dict) else None
        if old_lt != new_lt:
            self.problems.append(f"{path}: logicalType changed from {old_lt} to {new_lt}")

    def _named(self, old: Any, new: Any, kind: str, path: str, ns: tuple[str, str]) -> None:
        aliases = {_short(a) for a in new.get("aliases", [])}
        if _short(old["name"]) != _short(new["name"]) and _short(old["name"]) not in aliases:
            self.problems.append(f"{path}: {kind} renamed from {old['name']} to {new['name']}")
            return
        if kind == "fixed" and old["size"] != new["size"]:
            self.problems.append(f"{path}: fixed size changed from {old['size']} to {new['size']}")
        elif kind == "enum" and "default" not in new:
            for symbol in old["symbols"]:
                if symbol not in new["symbols"]:
                    self.problems.append(f"{path}: enum symbol {symbol!r} removed (no default)")
        elif kind == "record" and (id(old), id(new)) not in self._seen:
            self._seen.add((id(old), id(new)))
            self._fields(old, new, path or _short(new["name"]), ns)

    def _fields(self, old: Any, new: Any, path: str, ns: tuple[str, str]) -> None:
        old_fields = {f["name"]: f for f in old["fields"]}
        for field in new["fields"]:
            names = [field["name"], *field.get("aliases", [])]
            match = next((old_fields[n] for n in names if n in old_fields), None)
            where = f"{path}.{field['name']}"
            if match is None:
                if "default" not in field:
                    self.problems.append(f"{where}: field added without a default")
                continue
            self.check(match["type"], field["type"], where, ns)


def check_backward_compatible(old_schema: Any, new_schema: Any) -> list[str]:
    """Problems that stop a reader using ``new_schema`` from reading data written with
    ``old_schema``; an empty list means backward compatible.

    Both schemas are raw JSON schemas (as in an ``.avsc`` file). Each problem is one line
    starting with the dotted path of the field concerned, e.g.
    ``"learning_event.tags: field added without a default"``. Pure: no I/O, no fastavro.
    """
    checker = _Checker()
    checker.check(old_schema, new_schema, "")
    return checker.problems
