"""Judged knowledge transfers (issue #20 item 6): an insight one agent learned is offered to
another, and the receiver accepts it only when it adds knowledge it lacks.

For each ``(insight, receiver)`` pair of a cycle (:func:`~agents.learning.logic.
select_transfers`), :class:`TransferJudge` decides, in this order:

1. ``already_known`` — the receiver learned the same text this cycle, or its memory holds an
   entry with the insight's content hash (:func:`agents.knowledge.passages.content_hash`,
   the memory view's key) among what recall finds for the insight's text;
2. ``no_probe`` — no probe question can be derived: the insight (as one sentence, a full stop
   added) gives no cloze (:func:`agents.knowledge.cloze.make_cloze`; the document
   frequencies are the cycle's insights, so the blanked term is the insight's most specific);
3. the receiver answers the probe through the model twice, as it answers custody items: its
   role, the notes its memory recalls for the probe, the probe — once without the transfer,
   once with the transferred text as its first note (with notes, the cloze is ranked over the
   words of the recalled sentence that best matches it, as custody ranks it; without any, it
   is generated — :mod:`agents.knowledge.grounding`). Exact match, case-insensitive.
   ``adds_knowledge`` (accepted) when it is right with the transfer and wrong without;
   ``no_gain`` otherwise; ``probe_failed`` when the model or the store failed (a transfer is
   never accepted unjudged). The answer with the transfer is asked first: when it is wrong
   the one without is not needed.

Every pair gives one ``knowledge_transfer`` (v2) record with ``accepted``, ``reason`` and the
``probe``; the memory view keeps the accepted ones as the receiver's memory
(``sinks.postgres.views``), so the record *is* the memory's change, rebuilt by replay.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agents.knowledge.answering import Ask, chosen
from agents.knowledge.cloze import make_cloze
from agents.knowledge.grounding import (
    DEFAULT_K,
    Grounding,
    answer_prefill,
    cloze_choices,
    cloze_schema,
    continuations,
    grounded_prompt,
    rank_prefill,
    unwrap_answer,
)
from agents.knowledge.passages import Passage, content_hash
from agents.knowledge.recall import KnowledgeRef, Recall, Recalled, refs_record
from agents.knowledge.roles import role_prompt
from agents.learning.cycle import MODEL_FAILURES, AgentInfo
from agents.learning.logic import Insight, select_transfers
from sinks.errors import StoreUnavailable

__all__ = ["ADDS_KNOWLEDGE", "ALREADY_KNOWN", "NO_GAIN", "NO_PROBE", "PROBE_FAILED",
           "TransferJudge", "Verdict", "probe_for", "transfer_knowledge"]

ADDS_KNOWLEDGE = "adds_knowledge"
ALREADY_KNOWN = "already_known"
NO_PROBE = "no_probe"
NO_GAIN = "no_gain"
PROBE_FAILED = "probe_failed"
#: Tokens a probe answer may take (one word, in a JSON string when constrained).
PROBE_MAX_TOKENS = 16
#: The ref of the transferred text inside a probe prompt: not a log position (its record is
#: being judged), so it is never cited on the inference request.
_CANDIDATE_REF = KnowledgeRef("", -1, -1, "")
#: What voids a judgement (``probe_failed``): the model's failures and a store outage.
_JUDGE_FAILURES: tuple[type[Exception], ...] = (*MODEL_FAILURES, StoreUnavailable)
#: A word as :mod:`agents.knowledge.cloze` counts it for document frequencies.
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*[A-Za-z0-9]")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The receiver's judgement of one transfer: ``accepted``, the ``reason`` (module doc),
    the ``probe`` question (None without one) and its expected ``answer`` ("" without)."""

    accepted: bool
    reason: str
    probe: str | None = None
    answer: str = ""


def _sentence(text: str) -> str:
    """``text`` as one prose sentence: whitespace collapsed, a capital first, a full stop."""
    one = " ".join(text.split()).rstrip(" .!?;:,")
    return (one[:1].upper() + one[1:] + ".") if one else ""


def probe_for(insight: Insight, df: Counter[str]) -> tuple[str, str] | None:
    """``(question, answer)``: the cloze of ``insight`` (module doc), or None. ``df``:
    insights per lower-cased word over the cycle (as ``make_cloze`` takes it)."""
    sentence = _sentence(insight.text)
    passage = Passage(sentence, "", f"agent:{insight.agent_id}", insight.topic,
                      content_hash(sentence))
    cloze = make_cloze(passage, df)
    return None if cloze is None else (cloze.question, cloze.answer)


def _seed(*parts: str) -> int:
    return int(hashlib.sha256(":".join(parts).encode()).hexdigest()[:8], 16)


@dataclass
class TransferJudge:
    """Judges transfers for receivers (module doc). ``recall``: the agents' memory (None: no
    memory, only the role); ``ask``: the model (an :class:`~agents.knowledge.answering.Ask`);
    ``k``: memory entries per probe; ``new_id``: inference request ids from a seed string."""

    recall: Recall | None
    ask: Ask
    k: int = DEFAULT_K
    new_id: Callable[[str], str] = lambda seed: f"inf-xfer-{seed}"

    async def _memory(self, agent_id: str, query: str) -> list[Recalled]:
        return await self.recall(agent_id, query, self.k) if self.recall is not None else []

    async def _answer(self, receiver: AgentInfo, question: str, notes: Sequence[Recalled],
                      *, request: str) -> str:
        """The receiver's answer to ``question`` with ``notes`` in its prompt."""
        prompt = grounded_prompt(role_prompt(receiver.agent_type), question, notes)
        words = cloze_choices(question, notes)
        if words:  # ranked, as custody answers a cloze with memory
            g = Grounding(prompt, tuple(notes), None, rank_prefill(question), words,
                          tuple(continuations(question, words)))
        else:
            g = Grounding(prompt, tuple(notes), cloze_schema(notes), answer_prefill(question))
        cited = [r for r in g.refs if r.partition >= 0]
        text = await self.ask(receiver.agent_id, g.prompt, schema=g.schema,
                              max_tokens=PROBE_MAX_TOKENS, seed=_seed(request),
                              request_id=self.new_id(request), knowledge=refs_record(cited),
                              prefill=g.prefill, choices=g.continuations)
        return chosen(g, text) if g.choices else unwrap_answer(text, question)

    async def judge(self, insight: Insight, receiver: AgentInfo, *, df: Counter[str],
                    learned: Sequence[str] = (), transfer_id: str = "") -> Verdict:
        """The verdict on ``insight`` for ``receiver`` (module doc); ``learned``: the texts
        the receiver learned itself this cycle. Never raises for a model or store failure
        (``probe_failed``); anything else propagates."""
        digest = content_hash(insight.text)
        if digest in {content_hash(t) for t in learned}:
            return Verdict(False, ALREADY_KNOWN)
        try:
            known = await self._memory(receiver.agent_id, insight.text)
            if any(hit.ref.content_hash == digest for hit in known):
                return Verdict(False, ALREADY_KNOWN)
            probe = probe_for(insight, df)
            if probe is None:
                return Verdict(False, NO_PROBE)
            question, answer = probe
            recalled = await self._memory(receiver.agent_id, question)
            candidate = Recalled(insight.text, "transfer", f"agent:{insight.agent_id}",
                                 _CANDIDATE_REF, 0.0)
            with_it = await self._answer(receiver, question,
                                         [candidate, *recalled[:max(0, self.k - 1)]],
                                         request=f"{transfer_id}:with")
            if with_it.casefold() != answer.casefold():
                return Verdict(False, NO_GAIN, question, answer)
            without = await self._answer(receiver, question, recalled,
                                         request=f"{transfer_id}:without")
        except _JUDGE_FAILURES:
            return Verdict(False, PROBE_FAILED)
        if without.casefold() == answer.casefold():
            return Verdict(False, NO_GAIN, question, answer)
        return Verdict(True, ADDS_KNOWLEDGE, question, answer)


async def transfer_knowledge(
    cycle_id: str, insights: Sequence[Insight], agents: Sequence[AgentInfo], *,
    judge: TransferJudge, emit: Callable[[str, dict[str, Any]], Awaitable[None]],
    now_ms: Callable[[], int],
) -> list[dict[str, Any]]:
    """Judge and record the transfers of one cycle: each agent's best insight offered to
    every other agent of ``agents`` (module doc). Emits one ``knowledge_transfer`` per pair,
    in pair order, and returns them. Only ``emit`` can raise."""
    by_id = {a.agent_id: a for a in agents}
    df: Counter[str] = Counter()
    for ins in insights:  # words as make_cloze counts them, one per insight
        df.update({w.lower() for w in _WORD.findall(ins.text)})
    out = []
    for ins, target in select_transfers(insights, sorted(by_id)):
        transfer_id = f"kt-{cycle_id}-{ins.agent_id}-{target}"
        learned = [i.text for i in insights if i.agent_id == target]
        verdict = await judge.judge(ins, by_id[target], df=df, learned=learned,
                                    transfer_id=transfer_id)
        record = {"occurred_at": now_ms(), "transfer_id": transfer_id, "agent_id": target,
                  "from_agent_id": ins.agent_id, "topic": ins.topic, "knowledge": ins.text,
                  "transfer_value": ins.value, "accepted": verdict.accepted,
                  "reason": verdict.reason, "probe": verdict.probe, "cycle_id": cycle_id}
        await emit("knowledge_transfer", record)
        out.append(record)
    return out
