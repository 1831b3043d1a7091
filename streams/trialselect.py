"""Selectors over graded item trials, and per-item pass fractions for a paired comparison.

Grammar (shared by ``lvlup custody compare`` and ``GET /api/custody/compare``)::

    selector := term ("," term)*
    term     := "agent:" ID | "model:" NAME | "bank:" VERSION-OR-HASH | "run:" ID
              | "category:" NAME | "tier:" NAME | "window:" [TIME] ".." [TIME]

Terms with different keys must all hold (AND); a key given twice holds when any of its
values does (OR): ``agent:imperium,agent:guardian,tier:basic``. ``window:`` bounds are
ISO-8601 (no zone = UTC) or epoch milliseconds, ``from`` inclusive, ``to`` exclusive, either
may be left open (``window:2026-01-01..``); one window per selector. ``model:`` matches the
model alias the item's inference request asked for, the route that answered it, or a prefix
(8+ characters) of the answering model file's SHA-256; ``bank:`` the bank version a run
recorded or a prefix (8+ characters) of its content hash. A trial whose model is unknown
(answered without a recorded inference request) never matches a ``model:`` term.

Everything here is pure; readers (the log in agents, ClickHouse in the API) build the
:class:`Trial` values. Statistics: :mod:`streams.paired`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from streams.errors import LvlupError
from streams.paired import DEFAULT_RESAMPLES, DEFAULT_SEED, PairedComparison, compare_outcomes

__all__ = ["KEYS", "Selector", "SelectorError", "Trial", "compare_selected", "item_fractions",
           "parse_selector", "parse_time_ms"]

KEYS = ("agent", "model", "bank", "run", "category", "tier", "window")
_PREFIX_MIN = 8
_MAX_TERMS = 32


class SelectorError(LvlupError):
    """A selector that does not parse; ``term`` is the offending text (the CLI exits 2, the
    API answers 400 ``bad_selector``)."""

    def __init__(self, message: str, term: str = "") -> None:
        super().__init__(message)
        self.term = term


@dataclass(frozen=True, slots=True)
class Trial:
    """One graded trial (an item in one epoch of one run). ``occurred_at_ms``: ms since the
    Unix epoch, UTC; ``models``: every name its answer is known by (request alias, route,
    model SHA-256), empty when unknown; ``bank_version``, ``bank_hash``: of its run ("" when
    the run result is not known)."""

    item_id: str
    passed: bool
    agent_id: str
    occurred_at_ms: int
    run_id: str = ""
    category: str = ""
    tier: str = ""
    bank_version: str = ""
    bank_hash: str = ""
    models: tuple[str, ...] = ()


def parse_time_ms(text: str) -> int:
    """ISO-8601 (naive = UTC) or epoch milliseconds → ms since the epoch. Raises
    :class:`SelectorError` for anything else."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise SelectorError(f"not a time: {text!r} (ISO-8601 or epoch milliseconds)",
                            text) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Selector:
    """A parsed selector (module doc). ``values``: key → accepted values (``window`` apart);
    ``since_ms`` / ``until_ms``: the window (None: open); ``text``: as given."""

    text: str
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    since_ms: int | None = None
    until_ms: int | None = None

    @property
    def agents(self) -> tuple[str, ...]:
        """The ``agent:`` values (empty: any agent)."""
        return self.values.get("agent", ())

    def matches(self, trial: Trial) -> bool:
        """Whether ``trial`` satisfies every term."""
        if self.since_ms is not None and trial.occurred_at_ms < self.since_ms:
            return False
        if self.until_ms is not None and trial.occurred_at_ms >= self.until_ms:
            return False
        checks: dict[str, Callable[[str], bool]] = {
            "agent": lambda v: trial.agent_id == v,
            "run": lambda v: trial.run_id == v,
            "category": lambda v: trial.category == v,
            "tier": lambda v: trial.tier == v,
            "bank": lambda v: (trial.bank_version == v or (len(v) >= _PREFIX_MIN
                               and trial.bank_hash.startswith(v))),
            "model": lambda v: any(m == v or (len(v) >= _PREFIX_MIN and len(m) == 64
                                   and m.startswith(v)) for m in trial.models),
        }
        return all(any(checks[key](v) for v in vals) for key, vals in self.values.items())


def _window(term: str, body: str) -> tuple[int | None, int | None]:
    if ".." not in body:
        raise SelectorError(f"window needs FROM..TO (either may be empty): {term!r}", term)
    start, _, end = body.partition("..")
    since = parse_time_ms(start) if start.strip() else None
    until = parse_time_ms(end) if end.strip() else None
    if since is not None and until is not None and since >= until:
        raise SelectorError(f"empty window (from >= to): {term!r}", term)
    return since, until


def parse_selector(text: str) -> Selector:
    """Parse ``text`` (module doc). Raises :class:`SelectorError` naming the bad term for an
    empty selector, an unknown key, an empty value, a bad or repeated window, or more than
    32 terms."""
    terms = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in terms):
        raise SelectorError(f"empty selector or term in {text!r}", text)
    if len(terms) > _MAX_TERMS:
        raise SelectorError(f"more than {_MAX_TERMS} terms", text)
    values: dict[str, list[str]] = defaultdict(list)
    since = until = None
    seen_window = False
    for term in terms:
        key, sep, body = term.partition(":")
        key = key.strip().lower()
        if not sep or key not in KEYS:
            raise SelectorError(f"unknown selector term {term!r}: use "
                                + ", ".join(f"{k}:…" for k in KEYS), term)
        body = body.strip()
        if not body or any(ord(ch) < 32 for ch in body):
            raise SelectorError(f"empty or invalid value in {term!r}", term)
        if key == "window":
            if seen_window:
                raise SelectorError(f"one window per selector: {term!r}", term)
            seen_window = True
            since, until = _window(term, body)
        else:
            values[key].append(body)
    return Selector(text.strip(), {k: tuple(v) for k, v in values.items()}, since, until)


def item_fractions(trials: Iterable[Trial], *selectors: Selector) -> dict[str, float]:
    """Pass fraction per item id over the trials matching every selector in ``selectors``
    (:mod:`streams.paired`: every trial of an item counts, epochs and runs alike)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for trial in trials:
        if all(s.matches(trial) for s in selectors):
            c = counts[trial.item_id]
            c[0] += int(trial.passed)
            c[1] += 1
    return {item: k / n for item, (k, n) in counts.items()}


def compare_selected(trials: Iterable[Trial], a: Selector, b: Selector,
                     base: Selector | None = None, *, resamples: int = DEFAULT_RESAMPLES,
                     seed: int = DEFAULT_SEED, level: float = 0.95) -> PairedComparison:
    """A vs B over ``trials`` (each side also restricted by ``base`` when given), on their
    shared items, with :func:`streams.paired.compare_outcomes` (``resamples`` bootstrap
    replications with ``seed``, interval at ``level``). Raises what that raises."""
    pool = list(trials)
    extra = (base,) if base is not None else ()
    fa, fb = item_fractions(pool, a, *extra), item_fractions(pool, b, *extra)
    return compare_outcomes(fa, fb, resamples=resamples, seed=seed, level=level)
