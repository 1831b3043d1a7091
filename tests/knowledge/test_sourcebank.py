"""The live custody bank: the packaged bank plus cloze items cut from the offline sources
(agents.knowledge.sourcebank), deterministic and versioned."""

from __future__ import annotations

import asyncio

import pytest

from agents.custody.bank import load_bank
from agents.custody.items import Category
from agents.knowledge.sourcebank import load_source_corpus, source_bank


@pytest.fixture(scope="module")
def corpus():
    return asyncio.run(load_source_corpus(("package:bandit", "package:httpx",
                                           "package:not-a-package-xyz", "pydoc:subprocess")))


def test_corpus_reads_installed_docs_and_says_what_failed(corpus):
    assert {d.url for d in corpus.documents} == {"package:bandit", "package:httpx",
                                                 "pydoc:subprocess"}
    assert "package:not-a-package-xyz" in corpus.failed
    assert {p.source for p in corpus.passages} == {"package:bandit", "package:httpx",
                                                   "pydoc:subprocess"}


def test_bank_gains_source_items_as_a_new_version(corpus):
    base = load_bank()
    bank = source_bank(base, corpus, n=30)
    added = [i for i in bank.items if i.id.startswith("kvc-")]
    assert 0 < len(added) <= 30 and len(bank.items) == len(base.items) + len(added)
    assert bank.version.startswith(base.version + "+cloze.")
    assert bank.content_hash != base.content_hash
    assert {i.category for i in added} == {Category.KNOWLEDGE_VERIFICATION}
    assert {i.source for i in added} <= {"package:bandit", "package:httpx", "pydoc:subprocess"}
    again = source_bank(base, corpus, n=30)
    assert (again.version, again.content_hash) == (bank.version, bank.content_hash)


def test_zero_items_is_the_packaged_bank(corpus):
    assert source_bank(load_bank(), corpus, n=0) is load_bank()
    with pytest.raises(ValueError):
        source_bank(load_bank(), corpus, n=-1)
