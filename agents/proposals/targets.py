"""What an agent's draft targets: a finding to fix, a custody weakness, or a helper (pure).

Three kinds, in the order :func:`choose_target` prefers them:

1. ``finding_fix`` — a guardian finding with a known fix (:func:`fixable`) in a function of
   the scratch repository that the repository's tests import (:func:`finding_targets`; a
   finding without such a test is skipped: a fix nobody can check is not worth proposing).
   The experiment must show the finding's rules gone from the function on a rescan, and the
   tests passing while they run the changed lines.
2. ``custody_weakness`` — a helper task (:mod:`agents.proposals.helpers`) of the category the
   agent's custody record shows weakest (:func:`weak_categories`: the lowest share of items
   passed, among categories with a failed item).
3. ``helper`` — any helper task, tests written first.

The order is the agent's role (seed 001): **guardian** (security) takes the findings first,
as above; the other agents take their custody weaknesses first, then the other helpers, then
the findings — each works where its role and record point, and a slot is not spent by every
agent on the same finding. (On the shipped 270M model this also matters in practice: asked
to fix a finding it rewrote the function unchanged in every draft measured, so an agent that
tried fixes first spent its slot's attempts before drafting anything.)

Targets already claimed (a proposal of the target is on the log and not declined) are skipped,
so agents drafting in turn spread over the open targets; when every target is claimed, the
first is proposed again. Ids are stable: ``fix:<path>:<function>``, ``helper:<slug>``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agents.guardian.finding import Finding, Severity, severity_rank
from agents.proposals.coverage import is_test_file, select_tests
from agents.proposals.helpers import HELPERS, HelperTask, helpers_for

__all__ = ["FIX_HINTS", "Target", "choose_target", "enclosing_function", "finding_targets",
           "fixable", "helper_target", "weak_categories"]

TargetKind = Literal["finding_fix", "custody_weakness", "helper"]

#: how to fix a rule, told to the model (bandit's own advice, shortened)
FIX_HINTS: dict[str, str] = {
    "B602": "pass the command to subprocess.run as a list of arguments and drop shell=True",
    "B604": "pass the command as a list of arguments and drop shell=True",
    "B605": "call subprocess.run with a list of arguments instead of a shell",
    "B307": "use ast.literal_eval instead of eval (import ast)",
    "B324": "use hashlib.sha256, or pass usedforsecurity=False",
    "B301": "use json.loads instead of pickle",
    "B306": "use tempfile.mkstemp instead of tempfile.mktemp",
    "B311": "use the secrets module instead of random",
}


@dataclass(frozen=True, slots=True)
class Target:
    """One draft target. ``file_path`` is the file the change writes, ``function`` the
    function the model writes or rewrites; ``rules`` the guardian rule ids the fix must remove
    from that function (``finding_fix``), ``finding_id``/``line``/``message`` the finding
    chosen; ``tests`` the test files that check it (existing ones for a fix, the file the
    proposal creates for a helper); ``helper`` the task (helpers only)."""

    kind: TargetKind
    target_id: str
    file_path: str
    function: str
    description: str
    category: str | None = None
    rules: tuple[str, ...] = ()
    finding_id: str | None = None
    line: int | None = None
    message: str | None = None
    tests: tuple[str, ...] = ()
    helper: HelperTask | None = None

    def to_record(self) -> dict[str, Any]:
        """The ``proposal_submitted.target`` field (v2)."""
        return {"kind": self.kind, "target_id": self.target_id, "file_path": self.file_path,
                "function": self.function, "category": self.category,
                "rules": list(self.rules), "finding_id": self.finding_id, "line": self.line,
                "tests": list(self.tests)}


def enclosing_function(source: str, line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The top-level function of ``source`` whose lines (decorators included) hold ``line``
    (1-based), or None (module level, or the source does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if start <= line <= (node.end_lineno or node.lineno):
                return node
    return None


def fixable(finding: Finding, min_severity: Severity = "high") -> bool:
    """Whether ``finding`` makes a fix target: its rule has a hint in :data:`FIX_HINTS` (ruff's
    ``S<n>`` counts as bandit's ``B<n>``), or its severity is ``min_severity`` or above. Rules
    without a known fix at lower severities (``B108`` a ``/tmp`` path, ``B603`` any
    subprocess) would keep a correctly fixed function a target forever."""
    rule = finding.rule_id
    twin = f"B{rule[len('ruff:S'):]}" if rule.startswith("ruff:S") else rule
    return (rule in FIX_HINTS or twin in FIX_HINTS
            or severity_rank(finding.severity) >= severity_rank(min_severity))


def finding_targets(repo: Mapping[str, str], findings: Iterable[Finding], *,
                    min_severity: Severity = "high") -> list[Target]:
    """``finding_fix`` targets of ``repo`` (``{path: text}``, the repository's files) from
    ``findings`` (a scan of it): one per function with a :func:`fixable` finding in a
    non-test Python file that a test of ``repo`` imports; its ``rules`` are every such
    finding's rule in the function. Sorted by worst severity, then path and function."""
    grouped: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        text = repo.get(f.file_path)
        if (text is None or not f.file_path.endswith(".py") or is_test_file(f.file_path)
                or not fixable(f, min_severity)):
            continue
        node = enclosing_function(text, f.line)
        if node is not None:
            grouped.setdefault((f.file_path, node.name), []).append(f)
    targets = []
    for (path, function), found in grouped.items():
        tests = select_tests({path: repo[path]}, repo)
        if not tests:
            continue
        worst = max(found, key=lambda f: (severity_rank(f.severity), -f.line))
        rules = tuple(sorted({f.rule_id for f in found}))
        targets.append(Target(
            "finding_fix", f"fix:{path}:{function}", path, function,
            f"fix {worst.rule_id} in {function}() ({path}:{worst.line}): {worst.message}",
            category="security_awareness", rules=rules, finding_id=worst.finding_id,
            line=worst.line, message=worst.message, tests=tuple(tests)))
    rank = {t.target_id: max(severity_rank(f.severity) for f in grouped[(t.file_path,
                                                                         t.function)])
            for t in targets}
    return sorted(targets, key=lambda t: (-rank[t.target_id], t.file_path, t.function))


def weak_categories(runs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Categories of the agent's ``custody_run_result`` records with a failed item, weakest
    first (share of items passed, then name)."""
    totals: dict[str, list[int]] = {}
    for run in runs:
        got = totals.setdefault(str(run["category"]), [0, 0])
        got[0] += int(run.get("items_passed") or 0)
        got[1] += int(run.get("items_total") or 0)
    weak = [(passed / total, cat) for cat, (passed, total) in totals.items()
            if total and passed < total]
    return [cat for _, cat in sorted(weak)]


def helper_target(task: HelperTask, agent: str, kind: TargetKind = "helper") -> Target:
    """The target of writing ``task`` as ``lab/<agent>/<slug>.py`` with its tests in
    ``tests/test_<agent>_<slug>.py`` (``agent`` already path-safe)."""
    return Target(kind, f"helper:{task.slug}", f"lab/{agent}/{task.slug}.py", task.slug,
                  f"write {task.slug}() to pass its tests (written first): "
                  f"{task.doc.splitlines()[0]}",
                  category=task.category, tests=(f"tests/test_{agent}_{task.slug}.py",),
                  helper=task)


def choose_target(agent: str, attempt: int, *, fixes: Sequence[Target],
                  weak: Sequence[str], claimed: set[str], fixes_first: bool = True) -> Target:
    """The target of an agent's ``attempt`` (0, 1, …) in a slot (module doc): the open
    candidates in preference order — ``fixes``, helpers of the ``weak`` categories (as
    ``custody_weakness``), the other helpers; with ``fixes_first`` False (every role but
    guardian's) the ``fixes`` come last — minus ``claimed`` target ids, the ``attempt``-th of
    them (cyclically). ``agent`` is path-safe (it names the helper's file)."""
    ordered: list[Target] = list(fixes) if fixes_first else []
    seen = {t.target_id for t in fixes}
    for category in weak:
        for task in helpers_for(category):
            target = helper_target(task, agent, "custody_weakness")
            if target.target_id not in seen:
                ordered.append(target)
                seen.add(target.target_id)
    ordered += [helper_target(task, agent) for task in HELPERS
                if f"helper:{task.slug}" not in seen]
    if not fixes_first:
        ordered += fixes
    open_ = [t for t in ordered if t.target_id not in claimed] or ordered
    return open_[attempt % len(open_)]
