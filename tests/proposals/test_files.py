"""A proposal's post-image files from its diff, code_before and code_after."""

from __future__ import annotations

import pytest

from agents.proposals.errors import ProposalInputError
from agents.proposals.files import parse_diff, proposal_files

from .support import new_file_diff

MOD_DIFF = """diff --git a/pkg/a.py b/pkg/a.py
index 1..2 100644
--- a/pkg/a.py
+++ b/pkg/a.py
@@ -1,3 +1,3 @@
 import os
-X = 1
+X = 2
 Y = 3
"""


def _record(**over):
    rec = {"file_path": "pkg/a.py", "code_before": "import os\nX = 1\nY = 3\n",
           "code_after": None, "unified_diff": MOD_DIFF}
    return {**rec, **over}


def test_new_files_come_from_the_plus_lines():
    files = {"a/x.py": "A = 1\n", "tests/test_x.py": "def test_x():\n    assert True\n"}
    got = proposal_files({"file_path": "a/x.py", "code_before": None, "code_after": None,
                          "unified_diff": new_file_diff(files)})
    assert got == files


def test_a_modification_applies_to_code_before():
    assert proposal_files(_record()) == {"pkg/a.py": "import os\nX = 2\nY = 3\n"}


def test_code_after_wins_and_read_base_serves_other_files():
    other = MOD_DIFF.replace("pkg/a.py", "pkg/b.py")
    got = proposal_files(_record(unified_diff=MOD_DIFF + other, code_after="Z = 9\n"),
                         read_base=lambda p: "import os\nX = 1\nY = 3\n" if p == "pkg/b.py"
                         else None)
    assert got == {"pkg/a.py": "Z = 9\n", "pkg/b.py": "import os\nX = 2\nY = 3\n"}


def test_a_hunk_that_does_not_match_is_refused():
    with pytest.raises(ProposalInputError, match="does not match"):
        proposal_files(_record(code_before="import sys\nX = 1\nY = 3\n"))
    with pytest.raises(ProposalInputError, match="not available"):
        proposal_files(_record(code_before=None))


@pytest.mark.parametrize("path", ["../etc/passwd", "/abs.py", "a/../../x.py"])
def test_unsafe_paths_are_refused(path):
    with pytest.raises(ProposalInputError, match="unsafe"):
        parse_diff(f"--- /dev/null\n+++ {path}\n@@ -0,0 +1 @@\n+x\n")


def test_hunk_counts_must_agree_with_the_header():
    with pytest.raises(ProposalInputError, match="header says"):
        parse_diff("--- /dev/null\n+++ b/x.py\n@@ -0,0 +1,3 @@\n+x\n")
