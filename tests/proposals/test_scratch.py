"""The scratch repository: approved proposals are committed there, once, and stay inside."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agents.proposals.errors import ProposalInputError
from agents.proposals.scratch import ScratchRepo

from .support import CLEAN, CLEAN_TESTS, proposal

MODIFY = """--- a/tool/clean.py
+++ b/tool/clean.py
@@ -4,2 +4,2 @@
 def double(x: int) -> int:
-    return 2 * x
+    return x + x
"""


def _log(repo: Path) -> str:
    return subprocess.run(["git", "-C", str(repo), "log", "--format=%an|%s|%b"],
                          capture_output=True, text=True, check=True).stdout


def test_approved_proposals_are_committed_once(tmp_path: Path):
    repo = ScratchRepo(tmp_path / "scratch").ensure()
    first = proposal("good-1", {"tool/clean.py": CLEAN, "tests/test_clean.py": CLEAN_TESTS},
                     occurred_at=1, title="add double")
    commit = repo.apply(first, "alice")
    assert commit and (tmp_path / "scratch" / "tool" / "clean.py").read_text() == CLEAN
    assert repo.apply(first, "alice") is None  # already applied
    # a later proposal modifies the committed file: its base comes from the repository
    second = {**proposal("good-1", {"x.py": ""}, occurred_at=2, title="simplify"),
              "file_path": "tool/clean.py", "unified_diff": MODIFY}
    assert repo.apply(second, "bob")
    assert "return x + x" in (tmp_path / "scratch" / "tool" / "clean.py").read_text()
    log = _log(tmp_path / "scratch")
    assert "good-1|simplify|" in log and f"Proposal-Id: {first['proposal_id']}" in log
    assert "Approved-By: bob" in log and log.count("Proposal-Id:") == 2


def test_paths_stay_inside_the_repository(tmp_path: Path):
    repo = ScratchRepo(tmp_path / "scratch").ensure()
    (tmp_path / "outside").mkdir()
    (tmp_path / "scratch" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ProposalInputError, match="symlink"):
        repo.apply(proposal("a", {"link/evil.py": "x = 1\n"}, occurred_at=1), "alice")
    with pytest.raises(ProposalInputError, match="unsafe"):
        repo.apply({**proposal("a", {"ok.py": "x\n"}, occurred_at=1),
                    "file_path": "../evil.py", "code_after": "x\n"}, "alice")
    assert not list((tmp_path / "outside").iterdir())
