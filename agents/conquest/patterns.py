"""Build-failure patterns: a small, documented table and a classifier (pure).

Each :class:`Pattern` has an id, regular expressions tried against a failed build's log
excerpt (``build_event.message``), and the advice a recommendation carries. The first pattern
(table order) with a matching expression wins; the table is ordered from the most specific
cause to the most generic, so a timeout in a test run is a ``timeout`` and not a
``test_assertion``. Nothing matching is ``unclassified``.

==========================  =============================================================
pattern                     typical log lines
==========================  =============================================================
``dependency_resolution``   pip ``ResolutionImpossible``, ``No matching distribution``,
                            ``Could not find a version``, npm ``ERESOLVE``
``import_error``            ``ModuleNotFoundError``, ``ImportError: cannot import name``
``oom``                     ``MemoryError``, ``Killed`` / exit 137, ``out of memory``,
                            ``OOMKilled``, ``Cannot allocate memory``
``timeout``                 ``TimeoutError``, ``timed out``, ``Timeout``,
                            ``deadline exceeded``, exit 124
``lint``                    ruff/flake8 codes (``E501``, ``F401`` after a ``path:line:col``),
                            ``mypy`` ``error:`` lines, ``would reformat``
``test_assertion``          ``AssertionError``, pytest ``FAILED … assert``, ``N failed``
==========================  =============================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PATTERNS", "UNCLASSIFIED", "Match", "Pattern", "classify"]


@dataclass(frozen=True, slots=True)
class Pattern:
    """A failure pattern: ``id``, ``expressions`` (case-insensitive regexes), the
    recommendation's ``title``/``advice`` and its ``priority`` (0..100)."""

    id: str
    expressions: tuple[str, ...]
    title: str
    advice: str
    priority: int


@dataclass(frozen=True, slots=True)
class Match:
    """A classification: the pattern (``unclassified`` has ``pattern.id == "unclassified"``)
    and the log line that matched (``None`` when unclassified)."""

    pattern: Pattern
    line: str | None


PATTERNS: tuple[Pattern, ...] = (
    Pattern("dependency_resolution",
            (r"ResolutionImpossible", r"No matching distribution found",
             r"Could not find a version that satisfies", r"\bERESOLVE\b",
             r"conflicting dependencies", r"version solving failed"),
            "Pin or relax conflicting dependencies",
            "Dependency resolution failed: pin the conflicting packages in a constraints file,"
            " or widen the version range; cache a known-good lock file.", 70),
    Pattern("import_error",
            (r"ModuleNotFoundError", r"ImportError", r"No module named"),
            "Fix a missing or renamed import",
            "A module failed to import: add the missing dependency to the package's"
            " requirements or fix the import path; add an import smoke test.", 60),
    Pattern("oom",
            (r"MemoryError", r"out of memory", r"OOMKilled", r"Cannot allocate memory",
             r"exit (?:code|status)? ?137", r"\bKilled\b"),
            "Reduce memory use or raise the build's memory limit",
            "The build ran out of memory: lower parallelism (e.g. -j / xdist workers), build"
            " in smaller steps, or give the runner more memory.", 80),
    Pattern("timeout",
            (r"TimeoutError", r"timed out", r"\btimeout\b", r"deadline exceeded",
             r"exit (?:code|status)? ?124"),
            "Speed up or split the slow step",
            "A step hit its time limit: find the slow test or download, cache it, split the"
            " job, or raise the limit only with evidence.", 50),
    Pattern("lint",
            (r"^\S+:\d+:\d+: [A-Z]{1,3}\d{2,4}\b", r"\berror: .*\[[a-z-]+\]$",
             r"would reformat", r"Found \d+ errors?\.", r"\bruff\b.*\bfailed\b"),
            "Fix lint and type errors before the build",
            "Lint or type checks failed: run the linters locally or in a pre-commit hook so"
            " the build does not spend a runner on them.", 30),
    Pattern("test_assertion",
            (r"AssertionError", r"^FAILED ", r"\bassert\b", r"\d+ failed"),
            "Fix the failing tests",
            "Tests failed on an assertion: the change broke expected behaviour; reproduce"
            " with the failing test id and fix the code or the test.", 40),
)

UNCLASSIFIED = Pattern("unclassified", (), "Investigate an unclassified build failure",
                       "No known pattern matched the log excerpt: read the full log.", 20)
_COMPILED = tuple((p, [re.compile(e, re.IGNORECASE | re.MULTILINE) for e in p.expressions])
                  for p in PATTERNS)


def classify(log_excerpt: str | None) -> Match:
    """The first pattern of :data:`PATTERNS` matching ``log_excerpt`` and the matched line
    (stripped, at most 300 characters), else :data:`UNCLASSIFIED`."""
    text = log_excerpt or ""
    for pattern, regexes in _COMPILED:
        for rx in regexes:
            m = rx.search(text)
            if m:
                start = text.rfind("\n", 0, m.start()) + 1
                end = text.find("\n", m.end())
                line = text[start:end if end >= 0 else len(text)].strip()[:300]
                return Match(pattern, line)
    return Match(UNCLASSIFIED, None)
