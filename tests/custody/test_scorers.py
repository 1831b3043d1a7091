"""Every scorer kind with answers that pass and answers that fail."""

from __future__ import annotations

from typing import Any

import pytest

from agents.custody.items import Category, Item, Tier
from agents.custody.sandbox import SandboxResult
from agents.custody.scorers import DONE_MARK, SCORER_VERSIONS, build_program, score


def make(kind: str, **params: Any) -> Item:
    return Item("t-1", Category.KNOWLEDGE_VERIFICATION, Tier.BASIC, "prompt", kind, params)


CASES = [
    (make("choice", options={"A": "x", "B": "y", "C": "z"}, answer="B"),
     ["B", "Answer: (b)", "B) y", "**B** because y"], ["A", "Answer: C", "A or B", "none"]),
    (make("exact", answers=["git commit", "commit"]),
     ["git commit", "Answer: Git Commit.", "I would run:\n`git commit`"], ["git push", ""]),
    (make("regex", pattern=r"O\(\s*log\s*n\s*\)", forbid=r"O\(\s*n\s*\)"),
     ["O(log n)", "It is o( log n )."], ["O(n)", "O(log n) or O(n)", "logarithmic"]),
    (make("numeric", value=43.2, tolerance=0.1),
     ["43.2", "Answer: 43.25 minutes", "about 43.2"], ["43.4", "Answer: 4.32", "n/a"]),
    (make("json_schema", schema={"type": "object", "required": ["mro"],
                                 "properties": {"mro": {"const": ["D", "B", "C", "A"]}}}),
     ['{"mro": ["D", "B", "C", "A"]}', 'Here:\n```json\n{"mro": ["D","B","C","A"]}\n```'],
     ['{"mro": ["D", "C", "B", "A"]}', '{"order": []}', "D B C A"]),
    (make("cwe", accept=[89]),
     ["CWE-89", "This is SQL injection (CWE-89), related to CWE-20."],
     ["CWE-79", "CWE-20 input validation, maybe CWE-89", "SQL injection"]),
]  # fmt: skip


@pytest.mark.parametrize(("item", "good", "bad"), CASES, ids=lambda v: getattr(v, "scorer", ""))
def test_text_scorers(item, good, bad):
    for answer in good:
        result = score(item, answer)
        assert result.passed and result.score == 1.0, (answer, result)
        assert result.scorer_version == f"{item.scorer}/{SCORER_VERSIONS[item.scorer]}"
        assert not result.model_graded
    for answer in bad:
        result = score(item, answer)
        assert not result.passed and result.score == 0.0, (answer, result)
        assert result.detail


CODE = make("code_tests", tests="assert add(2, 3) == 5\nassert add(-1, 1) == 0")


def test_code_tests_pass_and_fail():
    assert score(CODE, "```python\ndef add(a, b):\n    return a + b\n```").passed
    assert not score(CODE, "def add(a, b):\n    return a - b").passed
    assert not score(CODE, "I cannot do that.").passed
    assert "no code" in score(CODE, "").detail


def test_code_that_exits_early_does_not_pass():
    for trick in ("import sys\nsys.exit(0)", "import os\nos._exit(0)", "raise SystemExit"):
        result = score(CODE, trick)
        assert not result.passed, trick


def test_code_printing_its_own_source_or_stdin_does_not_pass():
    trick = (
        "import re, os\nprint(re.findall('[0-9a-f]{32}', open(__file__).read())[-1:])\nos._exit(0)"
    )
    assert not score(CODE, trick).passed


HUMANEVAL_STYLE = make(
    "code_tests",
    prompt='from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """Sum."""\n',
    tests="def check(candidate):\n    assert candidate([1, 2]) == 3\n",
    entry_point="total",
    check=True,
)


def test_humaneval_style_full_function_or_body_completion():
    assert score(HUMANEVAL_STYLE, "def total(xs: List[int]) -> int:\n    return sum(xs)").passed
    assert score(HUMANEVAL_STYLE, "    return sum(xs)\n").passed
    assert score(HUMANEVAL_STYLE, "return sum(xs)").passed
    assert not score(HUMANEVAL_STYLE, "    return 0\n").passed


def test_future_import_is_hoisted():
    answer = (
        "from __future__ import annotations\n\ndef add(a: int, b: int) -> int:\n    return a + b"
    )
    program = build_program(CODE.params, answer)
    assert program.startswith("from __future__ import annotations")
    assert score(CODE, answer).passed


BANDIT = make(
    "bandit_fix",
    tests="assert parse('[1, 2]') == [1, 2]",
    allow=["B404"],
)


def test_bandit_fix_requires_clean_code_and_passing_tests():
    good = score(BANDIT, "import ast\n\ndef parse(s):\n    return ast.literal_eval(s)\n")
    assert good.passed and good.score == 1.0
    unsafe = score(BANDIT, "def parse(s):\n    return eval(s)\n")
    assert not unsafe.passed and unsafe.score == 0.5 and "B307" in unsafe.detail
    silenced = score(BANDIT, "def parse(s):\n    return eval(s)  # nosec\n")
    assert not silenced.passed, "nosec must not silence the checker"
    broken = score(BANDIT, "import ast\n\ndef parse(s):\n    return ast.literal_eval(s)[0]\n")
    assert not broken.passed and broken.score == 0.5
    allowed = score(
        BANDIT, "import subprocess\nimport ast\n\ndef parse(s):\n    return ast.literal_eval(s)\n"
    )
    assert allowed.passed
    assert not score(BANDIT, "def parse(s) return").passed


def test_runner_is_injectable():
    calls = []

    def fake(source, *, limits, stdin):
        calls.append((source, limits.cpu_seconds))
        return SandboxResult(True, 0, 1, "", "", False, False, None, "fake", DONE_MARK)

    assert score(make("code_tests", tests="pass", cpu_seconds=2), "x = 1", runner=fake).passed
    assert calls[0][1] == 2 and "x = 1" in calls[0][0]
