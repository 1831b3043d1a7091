"""Judged knowledge transfers (issue #20 item 6) with a fake model and a fake memory: accepted
only when the receiver lacks the knowledge and the probe is answered better with it."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from agents.knowledge.passages import content_hash
from agents.knowledge.recall import KnowledgeRef, Recalled
from agents.learning.cycle import AgentInfo
from agents.learning.logic import Insight
from agents.learning.transfers import (
    ADDS_KNOWLEDGE,
    ALREADY_KNOWN,
    NO_GAIN,
    NO_PROBE,
    PROBE_FAILED,
    TransferJudge,
    probe_for,
    transfer_knowledge,
)
from inference.client import InferenceTimeout
from schemas.codec import load_codec
from sinks.postgres.views import build_projections
from sinks.records import ConsumedRecord

TEXT = "Log compaction keeps the latest value for every message key of a partition."
GUARDIAN = AgentInfo("guardian", "guardian", 80, ("secure coding",))
IMPERIUM = AgentInfo("imperium", "imperium", 90, ("AI governance",))
INSIGHT = Insight("imperium", "kafka", TEXT, 0.7, "package:kafka")
REF = KnowledgeRef("lvlup.learning.events", 0, 42, "aaaa")


class FakeModel:
    """Answers a cloze right when the prompt contains ``knows`` (None: never; "": always);
    records every request."""

    def __init__(self, knows: str | None, fail: bool = False) -> None:
        self.knows, self.fail = knows, fail
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, agent_id: str, prompt: str, *, schema: dict[str, Any] | None,
                       max_tokens: int, seed: int, request_id: str,
                       knowledge: list[dict[str, Any]], prefill: str = "",
                       choices: tuple[str, ...] = ()) -> str:
        self.calls.append({"agent_id": agent_id, "prompt": prompt, "knowledge": knowledge,
                           "schema": schema, "prefill": prefill, "request_id": request_id,
                           "choices": choices})
        if self.fail:
            raise InferenceTimeout("no answer within 5 s")
        right = self.knows is not None and self.knows in prompt
        if choices:  # ranked: the right continuation when it knows, else another one
            hits = [c for c in choices if c.split()[0] == "compaction"]
            misses = [c for c in choices if c.split()[0] != "compaction"]
            return (hits or misses)[0] if right else (misses or hits)[0]
        return json.dumps("compaction" if right else "retention")


class FakeMemory:
    """A receiver's memory: ``entries`` per agent, all returned for any query."""

    def __init__(self, entries: dict[str, list[Recalled]] | None = None) -> None:
        self.entries = entries or {}
        self.queries: list[tuple[str, str]] = []

    async def __call__(self, agent_id: str, query: str, k: int) -> list[Recalled]:
        self.queries.append((agent_id, query))
        return self.entries.get(agent_id, [])[:k]


def _df(*texts: str) -> Counter[str]:
    df: Counter[str] = Counter()
    for t in texts:
        df.update({w.lower().strip(".,") for w in t.split()})
    return df


async def _judge(model, memory=None, insight=INSIGHT, learned=()):
    judge = TransferJudge(memory if memory is not None else FakeMemory(), model, k=3)
    return await judge.judge(insight, GUARDIAN, df=_df(insight.text), learned=learned,
                             transfer_id="kt-1")


def test_the_probe_is_a_cloze_of_the_insight():
    probe = probe_for(INSIGHT, _df(TEXT))
    assert probe is not None
    question, answer = probe
    assert answer == "compaction" and "____" in question and "compaction" not in question


async def test_accepted_when_the_probe_is_answered_only_with_the_transfer():
    model = FakeModel(knows=TEXT)
    verdict = await _judge(model)
    assert (verdict.accepted, verdict.reason, verdict.answer) == (True, ADDS_KNOWLEDGE,
                                                                  "compaction")
    with_it, without = model.calls
    assert TEXT in with_it["prompt"] and TEXT not in without["prompt"]
    assert with_it["agent_id"] == "guardian" and "You are Guardian" in with_it["prompt"]
    # the transferred text is in the prompt but never cited as a log position
    assert with_it["knowledge"] == [] and with_it["schema"] is None
    # ranked as custody answers a cloze with memory: the words of the transferred sentence
    assert any(c.split()[0] == "compaction" for c in with_it["choices"])
    assert without["choices"] == ()  # no note, no candidates: generated, as without memory


async def test_rejected_without_gain_when_the_receiver_answers_without_it():
    memory = FakeMemory({"guardian": [Recalled("Compaction keeps the newest value per key.",
                                               "passage", "package:kafka", REF, 1.0)]})
    model = FakeModel(knows="Compaction keeps")  # its own notes already name the term
    verdict = await _judge(model, memory)
    assert (verdict.accepted, verdict.reason) == (False, NO_GAIN)
    assert len(model.calls) == 2
    assert model.calls[1]["knowledge"] == [REF.to_record()]  # recalled notes are cited


async def test_rejected_without_gain_when_it_does_not_help_either():
    model = FakeModel(knows=None)
    verdict = await _judge(model)
    assert (verdict.accepted, verdict.reason) == (False, NO_GAIN)
    assert len(model.calls) == 1  # wrong with it: no need to ask without


async def test_already_known_when_memory_holds_the_same_content():
    known = Recalled(TEXT.upper(), "insight", "package:kafka",
                     KnowledgeRef("lvlup.learning.events", 1, 7, content_hash(TEXT)), 2.0)
    model = FakeModel(knows=TEXT)
    verdict = await _judge(model, FakeMemory({"guardian": [known]}))
    assert (verdict.accepted, verdict.reason, verdict.probe) == (False, ALREADY_KNOWN, None)
    assert model.calls == []


async def test_already_known_when_the_receiver_learned_it_this_cycle():
    verdict = await _judge(FakeModel(knows=TEXT), learned=[f"  {TEXT} "])
    assert verdict.reason == ALREADY_KNOWN


async def test_no_probe_for_knowledge_too_short_to_ask_about():
    model = FakeModel(knows=TEXT)
    verdict = await _judge(model, insight=Insight("imperium", "k", "Kafka is fast.", 0.5, "x"))
    assert (verdict.accepted, verdict.reason) == (False, NO_PROBE)
    assert model.calls == []


async def test_a_model_failure_rejects_the_transfer():
    verdict = await _judge(FakeModel(knows=TEXT, fail=True))
    assert (verdict.accepted, verdict.reason) == (False, PROBE_FAILED)


async def test_transfer_records_carry_the_verdict_and_feed_the_receivers_memory_only_if_accepted():
    emitted: list[tuple[str, dict[str, Any]]] = []

    async def emit(record_type: str, record: dict[str, Any]) -> None:
        emitted.append((record_type, record))

    other = Insight("guardian", "secure coding", "Guardian short note.", 0.6, "package:bandit")
    # the model answers right only with the transfer in the prompt
    records = await transfer_knowledge(
        "c1", [INSIGHT, other], [IMPERIUM, GUARDIAN],
        judge=TransferJudge(FakeMemory(), FakeModel(knows=TEXT), k=3), emit=emit,
        now_ms=lambda: 1_760_000_000_000)
    assert [r for _rt, r in emitted] == records
    by_pair = {(r["from_agent_id"], r["agent_id"]): r for r in records}
    assert set(by_pair) == {("imperium", "guardian"), ("guardian", "imperium")}
    accepted, rejected = by_pair["imperium", "guardian"], by_pair["guardian", "imperium"]
    assert (accepted["accepted"], accepted["reason"]) == (True, ADDS_KNOWLEDGE)
    assert accepted["probe"] and "____" in accepted["probe"]
    assert (rejected["accepted"], rejected["reason"]) == (False, NO_PROBE)
    codec = load_codec()
    proj = next(p for p in build_projections() if p.name == "agent_memory")
    rows = []
    for n, record in enumerate(records):
        full = {"event_id": f"00000000-0000-4000-8000-00000000000{n}", "producer": "test",
                **record}
        _rt, decoded = codec.decode(codec.encode("knowledge_transfer", full), logical=True)
        assert (decoded["accepted"], decoded["reason"]) == (record["accepted"], record["reason"])
        rows += list(proj.to_rows(ConsumedRecord("kt", 0, n, 0, "knowledge_transfer", decoded)))
    assert [(r["agent_id"], r["kind"], r["text"]) for r in rows] == [("guardian", "transfer",
                                                                       TEXT)]
