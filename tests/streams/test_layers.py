"""``streams.testing`` (the in-memory broker) is test support: no product module imports it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("schemas", "streams", "inference", "sinks", "agents", "api", "infra")


def imported_modules(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def test_no_product_module_imports_the_memory_broker() -> None:
    scanned, offenders = 0, []
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "streams" / "testing.py":
                continue
            scanned += 1
            if "streams.testing" in imported_modules(path):
                offenders.append(str(path.relative_to(ROOT)))
    assert scanned > 100
    assert offenders == []


def test_the_scan_sees_an_import_of_the_memory_broker(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from streams import testing\n")
    assert "streams.testing" in imported_modules(probe)
