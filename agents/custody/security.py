"""Static security check of Python source with bandit (PyCQA), used as a library.

``# nosec`` comments are ignored (``ignore_nosec=True``): an answer must not be able to silence
the checker. Every severity and confidence level is reported; callers decide what to allow.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BanditIssue", "bandit_issues"]


@dataclass(frozen=True, slots=True)
class BanditIssue:
    """One bandit finding: ``test_id`` (e.g. ``"B602"``), ``severity`` and ``confidence``
    (``"LOW"``/``"MEDIUM"``/``"HIGH"``), 1-based ``line``, bandit's ``text`` and ``cwe`` id
    (0 when bandit names none)."""

    test_id: str
    severity: str
    confidence: str
    line: int
    text: str
    cwe: int


def bandit_issues(source: str) -> list[BanditIssue]:
    """Run every bandit plugin over ``source``; findings sorted by line then test id.

    Raises :class:`SyntaxError` when bandit cannot parse the source (it skips such files, and
    silence must not read as "clean").
    """
    from bandit.core import config, manager  # ~0.2 s import: load on first use

    with tempfile.TemporaryDirectory(prefix="lvlup-bandit-") as tmp:
        path = Path(tmp, "snippet.py")
        path.write_text(source, encoding="utf-8")
        mgr = manager.BanditManager(config.BanditConfig(), "file", ignore_nosec=True, quiet=True)
        mgr.discover_files([str(path)])
        mgr.run_tests()
        if mgr.skipped:
            raise SyntaxError(f"bandit skipped the source: {mgr.skipped[0][1]}")
        issues = [
            BanditIssue(
                test_id=str(issue.test_id),
                severity=str(issue.severity),
                confidence=str(issue.confidence),
                line=int(issue.lineno),
                text=str(issue.text),
                cwe=int(getattr(issue.cwe, "id", 0) or 0),
            )
            for issue in mgr.get_issue_list()
        ]
    return sorted(issues, key=lambda i: (i.line, i.test_id))
