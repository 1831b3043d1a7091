"""``lvlup custody bank``: the bank's versions from the bank itself and the run results."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from agents.custody.items import Category, Tier
from agents.custody.service import live_bank
from streams.settings import Settings

pytestmark = pytest.mark.integration


def test_custody_bank_lists_the_current_version_per_category_and_tier(stack):
    proc = subprocess.run([sys.executable, "-m", "infra.cli", "custody", "bank", "--json"],
                          env={**os.environ}, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    versions = json.loads(proc.stdout.strip().splitlines()[-1])
    current = [v for v in versions if v["current"]]
    bank = asyncio.run(live_bank(Settings().custody.source_items))  # + the source items
    assert bank.version.startswith(current[0]["version"].split("+cloze.")[0] + "+cloze.")
    assert len(current) == 1 and current[0]["content_hash"] == bank.content_hash
    assert current[0]["exact"] is True
    counts = current[0]["counts"]
    assert set(counts) == {c.value for c in Category}
    assert all(set(per_tier) == {t.value for t in Tier} for per_tier in counts.values())
    assert sum(sum(t.values()) for t in counts.values()) == len(bank.items)
