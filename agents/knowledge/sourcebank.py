"""The custody bank with knowledge-verification items cut from the offline sources (issue #20
item 7): custody tests what the agents could have learned.

The sources are the learning cycles' own trusted offline corpus (``package:NAME``
documentation and ``pydoc:MODULE`` docstrings,
:data:`~agents.learning.defaults.DEFAULT_SOURCES`), read with the cycles' fetcher and cut
into section passages exactly as a cycle cuts them
(:func:`~agents.knowledge.passages.chunk_sections`); the items are cloze deletions
(:mod:`agents.knowledge.cloze`), exact-match scored, basic tier, each carrying its ``source``
so a retest can draw from what the agent just read. The bank version names the generator and
a digest of the item ids, and the bank's content hash covers every item: a run records both,
so a change of an installed package's documentation is a new, visible bank version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agents.custody.bank import Bank
from agents.knowledge.cloze import cloze_bank, cloze_items
from agents.knowledge.passages import Passage, chunk_sections
from agents.learning.defaults import DEFAULT_SOURCES
from agents.learning.sources import Document, SourceFailed, fetch_document

__all__ = ["BANK_SEED", "SourceCorpus", "load_source_corpus", "source_bank"]

#: The seed of the cloze selection of the live bank (fixed: one bank version per corpus).
BANK_SEED = 0


@dataclass(frozen=True, slots=True)
class SourceCorpus:
    """The readable offline ``documents``, their ``passages`` (section chunks, document
    order) and the sources that could not be read with the reason (``failed``)."""

    documents: tuple[Document, ...]
    passages: tuple[Passage, ...]
    failed: dict[str, str] = field(default_factory=dict)


async def load_source_corpus(urls: Sequence[str] = DEFAULT_SOURCES) -> SourceCorpus:
    """Read each offline source of ``urls`` (``package:NAME``, ``pydoc:MODULE``; sorted) and
    cut the passages. A source that cannot be read (missing, empty) is listed in ``failed``
    with the reason; nothing raises."""
    trusted = set(urls)
    docs: list[Document] = []
    failed: dict[str, str] = {}
    for url in sorted(trusted):
        try:
            docs.append(await fetch_document(url, trusted))
        except SourceFailed as exc:
            failed[url] = str(exc)
    passages = [p for d in docs for p in chunk_sections(d.text, source=d.url, title=d.title)]
    return SourceCorpus(tuple(docs), tuple(passages), failed)


def source_bank(base: Bank, corpus: SourceCorpus, *, n: int, seed: int = BANK_SEED) -> Bank:
    """``base`` plus at most ``n`` cloze items cut from ``corpus`` (a new bank version, see
    :func:`~agents.knowledge.cloze.cloze_bank`); ``base`` itself when ``n`` is 0 or no item
    can be made. Raises ``ValueError`` if ``n`` < 0 or an item id clashes with ``base``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    clozes = cloze_items(corpus.passages, seed=seed, n=n) if n and corpus.passages else []
    return cloze_bank(base, clozes) if clozes else base
