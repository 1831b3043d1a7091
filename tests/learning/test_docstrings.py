"""``pydoc:MODULE`` sources: an installed module's docstrings as section text, read from its
source with ast — never imported (agents.learning.docstrings)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from agents.learning.sources import SourceFailed, check_source_url, fetch_document


def _fetch(url: str):
    return asyncio.run(fetch_document(url, {url}))


def test_a_module_gives_its_docstrings_as_sections() -> None:
    doc = _fetch("pydoc:subprocess")
    assert doc.title == "subprocess (docstrings)"
    assert doc.text.startswith("## subprocess\n\n")
    assert "## subprocess.run\n\n" in doc.text and "## subprocess.Popen\n\n" in doc.text
    assert "## subprocess._" not in doc.text  # private names are not documentation


def test_a_package_gives_its_modules() -> None:
    doc = _fetch("pydoc:bandit.plugins")
    assert "## bandit.plugins.injection_shell" in doc.text and "shell=True" in doc.text


def test_the_module_is_never_imported() -> None:
    sys.modules.pop("antigravity", None)  # importing it would open a web browser
    assert "## antigravity.geohash" in _fetch("pydoc:antigravity").text
    assert "antigravity" not in sys.modules
    sys.modules.pop("tabnanny", None)
    assert "check" in _fetch("pydoc:tabnanny").text
    assert "tabnanny" not in sys.modules


def test_missing_modules_and_bad_names_are_refused() -> None:
    with pytest.raises(SourceFailed, match="not installed"):
        _fetch("pydoc:no_such_module_xyz")
    with pytest.raises(SourceFailed, match="pydoc:sys"):
        _fetch("pydoc:sys")  # a built-in: no source to read
    assert check_source_url("pydoc:bandit.plugins") == "pydoc:bandit.plugins"
    for bad in ("pydoc:os;rm -rf /", "pydoc:../etc", "pydoc:"):
        with pytest.raises(ValueError):
            check_source_url(bad)
