"""What an experiment must exercise, and which files and tests it needs (pure, :mod:`ast`).

A test *exercises* a change when, while it ran, the interpreter executed at least one of the
change's lines (the sandbox runner traces them, :mod:`agents.proposals.experiment`). Which
lines count (:func:`changed_lines`):

* only the proposal's non-test Python files (a test executing its own new lines proves
  nothing about the code under test);
* of each, the post-image lines that differ from the base (:class:`difflib.SequenceMatcher`
  on lines; a new file: every line; a pure deletion: the line after it);
* restricted to statements inside function bodies when the change has any there — the
  ``def`` line and other module-level lines run on mere import, so a test that only imports
  the module (the old smoke test) exercises nothing. A change made only at module level
  (a constant) keeps its module-level lines: importing is then the honest way to run it.

:func:`select_tests` picks the tests to run: those of the proposal's own test files and the
repository's tests that import a module the proposal touches; :func:`closure` adds the
repository files those import (transitively), so the sandbox holds what the tests need and
nothing else. Source is parsed, never imported.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath

__all__ = ["changed_lines", "closure", "is_test_file", "module_name", "select_tests"]


def is_test_file(path: str) -> bool:
    """``test_*.py`` or ``*_test.py`` (pytest's default naming)."""
    name = PurePosixPath(path).name
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def module_name(path: str) -> str:
    """The dotted module of a ``.py`` path (``a/b/__init__.py`` → ``a.b``)."""
    parts = PurePosixPath(path).with_suffix("").parts
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _parse(text: str, path: str) -> ast.Module | None:
    try:
        return ast.parse(text, filename=path)
    except (SyntaxError, ValueError):
        return None


def _body_lines(tree: ast.Module) -> set[int]:
    """Lines of statements inside any function body (nested ones included)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for stmt in node.body:
                end = stmt.end_lineno or stmt.lineno
                lines.update(range(stmt.lineno, end + 1))
    return lines


def _diff_lines(before: str | None, after: str) -> set[int]:
    """1-based post-image lines that are new or changed relative to ``before``."""
    new = after.splitlines()
    if before is None:
        return set(range(1, len(new) + 1))
    out: set[int] = set()
    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=new, autojunk=False)
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            out.update(range(j1 + 1, j2 + 1))
        elif tag == "delete" and j1 < len(new):
            out.add(j1 + 1)
    return out


def changed_lines(after: Mapping[str, str], before: Mapping[str, str | None]
                  ) -> dict[str, frozenset[int]]:
    """``{path: 1-based lines}`` a test must execute for the change to count as exercised
    (module doc), for every non-test ``.py`` file of ``after`` (the post-images) whose change
    left any line; ``before[path]`` is its base text (absent or None: a new file). A file that
    does not parse keeps its diff lines (it fails at import anyway)."""
    out: dict[str, frozenset[int]] = {}
    for path, text in after.items():
        if not path.endswith(".py") or is_test_file(path):
            continue
        diff = _diff_lines(before.get(path), text)
        tree = _parse(text, path)
        body = diff & _body_lines(tree) if tree is not None else set()
        lines = body or diff
        if lines:
            out[path] = frozenset(lines)
    return out


def _imports(text: str, path: str) -> set[str]:
    """Dotted names ``text`` imports (``from a import b`` gives ``a`` and ``a.b``)."""
    tree = _parse(text, path)
    if tree is None:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _imports_any(text: str, path: str, modules: Iterable[str]) -> bool:
    wanted = set(modules)
    return any(name in wanted or any(name.startswith(m + ".") for m in wanted)
               for name in _imports(text, path))


def select_tests(touched: Mapping[str, str], repo: Mapping[str, str]) -> list[str]:
    """Test files to run, sorted: the test files of ``touched`` (the post-images) and the
    test files of ``repo`` (the repository's other files) that import a non-test module of
    ``touched``."""
    modules = {module_name(p) for p in touched if p.endswith(".py") and not is_test_file(p)}
    chosen = {p for p in touched if is_test_file(p)}
    if modules:
        chosen.update(p for p, text in repo.items()
                      if p not in touched and is_test_file(p) and _imports_any(text, p, modules))
    return sorted(chosen)


def closure(roots: Iterable[str], files: Mapping[str, str]) -> dict[str, str]:
    """``roots`` and every file of ``files`` they import, transitively: the package
    ``__init__.py`` files and modules a dotted import resolves to (``a.b`` → ``a/__init__.py``,
    ``a/b.py`` or ``a/b/__init__.py``). Paths absent from ``files`` are skipped."""
    out: dict[str, str] = {}
    todo = [p for p in roots if p in files]
    while todo:
        path = todo.pop()
        if path in out:
            continue
        out[path] = files[path]
        if not path.endswith(".py"):
            continue
        for name in _imports(files[path], path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                stem = "/".join(parts[:i])
                for cand in (f"{stem}.py", f"{stem}/__init__.py"):
                    if cand in files and cand not in out:
                        todo.append(cand)
    return out
