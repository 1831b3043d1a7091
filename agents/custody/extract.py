"""Pull the gradable part out of a model's free-text answer: code, JSON, a letter, a number.

Models wrap answers in prose and Markdown; every function here is total (never raises) and
returns ``None`` when nothing usable is found, so a scorer can fail the answer with a reason.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from typing import Any

__all__ = [
    "extract_choice",
    "extract_code",
    "extract_cwes",
    "extract_json",
    "extract_number",
    "final_answer_candidates",
    "parses",
]

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PY_LANGS = {"", "python", "py", "python3", "py3"}
_CODE_START = re.compile(r"^(?:def |class |import |from |@|async def |[A-Za-z_]\w* = )")
_ANSWER_MARK = re.compile(r"(?i)\b(?:final\s+)?answer\s*(?:is)?\s*[:=\-]?\s*")
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")
_CWE = re.compile(r"(?i)\bCWE[\s\-_:]*(\d{1,4})\b")


def parses(code: str) -> bool:
    """Does ``code`` parse as Python (:func:`ast.parse`)?"""
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def extract_code(text: str) -> str:
    """The Python code of an answer.

    Fenced blocks tagged ``python``/``py`` (or untagged) win; of several, the longest; an
    unterminated fence (answer cut at the token limit) runs to the end. Without fences, leading
    prose is dropped up to the first line that starts like code (indented code is dedented),
    and trailing prose lines are dropped until the rest parses. Returns ``""`` for an empty answer.
    """
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in _PY_LANGS]
    if blocks:
        return str(max(blocks, key=len)).strip("\n")
    lines = text.strip("\n").splitlines()
    if parses("\n".join(lines)):
        return "\n".join(lines)
    start = next((i for i, line in enumerate(lines) if _CODE_START.match(line.lstrip())), 0)
    body = textwrap.dedent("\n".join(lines[start:])).splitlines()
    for end in range(len(body), 0, -1):
        candidate = "\n".join(body[:end])
        if parses(candidate):
            return candidate
    return "\n".join(body)


def extract_json(text: str) -> Any | None:
    """The first JSON value of an answer: a ```json fence first, else the first ``{``/``[`` at
    which a complete JSON document decodes. ``None`` when there is none."""
    fenced = [body for lang, body in _FENCE.findall(text) if lang.lower() in {"json", ""}]
    decoder = json.JSONDecoder()
    for source in [*fenced, text]:
        for match in re.finditer(r"[\[{]", source):
            try:
                value, _ = decoder.raw_decode(source, match.start())
            except json.JSONDecodeError:
                continue
            return value
    return None


def final_answer_candidates(text: str) -> list[str]:
    """Strings that may be the answer: the text after the last "Answer:" mark (if any), the last
    non-empty line, and the whole text; each stripped of Markdown emphasis and quotes."""
    stripped = text.strip()
    out: list[str] = []
    marks = list(_ANSWER_MARK.finditer(stripped))
    if marks:
        tail = stripped[marks[-1].end() :].strip()
        out.append(tail.splitlines()[0] if tail else "")
    lines = [line for line in stripped.splitlines() if line.strip()]
    if lines:
        out.append(lines[-1])
    out.append(stripped)
    return [c.strip().strip("*_`\"'").strip() for c in out]


def extract_choice(text: str, letters: str) -> str | None:
    """The option letter chosen (upper case, one of ``letters``) or ``None``.

    Looks for "Answer: X" / "answer is (X)" first, then a letter opening the answer ("B) …",
    "(B)", "B."), then a single standalone option letter anywhere. Two different standalone
    letters and no explicit mark is ambiguous → ``None``.
    """
    allowed = re.escape(letters.upper())
    marked = re.findall(rf"(?i)\banswer\s*(?:is)?\s*[:=\-]?\s*\(?\**([{allowed}])\b", text)
    if marked:
        return str(marked[-1]).upper()
    opening = re.match(rf"\s*[\*_`]*\(?([{allowed}])(?:[).:\s*_`]|$)", text)
    if opening:
        return str(opening.group(1)).upper()
    loose = set(re.findall(rf"\b([{allowed}])\b", text))
    return str(loose.pop()) if len(loose) == 1 else None


def extract_number(text: str) -> float | None:
    """A number from the answer: the first after an "Answer:" mark, else the last in the text.
    Thousands separators (``1,000``) and exponents are understood; ``%`` is ignored (the item
    states its unit). ``None`` when there is no number."""
    marks = list(_ANSWER_MARK.finditer(text))
    region = text[marks[-1].end() :] if marks else text
    found = [m.group(0) for m in _NUMBER.finditer(region) if re.search(r"\d", m.group(0))]
    if not found:
        return None
    raw = found[0] if marks else found[-1]
    try:
        return float(raw.replace(",", ""))
    except ValueError:
        return None


def extract_cwes(text: str) -> list[int]:
    """CWE ids mentioned, in order of first mention (``"CWE-89"``, ``"cwe 79"``)."""
    seen: list[int] = []
    for match in _CWE.finditer(text):
        cwe = int(match.group(1))
        if cwe not in seen:
            seen.append(cwe)
    return seen
