"""Knowledge-verification items generated from source passages: cloze deletion of a key term,
graded by exact match (issue #20 item 7).

Deterministic: the same passages and seed give the same items, ids and bank version.

- Sentences: a passage split at sentence ends; kept when 8–40 words long, prose (a capital
  first, a full stop last) and free of code or markup (backticks, braces, brackets, quotes,
  ``<>*#_|=$`` and backslashes, ``://``, a leading ``- ``).
- Key term: the sentence's word (letters first, 4+ characters, not a stop word, once in the
  sentence) that is rarest in the whole corpus (fewest passages containing it), then the
  longest, then alphabetical — the specific term a reader of that passage would have learned.
- Item: ``Fill in the blank: <sentence with ____>``, scorer ``exact`` with the term as the
  only answer, category knowledge_verification, tier basic, ``source`` the passage's source;
  the id hashes the passage and the sentence. One item per usable sentence (generator v2; v1
  took only a passage's first); which items are kept is decided by SHA-256 of ``seed:id``
  (a seeded shuffle).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from agents.custody.bank import Bank
from agents.custody.items import Category, Item, Tier
from agents.knowledge.grounding import BLANK, CLOZE_LEAD
from agents.knowledge.passages import Passage

__all__ = ["BLANK", "GENERATOR_VERSION", "Cloze", "cloze_bank", "cloze_items", "make_cloze",
           "make_clozes", "to_item"]

#: Bumped whenever the rules above change (part of the bank version).
GENERATOR_VERSION = 2
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*[A-Za-z0-9]")
_CODE = re.compile(r"[`{}|=$\\<>*#\[\]_\"]|://|^- ")
_PROSE = re.compile(r"^[A-Z].*[a-z0-9)][.]$")
_STOP_WORDS = """
about above after again against also among another because been before being below between
both cannot could does doing down during each either every from further have having here
into itself just like made make many more most much must never only other over same should
since some such than that their them then there these they this those through under until
upon very was were what when where which while with within without would your yours will
using used uses use also can may might shall the and for are but not you all any its our out
one two how who why via per
"""
_STOP = frozenset(_STOP_WORDS.split())


@dataclass(frozen=True, slots=True)
class Cloze:
    """One cloze deletion: the ``question`` (the sentence with :data:`BLANK`), the deleted
    ``answer``, the ``sentence`` and the ``passage`` it came from."""

    question: str
    answer: str
    sentence: str
    passage: Passage

    @property
    def item_id(self) -> str:
        """``kvc-`` and 12 hex digits of SHA-256 of the passage hash and the sentence."""
        digest = hashlib.sha256(f"{self.passage.content_hash}:{self.sentence}".encode())
        return f"kvc-{digest.hexdigest()[:12]}"


def _document_frequency(passages: Sequence[Passage]) -> Counter[str]:
    df: Counter[str] = Counter()
    for passage in passages:
        df.update({w.lower() for w in _WORD.findall(passage.text)})
    return df


def make_cloze(passage: Passage, df: Counter[str]) -> Cloze | None:
    """The first usable sentence of ``passage`` with its key term deleted (module doc), or
    None. ``df``: passages per lower-cased word over the corpus."""
    made = make_clozes(passage, df)
    return made[0] if made else None


def make_clozes(passage: Passage, df: Counter[str]) -> list[Cloze]:
    """Every usable sentence of ``passage`` with its key term deleted (module doc), in
    order. ``df``: passages per lower-cased word over the corpus."""
    out: list[Cloze] = []
    for sentence in _SENTENCE.split(" ".join(passage.text.split())):
        words = sentence.split()
        if not 8 <= len(words) <= 40 or _CODE.search(sentence) or not _PROSE.match(sentence):
            continue
        found = _WORD.findall(sentence)
        counts = Counter(w.lower() for w in found)
        terms = [w for w in found if len(w) >= 4 and w.lower() not in _STOP
                 and counts[w.lower()] == 1]
        if not terms:
            continue
        term = min(terms, key=lambda w: (df.get(w.lower(), 0), -len(w), w))
        blanked = re.sub(rf"(?<![A-Za-z0-9_-]){re.escape(term)}(?![A-Za-z0-9_-])", BLANK,
                         sentence, count=1)
        if blanked == sentence:
            continue
        out.append(Cloze(f"{CLOZE_LEAD} {blanked}", term, sentence, passage))
    return out


def cloze_items(passages: Sequence[Passage], *, seed: int, n: int) -> list[Cloze]:
    """At most ``n`` clozes from ``passages`` (one per usable sentence), chosen by a seeded
    shuffle and returned sorted by item id. Raises ``ValueError`` if ``n`` < 1."""
    if n < 1:
        raise ValueError("n must be >= 1")
    df = _document_frequency(passages)
    made = {c.item_id: c for p in passages for c in make_clozes(p, df)}
    order = sorted(made, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    return [made[i] for i in sorted(order[:n])]


def to_item(cloze: Cloze) -> Item:
    """The custody :class:`~agents.custody.items.Item` of ``cloze`` (exact match)."""
    return Item(id=cloze.item_id, category=Category.KNOWLEDGE_VERIFICATION, tier=Tier.BASIC,
                prompt=cloze.question, scorer="exact", params={"answers": [cloze.answer]},
                max_tokens=16, reference=cloze.answer, source=cloze.passage.source)


def cloze_bank(bank: Bank, clozes: Sequence[Cloze]) -> Bank:
    """``bank`` plus the items of ``clozes``, as a new bank version:
    ``<version>+cloze.<GENERATOR_VERSION>.<12 hex of SHA-256 of the sorted item ids>``.
    Raises ``ValueError`` when an id is already in the bank."""
    items = [to_item(c) for c in clozes]
    clash = {i.id for i in items} & {i.id for i in bank.items}
    if clash:
        raise ValueError(f"cloze ids already in the bank: {sorted(clash)[:3]}")
    digest = hashlib.sha256("\n".join(sorted(i.id for i in items)).encode()).hexdigest()[:12]
    return Bank(version=f"{bank.version}+cloze.{GENERATOR_VERSION}.{digest}",
                items=tuple(sorted((*bank.items, *items), key=lambda i: i.id)))
