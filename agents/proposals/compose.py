"""A target → the model's prompt → a ``proposal_submitted`` record (pure).

The model (Gemma 3 270M by default) is weak at code, so it gets every honest advantage and
writes as little as possible — but what it writes is what gets tested:

* **finding fix**: the finding (rule, message, line), a fix hint for the rule
  (:data:`~agents.proposals.targets.FIX_HINTS`), one worked example of the same kind of fix,
  and the function as it is; it answers with the function rewritten. The platform takes only
  the function of that name from the answer (plus ``import`` lines it adds), splices it over
  the old one and leaves the rest of the file as it was;
* **helper**: the signature and docstring with an example — the tests, written before, are
  not shown — and it answers with the function.

The answer is untrusted text: it is parsed with :mod:`ast` (never imported or run here), only a
function definition of the expected name and top-level ``import`` statements are kept, and
the record's paths come from the target, not from the answer. An answer without that function
raises :class:`ValueError` (the draft is retried on another target). The diff is made with
:mod:`difflib` and applied by the pipeline like any other proposal's.
"""

from __future__ import annotations

import ast
import difflib
import re
import uuid
from collections.abc import Mapping
from typing import Any

from agents.proposals.scratch import SCRATCH_REPO
from agents.proposals.targets import FIX_HINTS, Target, enclosing_function

__all__ = ["build_record", "extract_code", "fix_prompt", "helper_prompt", "prompt_for",
           "splice_function", "take_function"]

_NS = uuid.UUID("a3e4f2d1-7c1b-4e55-8f0e-2b9d6c4a1f77")
_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", re.DOTALL)

_EXAMPLE = '''Finding: B605 start_process_with_a_shell: Starting a process with a shell.
Hint: call subprocess.run with a list of arguments instead of a shell
Before:
```python
def ping(host: str) -> int:
    return subprocess.run("ping -c 1 " + host, shell=True).returncode
```
After:
```python
def ping(host: str) -> int:
    return subprocess.run(["ping", "-c", "1", host]).returncode
```'''


def extract_code(answer: str) -> str:
    """The first fenced code block of ``answer``, else the whole answer (stripped, with a
    trailing newline)."""
    m = _FENCE.search(answer)
    code = (m.group(1) if m else answer).strip()
    return code + "\n"


def fix_prompt(target: Target, source: str) -> str:
    """The prompt of a ``finding_fix`` target over the file's ``source``; raises
    :class:`ValueError` when the target's function is not in it."""
    node = enclosing_function(source, target.line or 0)
    if node is None or node.name != target.function:
        raise ValueError(f"{target.function}() is not at {target.file_path}:{target.line}")
    before = ast.get_source_segment(source, node, padded=False) or ""
    rule = target.rules[0] if target.rules else ""
    hint = FIX_HINTS.get(rule, "remove the cause of the finding and keep the behaviour")
    return ("Fix the security finding in the Python function. Keep its name, arguments and "
            "behaviour. Answer with the fixed function only, in a ```python block.\n\n"
            f"{_EXAMPLE}\n\nFinding: {rule} {target.message}\nHint: {hint}\nBefore:\n"
            f"```python\n{before}\n```\nAfter:\n")


def helper_prompt(target: Target) -> str:
    """The prompt of a helper target: signature and docstring, the function to complete."""
    task = target.helper
    if task is None:
        raise ValueError(f"{target.target_id} is not a helper target")
    doc = "\n    ".join(task.doc.splitlines())
    return ("Write the Python function below. Use only the standard library. Answer with "
            "the whole function only, in a ```python block.\n\n"
            f"```python\n{task.signature}\n    \"\"\"{doc}\"\"\"\n```\n")


def prompt_for(target: Target, repo: Mapping[str, str]) -> str:
    """The prompt for ``target`` (``repo``: the scratch repository's files); raises
    :class:`ValueError` when a fix's file is gone."""
    if target.kind == "finding_fix":
        source = repo.get(target.file_path)
        if source is None:
            raise ValueError(f"{target.file_path} is not in the scratch repository")
        return fix_prompt(target, source)
    return helper_prompt(target)


def take_function(answer: str, name: str) -> tuple[str, list[str]]:
    """``(function source, import lines)`` of the first top-level function ``name`` in the
    code of ``answer`` and its top-level ``import``/``from … import`` statements. Raises
    :class:`ValueError` when the code does not parse or has no such function."""
    code = extract_code(answer)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"the model's code does not parse: {exc}") from exc
    imports = [ast.get_source_segment(code, n) or "" for n in tree.body
               if isinstance(n, ast.Import | ast.ImportFrom) and not getattr(n, "level", 0)]
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines = code.splitlines()[start - 1:node.end_lineno]
            return "\n".join(lines) + "\n", [i for i in imports if i]
    raise ValueError(f"the model's answer has no function {name}()")


def splice_function(source: str, name: str, function: str, imports: list[str]) -> str:
    """``source`` with its top-level function ``name`` replaced by ``function`` and the
    ``imports`` it lacks added after its last top-level import (or its docstring). Raises
    :class:`ValueError` when ``source`` has no such function."""
    tree = ast.parse(source)
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                 and n.name == name), None)
    if node is None:
        raise ValueError(f"no function {name}() to replace")
    lines = source.splitlines()
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    out = [*lines[:start - 1], *function.rstrip("\n").splitlines(),
           *lines[node.end_lineno or node.lineno:]]
    missing = [i for i in imports if i.strip() not in {ln.strip() for ln in lines}]
    if missing:
        after = 0
        for n in tree.body:
            if isinstance(n, ast.Import | ast.ImportFrom) or (
                    n is tree.body[0] and isinstance(n, ast.Expr)
                    and isinstance(n.value, ast.Constant)):
                after = n.end_lineno or n.lineno
        out[after:after] = missing
    return "\n".join(out) + "\n"


def _diff(path: str, before: str | None, after: str) -> str:
    old = [] if before is None else before.splitlines()
    return "\n".join(difflib.unified_diff(
        old, after.splitlines(), "/dev/null" if before is None else f"a/{path}", f"b/{path}",
        lineterm="")) + "\n"


def build_record(target: Target, answer: str, *, proposal_id: str, agent_id: str,
                 agent_type: str, now_ms: int, repo: Mapping[str, str]) -> dict[str, Any]:
    """The ``proposal_submitted`` (v2, with ``target``) of the model's ``answer`` to
    ``target``'s prompt. Raises :class:`ValueError` when the answer holds no usable function
    (module doc) or the change is empty."""
    function, imports = take_function(answer, target.function)
    files: dict[str, tuple[str | None, str]] = {}
    if target.kind == "finding_fix":
        before = repo[target.file_path]
        after = splice_function(before, target.function, function, imports)
        if after == before:
            raise ValueError(f"the model's {target.function}() is the original")
        files[target.file_path] = (before, after)
        title = f"{agent_id}: fix {', '.join(target.rules)} in {target.function}()"
    else:
        task = target.helper
        if task is None:
            raise ValueError(f"{target.target_id} is not a helper target")
        head = "\n".join(imports) + "\n\n\n" if imports else ""
        files[target.file_path] = (None, head + function)
        module = target.file_path[:-3].replace("/", ".")
        for test in target.tests:
            files[test] = (None, task.test_source(module))
        title = f"{agent_id}: add {task.slug}() ({task.category})"
    before_main, after_main = files[target.file_path]
    return {"event_id": str(uuid.uuid5(_NS, proposal_id)), "occurred_at": now_ms,
            "producer": "agents.proposals.draft", "proposal_id": proposal_id,
            "agent_id": agent_id, "agent_type": agent_type, "title": title,
            "description": f"Drafted by {agent_id}'s model, target {target.target_id}: "
                           f"{target.description}",
            "file_path": target.file_path, "code_before": before_main,
            "code_after": after_main,
            "unified_diff": "".join(_diff(p, b, a) for p, (b, a) in files.items()),
            "target_repo": SCRATCH_REPO, "status": "submitted",
            "target": target.to_record()}
