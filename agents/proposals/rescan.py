"""Guardian's findings before and after a change: which are new, and is the target gone (pure).

A finding of a modified file is *pre-existing* when the base text had one with the same tool,
rule and path on a line of the same (stripped) text — line numbers shift when lines are added
above it, the text of the flagged line does not. Everything else the scan of the post-image
reports is *new*: the change introduced it. A finding fix's target is *met* when no finding
of the target's rules is left inside the target's function in the post-image (the function
itself must still be there).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from typing import Any

from agents.guardian.finding import Finding
from agents.proposals.judge import TargetCheck
from agents.proposals.targets import enclosing_function

__all__ = ["check_target", "new_findings"]


def _key(f: Finding, files: Mapping[str, str | None]) -> tuple[str, str, str, str]:
    text = files.get(f.file_path) or ""
    lines = text.splitlines()
    line = lines[f.line - 1].strip() if 0 < f.line <= len(lines) else ""
    return (f.tool, f.rule_id, f.file_path, line)


def new_findings(after: Sequence[Finding], after_files: Mapping[str, str],
                 before: Sequence[Finding], before_files: Mapping[str, str | None]
                 ) -> list[Finding]:
    """The findings of ``after`` (a scan of ``after_files``) not pre-existing in ``before``
    (a scan of ``before_files``, the base texts of the modified files; module doc)."""
    old: dict[tuple[str, str, str, str], int] = {}
    for f in before:
        k = _key(f, before_files)
        old[k] = old.get(k, 0) + 1
    out = []
    for f in after:
        k = _key(f, after_files)
        if old.get(k, 0) > 0:
            old[k] -= 1
        else:
            out.append(f)
    return out


def check_target(target: Mapping[str, Any], files: Mapping[str, str],
                 findings: Sequence[Finding]) -> TargetCheck | None:
    """The rescan check of a ``finding_fix`` target (``proposal_submitted.target``) against
    the post-image ``files`` and their ``findings``; None for other kinds of target."""
    if str(target.get("kind")) != "finding_fix":
        return None
    tid, path = str(target["target_id"]), str(target.get("file_path") or "")
    function, rules = str(target.get("function") or ""), set(target.get("rules") or ())
    text = files.get(path)
    if text is None:
        return TargetCheck(tid, False, f"the change does not touch {path}")
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return TargetCheck(tid, False, f"{path} does not parse")
    if not any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == function
               for n in tree.body):
        return TargetCheck(tid, False, f"{function}() is no longer in {path}")
    left = []
    for f in findings:
        node = enclosing_function(text, f.line) if f.file_path == path else None
        if node is not None and node.name == function and f.rule_id in rules:
            left.append(f"{f.rule_id} at {path}:{f.line}")
    if left:
        return TargetCheck(tid, False, f"still found on rescan: {', '.join(left)}")
    return TargetCheck(tid, True, f"{', '.join(sorted(rules))} gone from {function}() on rescan")
