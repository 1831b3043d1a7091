"""``pydoc:MODULE`` sources: the documentation an installed module carries in its docstrings,
read without importing it (issue #20 item 4 — shipped offline sources that cover the agents'
topics: bandit's rule plugins for security, ``subprocess``/``tempfile``/``ssl`` for safe
code, ``timeit``/``functools`` for performance, …).

The module is located with :class:`importlib.machinery.PathFinder` one dotted component at a
time (``importlib.util.find_spec`` would import the parent packages: a source must never run
code) and its source parsed with :mod:`ast`: the module docstring and the docstrings of its
public top-level classes and functions, each a ``## name`` section (what
:func:`~agents.knowledge.passages.chunk_sections` cuts on). A package contributes the
modules directly inside it (not sub-packages), in name order. Modules without Python source
(built-ins, extensions) have nothing to read.
"""

from __future__ import annotations

import ast
import re
from importlib.machinery import PathFinder
from pathlib import Path

__all__ = ["MODULE_NAME", "module_doc_text"]

#: A dotted module name (each part a Python identifier).
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,5}")


class NoModuleSource(LookupError):
    """The module is not installed or has no Python source to read (message: why)."""


def _files(name: str) -> list[tuple[str, Path]]:
    """``(module name, source file)`` of ``name`` (a package: its direct modules)."""
    path: list[str] | None = None
    spec = None
    parts = name.split(".")
    for i in range(len(parts)):
        spec = PathFinder.find_spec(".".join(parts[: i + 1]), path)
        if spec is None:
            raise NoModuleSource(f"module {name} is not installed")
        path = list(spec.submodule_search_locations or [])
    assert spec is not None
    if spec.submodule_search_locations:
        out = []
        for folder in spec.submodule_search_locations:
            for file in sorted(Path(folder).glob("*.py")):
                stem = file.stem
                out.append((name if stem == "__init__" else f"{name}.{stem}", file))
        return out
    if not spec.origin or not spec.origin.endswith(".py"):
        raise NoModuleSource(f"module {name} has no Python source")
    return [(name, Path(spec.origin))]


def _sections(module: str, source: str) -> list[str]:
    tree = ast.parse(source)
    out = []
    doc = ast.get_docstring(tree)
    if doc:
        out.append(f"## {module}\n\n{doc}")
    for node in tree.body:
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                and not node.name.startswith("_")):
            doc = ast.get_docstring(node)
            if doc:
                out.append(f"## {module}.{node.name}\n\n{doc}")
    return out


def module_doc_text(name: str, max_bytes: int) -> str:
    """The docstrings of module ``name`` as section text (module doc), at most ``max_bytes``
    characters. Raises :class:`NoModuleSource` (a ``LookupError``) when the module is not
    installed, has no Python source, or documents nothing; ``ValueError`` for a name that is
    not a dotted module name."""
    if not MODULE_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a module name")
    sections: list[str] = []
    for module, file in _files(name):
        try:
            sections += _sections(module, file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
            continue  # one unreadable file of a package: the others still document it
    if not sections:
        raise NoModuleSource(f"module {name} has no docstrings")
    return "\n\n".join(sections)[:max_bytes]
