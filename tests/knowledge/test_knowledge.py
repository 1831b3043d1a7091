"""Pure knowledge logic: passages, cloze items, grounded prompts, McNemar, recall@k, and the
memory view's rows."""

from __future__ import annotations

import asyncio
import math

import pytest

from agents.custody.bank import Bank
from agents.custody.scorers import score
from agents.knowledge.answering import CustodyMemory
from agents.knowledge.cloze import GENERATOR_VERSION, cloze_bank, cloze_items, to_item
from agents.knowledge.grounding import (
    BLANK,
    answer_prefill,
    answer_schema,
    cloze_parts,
    grounded_prompt,
    unwrap_answer,
)
from agents.knowledge.measure import discordant, mcnemar_exact, recall_at_k
from agents.knowledge.passages import chunk_sections, content_hash, rank_passages
from agents.knowledge.recall import KnowledgeRef, Recalled
from sinks.postgres.views import build_projections
from sinks.records import ConsumedRecord

DOC = """# Consumers

Kafka consumers in a group share the partitions of the subscribed topics between them.
The cooperative sticky assignor moves only the partitions that must move during a rebalance.

## Producers

An idempotent producer writes each record exactly once per partition despite client retries.
"""


def test_chunks_follow_sections_and_hash_normalised_text():
    ps = chunk_sections(DOC, source="package:x", title="x")
    assert [p.section for p in ps] == ["Consumers", "Producers"]
    assert ps[0].content_hash == content_hash(ps[0].text.upper() + "  ")
    assert chunk_sections(DOC, source="package:x") == chunk_sections(DOC, source="package:x")
    assert rank_passages("idempotent producer", ps, 1) == [ps[1]]


def test_cloze_items_are_deterministic_and_pass_with_the_deleted_term():
    ps = chunk_sections(DOC, source="package:x", title="x")
    items = cloze_items(ps, seed=1, n=5)
    assert items == cloze_items(ps, seed=1, n=5) and items
    for c in items:
        assert BLANK in c.question and c.answer in c.sentence
        assert score(to_item(c), c.answer).passed
        assert not score(to_item(c), "nonsense").passed
    bank = cloze_bank(Bank("v1", ()), items)
    assert bank.version.startswith(f"v1+cloze.{GENERATOR_VERSION}.")
    assert len(bank.items) == len(items)
    assert cloze_bank(Bank("v1", ()), items).version == bank.version


def _hit(text: str, offset: int) -> Recalled:
    return Recalled(text, "passage", "package:x", KnowledgeRef("t", 0, offset, f"h{offset}"), 1.0)


def test_grounded_prompt_puts_memory_before_a_cloze_completion():
    question = f"Fill in the blank: The cooperative sticky {BLANK} moves partitions."
    assert cloze_parts(question) == ("The cooperative sticky ____ moves partitions.",
                                     "The cooperative sticky")
    with_memory = grounded_prompt("ROLE", question, [_hit("assignor text", 3)])
    assert with_memory.startswith("ROLE") and "[1] assignor text" in with_memory
    assert BLANK not in with_memory and "moves partitions" not in with_memory
    assert answer_prefill(question) == "The cooperative sticky "
    assert answer_prefill("Which?") == ""
    assert "[1]" not in grounded_prompt("ROLE", question, [])
    assert unwrap_answer(" assignor moves", question) == "assignor"
    assert unwrap_answer('{"answer": "B"}', "Which?") == "B"
    assert answer_schema("choice", {"options": {"B": "x", "A": "y"}}) == {
        "type": "object", "properties": {"answer": {"enum": ["A", "B"]}}, "required": ["answer"]}
    assert answer_schema("exact", {"answers": ["x"]}) is None


def test_custody_memory_records_the_knowledge_on_the_request():
    asked = {}

    async def recall(agent_id, query, k):
        return [_hit("The cooperative sticky assignor moves partitions.", 9)]

    async def ask(agent_id, prompt, **kw):
        asked.update(kw, prompt=prompt)
        # a ranked cloze: the model's choice is one of the continuations it was given
        return next(c for c in kw["choices"] if c.lstrip().startswith("assignor"))

    ps = chunk_sections(DOC, source="package:x")
    item = to_item(cloze_items(ps, seed=1, n=1)[0])
    mem = CustodyMemory(recall, ask, new_id=lambda: "inf-1")
    out = asyncio.run(mem.answer("guardian-1", "guardian", item, 16, 7))
    assert out.request_id == "inf-1" and out.text == "assignor"
    assert asked["schema"] is None and asked["prefill"] == cloze_parts(item.prompt)[1]
    assert [c.split()[0] for c in asked["choices"]] == ["The", "cooperative", "sticky",
                                                        "assignor", "moves", "partitions"]
    assert asked["knowledge"] == [{"topic": "t", "partition": 0, "offset": 9,
                                   "content_hash": "h9"}]
    assert "Guardian" in asked["prompt"]


def test_mcnemar_exact_is_the_binomial_tail_on_discordant_pairs():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 2**10)
    assert mcnemar_exact(3, 5) == pytest.approx(min(1, 2 * sum(math.comb(8, i)
                                                           for i in range(4)) / 256))
    assert mcnemar_exact(5, 3) == mcnemar_exact(3, 5)
    assert discordant([True, True, False], [False, True, True]) == (1, 1)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 0)


def test_recall_at_k():
    assert recall_at_k([["a", "b"], ["c"]], ["b", "x"], 5) == 0.5
    assert recall_at_k([["a", "b"]], ["b"], 1) == 0.0


def test_memory_rows_come_from_passages_insights_and_accepted_transfers():
    proj = next(p for p in build_projections() if p.name == "agent_memory")
    passage = {"agent_id": "g", "occurred_at": 1, "topic": "t", "source_url": "u", "title": "T",
               "passages": [{"text": "abc def", "section": "S", "content_hash": "h1"}]}
    rows = list(proj.to_rows(ConsumedRecord("r", 1, 5, 0, "internet_learning_result", passage)))
    assert rows[0]["content_hash"] == "h1" and rows[0]["src_offset"] == 5
    assert rows[0]["kind"] == "passage" and rows[0]["title"] == "T — S"
    rejected = {"agent_id": "g", "occurred_at": 1, "knowledge": "x", "accepted": False}
    assert not list(proj.to_rows(ConsumedRecord("k", 0, 1, 0, "knowledge_transfer", rejected)))
    insight = {"agent_id": "g", "occurred_at": 1, "event_type": "insight", "insight": "Abc  def"}
    row = next(iter(proj.to_rows(ConsumedRecord("e", 0, 2, 0, "learning_event", insight))))
    assert row["content_hash"] == content_hash("abc def")


def test_a_cloze_answered_with_memory_is_constrained_to_words_of_the_notes():
    from agents.knowledge.grounding import cloze_schema, notes_vocabulary

    notes = [_hit("The sticky assignor moves the partitions; the assignor is cooperative.", 1),
             _hit("Brokers keep replicas.", 2)]
    assert notes_vocabulary(notes) == ["sticky", "assignor", "moves", "partitions",
                                       "cooperative", "Brokers", "keep", "replicas"]
    assert cloze_schema(notes) == {"type": "string", "enum": notes_vocabulary(notes)}
    assert cloze_schema([]) is None
