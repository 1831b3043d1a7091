"""Deterministic scorers: ``score(item, answer_text) -> ScoreResult``.

Each kind is a pure function of the item's ``params`` and the answer (the code kinds also run
the answer in :mod:`agents.custody.sandbox`); its version is bumped whenever its rules change,
and every result carries it. Kinds and their params:

==============  ===============================================  ===========================
kind            params                                           passes when
==============  ===============================================  ===========================
``choice``      ``options`` {letter: text}, ``answer`` letter    the chosen letter is right
``exact``       ``answers`` [text, …]                            a normalised candidate
                                                                 equals one of them
``regex``       ``pattern``, optional ``forbid``                 ``pattern`` is found and
                                                                 ``forbid`` is not (IGNORECASE)
``numeric``     ``value``, ``tolerance`` (absolute)              ``|x - value| <= tolerance``
``json_schema`` ``schema`` (JSON Schema 2020-12)                 the answer's JSON validates
``code_tests``  ``tests``; optional ``prompt``, ``entry_point``,  the program exits 0 in the
                ``check`` (HumanEval style), ``cpu_seconds``     sandbox
``cwe``         ``accept`` [cwe id, …]                           the first CWE named is one
``bandit_fix``  ``tests``; optional ``allow`` [bandit test id]   bandit reports nothing else
                                                                 and the tests pass
==============  ===============================================  ===========================

No scorer here is model-graded (``ScoreResult.model_graded`` is always False); model-graded
scoring is left out on purpose, so every grade is reproducible.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema

from agents.custody.extract import (
    extract_choice,
    extract_code,
    extract_cwes,
    extract_json,
    extract_number,
    final_answer_candidates,
)
from agents.custody.items import Item, ScoreResult
from agents.custody.sandbox import MARKER_FD, SandboxLimits, SandboxResult, run_python
from agents.custody.security import bandit_issues

__all__ = ["DONE_MARK", "REQUIRED_PARAMS", "SCORER_VERSIONS", "Runner", "build_program", "score"]

#: Runs a program; :func:`agents.custody.sandbox.run_python` or a stand-in with its signature.
Runner = Callable[..., SandboxResult]

SCORER_VERSIONS: Mapping[str, int] = {
    "choice": 1, "exact": 1, "regex": 1, "numeric": 1, "json_schema": 1,
    "code_tests": 1, "cwe": 1, "bandit_fix": 1,
}  # fmt: skip

#: Params each kind needs; the bank loader rejects items missing any.
REQUIRED_PARAMS: Mapping[str, frozenset[str]] = {
    "choice": frozenset({"options", "answer"}),
    "exact": frozenset({"answers"}),
    "regex": frozenset({"pattern"}),
    "numeric": frozenset({"value", "tolerance"}),
    "json_schema": frozenset({"schema"}),
    "code_tests": frozenset({"tests"}),
    "cwe": frozenset({"accept"}),
    "bandit_fix": frozenset({"tests"}),
}


def score(item: Item, answer: str, *, runner: Runner = run_python) -> ScoreResult:
    """Grade ``answer`` to ``item`` with the item's scorer kind.

    ``runner`` executes code for ``code_tests`` and ``bandit_fix``. Raises :class:`KeyError`
    for an unknown kind (the bank loader has already rejected those) and
    :class:`~agents.custody.errors.SandboxError` (``SandboxUnavailable``) when the code
    cannot be run in isolation — never a failing grade for that.
    """
    kind = item.scorer
    version = f"{kind}/{SCORER_VERSIONS[kind]}"
    passed, value, detail = _KINDS[kind](item.params, answer, runner)
    return ScoreResult(score=value, passed=passed, detail=detail[:500], scorer_version=version)


_Outcome = tuple[bool, float, str]


def _binary(ok: bool, detail: str) -> _Outcome:
    return ok, 1.0 if ok else 0.0, detail


def _normalise(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(".")


def _choice(params: Mapping[str, Any], answer: str, _: Runner) -> _Outcome:
    letters = "".join(sorted(params["options"]))
    chosen = extract_choice(answer, letters)
    if chosen is None:
        return _binary(False, f"no single option letter of {letters} found")
    return _binary(chosen == params["answer"], f"chose {chosen}, expected {params['answer']}")


def _exact(params: Mapping[str, Any], answer: str, _: Runner) -> _Outcome:
    accepted = {_normalise(str(a)) for a in params["answers"]}
    candidates = [_normalise(c) for c in final_answer_candidates(answer)]
    hit = next((c for c in candidates if c in accepted), None)
    return _binary(hit is not None, f"matched {hit!r}" if hit else "no candidate matched")


def _regex(params: Mapping[str, Any], answer: str, _: Runner) -> _Outcome:
    found = re.search(params["pattern"], answer, re.IGNORECASE | re.MULTILINE)
    forbid = params.get("forbid")
    bad = re.search(forbid, answer, re.IGNORECASE | re.MULTILINE) if forbid else None
    if bad:
        return _binary(False, f"contains forbidden {bad.group(0)!r}")
    return _binary(found is not None, f"found {found.group(0)!r}" if found else "pattern absent")


def _numeric(params: Mapping[str, Any], answer: str, _: Runner) -> _Outcome:
    got = extract_number(answer)
    if got is None:
        return _binary(False, "no number found")
    want, tol = float(params["value"]), float(params["tolerance"])
    return _binary(abs(got - want) <= tol, f"got {got:g}, expected {want:g} ± {tol:g}")


def _json_schema(params: Mapping[str, Any], answer: str, _: Runner) -> _Outcome:
    value = extract_json(answer)
    if value is None:
        return _binary(False, "no JSON value found")
    validator = jsonschema.Draft202012Validator(params["schema"])
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
        return _binary(False, f"{where}: {errors[0].message}")
    return _binary(True, "valid against the schema")


#: What a code item's program writes to ``MARKER_FD`` after its last test.
DONE_MARK = "lvlup:tests-done"
_DONE = f"\n__import__('os').write({MARKER_FD}, b'{DONE_MARK}')\n"


def build_program(params: Mapping[str, Any], code: str) -> str:
    """The program a code item runs: answer code, then ``tests`` (and ``check(entry_point)``),
    then a statement writing :data:`DONE_MARK` to descriptor
    :data:`~agents.custody.sandbox.MARKER_FD`.

    With a ``prompt`` (HumanEval style), an answer that defines ``entry_point`` is appended to
    the prompt (its helper functions and imports stay available; the stub is redefined); an
    answer without that ``def`` is taken as the body completing the prompt.

    The mark makes an answer that ends the process early (``sys.exit(0)``, ``os._exit(0)``)
    fail: the tests did not all run. It travels on its own descriptor to a file outside the
    sandbox, never on stdout, and there is no secret in the process to find: printing
    anything, the program's own source included, cannot pass. Code in the same process that
    knows this protocol can still write the mark itself, as it can defeat ``assert`` with an
    object whose ``__eq__`` is always true — in-process tests stop accidents and lazy gaming,
    not a determined adversary (grading outside the process is the fix for that).
    """
    prompt = str(params.get("prompt", ""))
    entry = params.get("entry_point")
    defines = bool(entry and re.search(rf"^\s*(?:async\s+)?def\s+{entry}\s*\(", code, re.M))
    if prompt and entry and not defines:
        body = code if code[:1] in (" ", "\t") else textwrap.indent(code, "    ")
        program = prompt + body
    else:
        program = f"{prompt}\n\n{code}" if prompt else code
    program = program + "\n\n" + str(params["tests"]) + "\n"
    if params.get("check") and entry:
        program += f"\ncheck({entry})\n"
    program += _DONE
    future = re.findall(r"^from __future__ import [^\n]*$", program, re.M)
    if future:  # must stay the first statements of the module
        rest = re.sub(r"^from __future__ import [^\n]*$", "", program, flags=re.M)
        program = "\n".join(future) + "\n" + rest
    return program


def _run(params: Mapping[str, Any], code: str, runner: Runner) -> tuple[bool, str]:
    """Run the item's program; raises what ``runner`` raises (``SandboxUnavailable``: the
    trial is voided by the worker, never failed)."""
    cpu = int(params.get("cpu_seconds", 5))
    # CPU time decides; the wall limit only catches sleepers, so it is generous for busy hosts
    limits = SandboxLimits(cpu_seconds=cpu, wall_seconds=cpu * 4.0 + 5.0)
    result = runner(build_program(params, code), limits=limits, stdin=b"")
    finished = result.marker == DONE_MARK
    if result.passed and finished:
        return True, f"tests passed in {result.duration_ms} ms"
    if result.passed:
        return False, "the program exited before all tests ran"
    tail = result.stderr.strip().splitlines()[-1:] or [""]
    why = result.killed_reason or f"exit code {result.exit_code}"
    return False, f"tests failed ({why}): {tail[0][:300]}"


def _code_tests(params: Mapping[str, Any], answer: str, runner: Runner) -> _Outcome:
    code = extract_code(answer)
    if not code.strip():
        return _binary(False, "no code found")
    return _binary(*_run(params, code, runner))


def _cwe(params: Mapping[str, Any], answer: str, _: Runner) -> _Outcome:
    named = extract_cwes(answer)
    if not named:
        return _binary(False, "no CWE id named")
    accept = [int(a) for a in params["accept"]]
    return _binary(named[0] in accept, f"named CWE-{named[0]} first, accepted {accept}")


def _bandit_fix(params: Mapping[str, Any], answer: str, runner: Runner) -> _Outcome:
    code = extract_code(answer)
    try:
        ast.parse(code)
        issues = bandit_issues(code)
    except (SyntaxError, ValueError) as exc:
        return _binary(False, f"not valid Python: {exc}")
    allow = set(params.get("allow", []))
    left = [f"{i.test_id}@{i.line}" for i in issues if i.test_id not in allow]
    ok_tests, detail = _run(params, code, runner)
    if left:
        return False, 0.5 if ok_tests else 0.0, f"bandit still reports {', '.join(left)}; {detail}"
    return ok_tests, 1.0 if ok_tests else 0.5, f"bandit clean; {detail}"


_KINDS: Mapping[str, Callable[[Mapping[str, Any], str, Runner], _Outcome]] = {
    "choice": _choice,
    "exact": _exact,
    "regex": _regex,
    "numeric": _numeric,
    "json_schema": _json_schema,
    "code_tests": _code_tests,
    "cwe": _cwe,
    "bandit_fix": _bandit_fix,
}
