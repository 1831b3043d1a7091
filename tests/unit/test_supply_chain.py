"""The locked environment (issue #16) and the supply-chain rules (issue #17, item 7)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
#: releases that shipped a credential stealer (BerriAI/litellm#24518, OSV MAL-2026-2144)
MALICIOUS = {"litellm": {"1.82.7", "1.82.8"}}
#: lowest safe release: 0.13.1–0.15.1 fail every rebalance without opentracing (faust#788)
MINIMUM = {"faust-streaming": Version("0.15.2")}


def _locked() -> dict[str, tuple[str, list[str]]]:
    """``{name: (version, [hashes])}`` of requirements.lock."""
    text = (ROOT / "requirements.lock").read_text()
    out: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=\S)", text):
        head = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", block)
        if head:
            out[head.group(1).lower()] = (head.group(2), re.findall(r"--hash=sha256:(\w{64})",
                                                                     block))
    return out


def _declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return {Requirement(r).name.lower(): Requirement(r) for r in reqs}


def test_every_locked_package_is_pinned_with_a_hash():
    locked = _locked()
    assert len(locked) > 50
    assert [name for name, (_, hashes) in locked.items() if not hashes] == []


def test_every_declared_dependency_is_locked_except_the_locally_built_llama():
    locked = _locked()
    missing = set(_declared()) - set(locked)
    assert missing == {"llama-cpp-python"}


def test_locked_versions_satisfy_the_declared_ranges():
    locked, declared = _locked(), _declared()
    bad = {name: locked[name][0] for name, req in declared.items()
           if name in locked and not req.specifier.contains(locked[name][0], prereleases=True)}
    assert bad == {}


@pytest.mark.parametrize(("name", "versions"), MALICIOUS.items())
def test_malicious_releases_are_excluded_by_the_ranges_and_the_lock(name, versions):
    req = _declared()[name]
    assert not any(req.specifier.contains(v) for v in versions)
    assert _locked()[name][0] not in versions


@pytest.mark.parametrize(("name", "lowest"), MINIMUM.items())
def test_known_broken_releases_are_below_the_ranges(name, lowest):
    req = _declared()[name]
    assert not req.specifier.contains("0.15.1")
    assert Version(_locked()[name][0]) >= lowest
