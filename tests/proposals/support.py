"""Builders shared by the proposals tests (unit and integration): run and proposal records and
the planted proposal of issue #8 (``shell=True``, a hard-coded secret, tests that pass, call
the network and loop forever)."""

from __future__ import annotations

import re
import uuid
from typing import Any

DAY = 86_400_000

#: the planted module: subprocess with shell=True (bandit B602, CWE-78) and a hard-coded key
PLANTED = '''"""Planted by the test: insecure on purpose."""
import subprocess

AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def run(cmd: str) -> int:
    return subprocess.run(cmd, shell=True, check=False).returncode


def add(a: int, b: int) -> int:
    return a + b
'''

#: its tests: one passes, one calls the network (fails in the sandbox), one never ends
PLANTED_TESTS = '''from tool.helper import add


def test_add():
    assert add(2, 3) == 5


def test_network():
    import urllib.request

    urllib.request.urlopen("http://example.com", timeout=3)


def test_forever():
    while True:
        pass
'''

CLEAN = '"""A clean helper."""\n\n\ndef double(x: int) -> int:\n    return 2 * x\n'
CLEAN_TESTS = "from tool.clean import double\n\n\ndef test_double():\n    assert double(4) == 8\n"


def new_file_diff(files: dict[str, str]) -> str:
    """A unified diff creating every file of ``files``."""
    out = []
    for path, text in files.items():
        lines = text.splitlines()
        out += ["--- /dev/null", f"+++ b/{path}", f"@@ -0,0 +1,{len(lines)} @@",
                *(f"+{line}" for line in lines)]
    return "\n".join(out) + "\n"


def proposal(agent_id: str, files: dict[str, str], *, occurred_at: int,
             proposal_id: str | None = None, title: str = "A change") -> dict[str, Any]:
    """A ``proposal_submitted`` record whose diff creates ``files`` (first is file_path)."""
    first = next(iter(files))
    return {"event_id": str(uuid.uuid4()), "occurred_at": occurred_at, "producer": "test",
            "proposal_id": proposal_id or f"p-{uuid.uuid4().hex[:10]}", "agent_id": agent_id,
            "agent_type": "sandbox", "title": title, "description": "test proposal",
            "file_path": first, "code_before": None, "code_after": None,
            "unified_diff": new_file_diff(files), "target_repo": "scratch",
            "status": "submitted"}


def run_result(agent_id: str, *, occurred_at: int, run_id: str | None = None,
               verdict: str = "passed", passed: int = 10, total: int = 10,
               level: int = 5, category: str = "code_quality") -> dict[str, Any]:
    """A ``custody_run_result`` record (basic tier)."""
    return {"event_id": str(uuid.uuid4()), "occurred_at": occurred_at, "producer": "test",
            "run_id": run_id or f"run-{uuid.uuid4().hex[:8]}", "agent_id": agent_id,
            "agent_type": "sandbox", "category": category, "tier": "basic",
            "level": level, "items_total": total, "items_passed": passed, "epochs": 1,
            "score": passed / total, "wilson_lower": 0.7, "verdict": verdict,
            "xp_awarded": 10, "seed": 1, "duration_ms": 1000}


def runner_mark(source: str) -> str:
    """The completion mark a runner ``source`` (``experiment.runner_source``) writes when its
    test returns — what a fake sandbox reports for a passing test."""
    found = re.search(r"'(lvlup:test-passed:[^']+)'", source)
    assert found, "not a runner source"
    return found.group(1)
