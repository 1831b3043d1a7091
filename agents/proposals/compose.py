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

**The model's turn is prefilled** (:func:`prefill_for`) with the opening of the code block
and the function's header — the signature and docstring of a helper, the ``def`` line(s) and
docstring of the function to fix — so what the model writes is the function's body. The
270M base model, asked for a whole function, echoed the prompt instead (its role line and
memory notes, then an unterminated docstring: 0 of 6 helper drafts parsed with memory in the
prompt, measured on the shipped model); prefilled, it writes a body every time.
**The body ends where the function ends**: at the first non-empty line that is not indented
(the stop sequences of the HumanEval protocol — ``\ndef``, ``\nclass``, ``\nif``,
``\nprint``, ``\n#`` — generalized to any top-level line; Chen et al. 2021, "Evaluating
Large Language Models Trained on Code", section 2.2), and when the rest does not parse the
longest parsing prefix of its lines is kept. Nothing is added to the model's code: the
function proposed is the header plus a prefix of what the model wrote.

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

from agents.custody.extract import parses
from agents.proposals.scratch import SCRATCH_REPO
from agents.proposals.targets import FIX_HINTS, Target, enclosing_function

__all__ = ["DRAFT_STOP", "build_record", "extract_code", "fix_prompt", "helper_prompt",
           "prefill_for", "prompt_for", "splice_function", "take_function"]

#: Where the model's answer ends: the prefill opened a code block, its closing fence ends the
#: code (a stop sequence on the request - generation stops there instead of running on to
#: ``max_tokens``: the 270M model wrote another prompt after the block in every draft measured)
DRAFT_STOP = ("```",)

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


def _header(source: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The lines of ``node`` in ``source`` before its body's first statement that is not the
    docstring: decorators, the ``def`` line(s) and the docstring."""
    body = node.body[1:] if (node.body and isinstance(node.body[0], ast.Expr)
                             and isinstance(node.body[0].value, ast.Constant)
                             and isinstance(node.body[0].value.value, str)) else node.body
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    end = body[0].lineno - 1 if body else (node.end_lineno or node.lineno)
    return "\n".join(source.splitlines()[start - 1:end]) + "\n"


def prefill_for(target: Target, repo: Mapping[str, str]) -> str:
    """The start of the model's turn for ``target`` (module doc): the code block's opening
    fence and the function's header — a helper's signature and docstring as in its prompt, a
    fix's header from the file in ``repo`` (``""`` when the function is not found there; the
    prompt then fails on its own)."""
    if target.kind == "finding_fix":
        source = repo.get(target.file_path, "")
        node = enclosing_function(source, target.line or 0) if source else None
        if node is None or node.name != target.function:
            return ""
        return "```python\n" + _header(source, node)
    task = target.helper
    if task is None:
        raise ValueError(f"{target.target_id} is not a helper target")
    doc = "\n    ".join(task.doc.splitlines())
    return f"```python\n{task.signature}\n    \"\"\"{doc}\"\"\"\n"


def _to_function_end(code: str, name: str) -> str:
    """``code`` cut where the top-level function ``name`` ends (module doc): lines up to the
    first non-empty, non-indented line after its ``def``; then the longest prefix of those
    lines that parses. ``code`` itself when it has no such ``def`` line or already parses."""
    if parses(code):
        return code
    lines = code.splitlines()
    start = next((i for i, line in enumerate(lines)
                  if re.match(rf"(?:async\s+)?def\s+{re.escape(name)}\b", line)), None)
    if start is None:
        return code
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].strip() and not lines[i][0].isspace()), len(lines))
    kept = lines[:end]
    for stop in range(len(kept), start, -1):
        candidate = "\n".join(kept[:stop]) + "\n"
        if parses(candidate):
            return candidate
    return code


def _docstring_only(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Is ``node``'s body nothing but a docstring (or ``...``/``pass``)?"""
    return all(isinstance(n, ast.Pass) or (isinstance(n, ast.Expr)
               and isinstance(n.value, ast.Constant)) for n in node.body)


def take_function(answer: str, name: str) -> tuple[str, list[str]]:
    """``(function source, import lines)`` of the first top-level function ``name`` in the
    code of ``answer`` (cut where that function ends, module doc) and its top-level
    ``import``/``from … import`` statements. Raises :class:`ValueError` when the code does
    not parse, has no such function or the function has no body beyond a docstring."""
    code = _to_function_end(extract_code(answer), name)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"the model's code does not parse: {exc}") from exc
    imports = [ast.get_source_segment(code, n) or "" for n in tree.body
               if isinstance(n, ast.Import | ast.ImportFrom) and not getattr(n, "level", 0)]
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            if _docstring_only(node):
                raise ValueError(f"the model wrote no body for {name}()")
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
