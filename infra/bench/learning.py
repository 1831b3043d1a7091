"""``lvlup bench learning`` (issue #20 item 8): the same source-derived items and model with
the agent's memory and without — pass rates, the exact McNemar test, recall@5.

1. Corpus: the shipped offline sources (``package:`` documentation of installed packages,
   :data:`~agents.learning.defaults.DEFAULT_SOURCE_PACKAGES`), read with the learning
   cycle's own fetcher and cut into section passages (:mod:`agents.knowledge.passages`).
2. Memory: one ``internet_learning_result`` per document (all its passages), encoded and
   decoded through the codec and written by the Postgres sink's own writer into a fresh
   database migrated to head — the ``agent_memory`` view exactly as a run builds it.
3. Items: cloze deletions from the passages (:mod:`agents.knowledge.cloze`, seeded).
4. Recall@5: an item's question (the sentence with the blank) must retrieve the passage it
   was cut from among the first 5 (:class:`~sinks.postgres.memory.PostgresRecall`).
5. Model (Gemma 3 270M, temperature 0, the item's seed): *without memory* — role and
   question, the answer generated (a cloze as a sentence completion, a choice constrained to
   the option letters); *with memory* — role, the recalled passages, question; a cloze is
   answered as custody answers it: the words of the best-matching recalled sentence are the
   candidates and the model ranks the completed sentences by likelihood
   (:meth:`inference.engine.LlamaEngine.rank`, :func:`agents.knowledge.grounding.cloze_choices`).
   Two ablations say where the lift comes from: ``memory_generate`` (the recalled passages,
   the word generated and constrained to the notes' words — the previous method) and
   ``choices_only`` (the same candidates ranked with no passage in the prompt). Exact-match
   scoring (``agents.custody.scorers``) of the agent's answer.
6. Optionally the hand-written basic-tier items (non-code scorers) with and without memory.
7. The learning curve: the same items after 0, 1, 2, 4 and 8 cycles
   (:mod:`infra.bench.learning_curve`).

Goal: lift ≥ 30 percentage points with p < 0.01 and recall@5 ≥ 0.8; the result says which
bars are met and never lowers them.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, make_url

from agents.custody.bank import load_bank
from agents.custody.items import Item, Tier
from agents.custody.scorers import score
from agents.knowledge.cloze import Cloze, cloze_items, to_item
from agents.knowledge.grounding import (
    DEFAULT_K,
    answer_prefill,
    answer_schema,
    cloze_choices,
    cloze_parts,
    cloze_schema,
    continuations,
    grounded_prompt,
    rank_prefill,
    unwrap_answer,
)
from agents.knowledge.measure import discordant, mcnemar_exact, recall_at_k
from agents.knowledge.passages import Passage, chunk_sections
from agents.knowledge.recall import Recalled
from agents.knowledge.roles import role_prompt
from agents.learning.defaults import DEFAULT_SOURCE_PACKAGES
from agents.learning.sources import Document, SourceFailed, fetch_document
from inference.engine import LlamaEngine
from inference.errors import InferenceError
from inference.structured import compile_schema
from inference.types import InferenceRequest, Message
from schemas.codec import Codec, load_codec
from sinks.postgres.memory import PostgresRecall
from sinks.postgres.migrate import create_migrated, drop_database
from sinks.postgres.views import build_projections
from sinks.postgres.writer import PostgresWriter
from sinks.records import Batch, ConsumedRecord

__all__ = ["GOAL_LIFT_PP", "GOAL_P", "GOAL_RECALL", "Arm", "TemporaryDatabase", "ask_model",
           "build_memory", "load_corpus", "rank_words", "run_learning_bench"]

GOAL_LIFT_PP = 30.0
GOAL_P = 0.01
GOAL_RECALL = 0.8
AGENT_ID, AGENT_TYPE = "guardian-1", "guardian"
RESULTS_TOPIC = "lvlup.learning.internet-results"
_CODE_SCORERS = frozenset({"code_tests", "bandit_fix"})


@dataclass(frozen=True, slots=True)
class Arm:
    """One condition's outcomes, in item order."""

    name: str
    passed: tuple[bool, ...]

    @property
    def rate(self) -> float:
        """Pass rate, 0..1."""
        return sum(self.passed) / len(self.passed) if self.passed else 0.0


async def load_corpus(packages: Sequence[str] = DEFAULT_SOURCE_PACKAGES
                      ) -> tuple[list[Document], dict[str, str]]:
    """The offline documents that can be read, and why the others could not."""
    trusted = {f"package:{p}" for p in packages}
    docs, failed = [], {}
    for url in sorted(trusted):
        try:
            docs.append(await fetch_document(url, trusted))
        except SourceFailed as exc:
            failed[url] = str(exc)
    return docs, failed


def _records(docs: Sequence[Document], codec: Codec, at_ms: int
             ) -> tuple[list[ConsumedRecord], list[Passage]]:
    """One decoded ``internet_learning_result`` per document with all its passages."""
    out, passages = [], []
    for offset, doc in enumerate(docs):
        chunks = chunk_sections(doc.text, source=doc.url, title=doc.title)
        passages.extend(chunks)
        record = {"event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, doc.url)),
                  "occurred_at": at_ms, "producer": "bench.learning", "agent_id": AGENT_ID,
                  "agent_type": AGENT_TYPE, "topic": "offline documentation",
                  "source_url": doc.url, "title": doc.title, "content_summary": doc.text[:280],
                  "relevance_score": 1.0, "learning_value": 0.5, "insights_extracted": [],
                  "cycle_id": "bench-learning",
                  "passages": [{"text": p.text, "section": p.section,
                                "content_hash": p.content_hash} for p in chunks]}
        _, logical = codec.decode(codec.encode("internet_learning_result", record), logical=True)
        out.append(ConsumedRecord(RESULTS_TOPIC, 0, offset, at_ms, "internet_learning_result",
                                  logical))
    return out, passages


def build_memory(engine: Engine, docs: Sequence[Document], *, at_ms: int) -> list[Passage]:
    """Write the documents' learning results through the Postgres sink (module doc, step 2);
    returns every passage (the corpus the items are cut from)."""
    records, passages = _records(docs, load_codec(), at_ms)
    batch = Batch()
    for rec in records:
        batch.add(rec)
    PostgresWriter(engine, build_projections()).write("bench-learning", batch)
    return passages


class TemporaryDatabase:
    """``with TemporaryDatabase(url) as db_url``: a fresh database on the server of
    ``url``, migrated to head, dropped on exit."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url).set(database=f"bench_learning_{uuid.uuid4().hex[:8]}"
                                     ).render_as_string(hide_password=False)

    def __enter__(self) -> str:
        create_migrated(self.url)
        return self.url

    def __exit__(self, *exc: object) -> None:
        drop_database(self.url)


def _seed(item_id: str) -> int:
    return int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16)


def ask_model(engine: LlamaEngine, prompt: str, schema: dict[str, Any] | None, max_tokens: int,
         item: Item) -> str:
    """One temperature-0 completion; an inference error (truncated, invalid) is an empty
    answer — a failed trial, as in custody."""
    request = InferenceRequest(request_id=f"bench-{item.id}", requester="bench.learning",
                               agent_id=AGENT_ID, messages=(Message(role="user", content=prompt),),
                               temperature=0.0, seed=_seed(item.id), max_tokens=max_tokens,
                               json_schema=schema, prefill=answer_prefill(item.prompt))
    try:
        grammar = None if schema is None else compile_schema(schema).gbnf
        result = engine.complete(request, grammar=grammar)
    except InferenceError:
        return ""
    return unwrap_answer(result.text, item.prompt)


def rank_words(engine: LlamaEngine, prompt: str, item: Item, words: Sequence[str]) -> str:
    """The candidate word whose completed sentence the model finds most likely ("" when
    there is no candidate or the ranking fails — a failed trial)."""
    if not words:
        return ""
    request = InferenceRequest(request_id=f"bench-{item.id}", requester="bench.learning",
                               agent_id=AGENT_ID, messages=(Message(role="user", content=prompt),),
                               temperature=0.0, seed=_seed(item.id), max_tokens=1,
                               prefill=rank_prefill(item.prompt))
    try:
        chosen = engine.rank(request, continuations(item.prompt, words)).text
    except InferenceError:
        return ""
    return words[continuations(item.prompt, words).index(chosen)]


def _run_arms(engine: LlamaEngine, items: Sequence[Item], recalled: Sequence[list[Recalled]],
              log: Callable[[str], None], *, ranked: bool = False) -> list[Arm]:
    """Each item without memory and with memory (same role, format and constraint). With
    ``ranked`` (cloze items), the memory arm ranks the words of the best-matching recalled
    sentence by the likelihood of the completed sentence (what custody does), and two more
    arms say where the lift comes from: ``memory_generate`` (the recalled notes, the answer
    generated and constrained to the notes' words) and ``choices_only`` (the same candidate
    words ranked with no notes in the prompt)."""
    role = role_prompt(AGENT_TYPE)
    names = ["without", "memory", "memory_generate", "choices_only"] if ranked else [
        "without", "memory"]
    arms: dict[str, list[bool]] = {name: [] for name in names}
    for n, (item, entries) in enumerate(zip(items, recalled, strict=True)):
        fixed = answer_schema(item.scorer, item.params)
        bare, grounded = grounded_prompt(role, item.prompt, []), grounded_prompt(role, item.prompt,
                                                                                 entries)
        generated = {"without": (bare, fixed),
                     "memory" if not ranked else "memory_generate":
                         (grounded, fixed if fixed is not None or cloze_parts(item.prompt) is None
                          else cloze_schema(entries))}
        for arm, (prompt, schema) in generated.items():
            tokens = max(item.max_tokens, 24) if schema is not None else item.max_tokens
            arms[arm].append(score(item, ask_model(engine, prompt, schema, tokens, item)).passed)
        if ranked:
            words = cloze_choices(item.prompt, entries)
            arms["memory"].append(score(item, rank_words(engine, grounded, item, words)).passed)
            arms["choices_only"].append(score(item, rank_words(engine, bare, item, words)).passed)
        log(f"{n + 1}/{len(items)} {item.id}: " + " ".join(
            f"{a}={'P' if v[-1] else '.'}" for a, v in arms.items()))
    return [Arm(name, tuple(v)) for name, v in arms.items()]


def _compare(arms: Sequence[Arm]) -> dict[str, Any]:
    by = {a.name: a for a in arms}
    out: dict[str, Any] = {"n": len(by["without"].passed),
                           **{f"pass_rate_{a.name}": round(a.rate, 4) for a in arms}}
    for name in ("memory_generate", "choices_only"):
        if name in by:
            b2, c2 = discordant(by["memory"].passed, by[name].passed)
            out[f"mcnemar_memory_vs_{name}"] = {"b": b2, "c": c2, "p": mcnemar_exact(b2, c2)}
    b, c = discordant(by["memory"].passed, by["without"].passed)
    out["lift_pp"] = round(100 * (by["memory"].rate - by["without"].rate), 1)
    out["mcnemar"] = {"b": b, "c": c, "p": mcnemar_exact(b, c)}
    return out


def run_learning_bench(settings: Any, *, items: int = 40, seed: int = 20, k: int = DEFAULT_K,
                       handwritten: bool = True, log: Callable[[str], None] = print,
                       curve_checkpoints: Sequence[int] = (0, 1, 2, 4, 8)) -> dict[str, Any]:
    """Run the benchmark (module doc) on the stack of ``settings`` (Postgres) with the local
    model; returns the figures as one JSON-ready dict (``goal`` says which bars are met;
    ``learning_curve`` the pass rate after ``curve_checkpoints`` cycles,
    :mod:`infra.bench.learning_curve`; empty: not measured).
    Raises ``RuntimeError`` when no source can be read or no item can be made."""
    started = time.monotonic()
    docs, failed = asyncio.run(load_corpus())
    if not docs:
        raise RuntimeError(f"no offline source could be read: {failed}")
    from inference.factory import ensure_model

    with TemporaryDatabase(settings.postgres.sqlalchemy_url()) as url:
        db = create_engine(url)
        try:
            passages = build_memory(db, docs, at_ms=int(time.time() * 1000))
            clozes: list[Cloze] = cloze_items(passages, seed=seed, n=items)
            if not clozes:
                raise RuntimeError("no cloze item could be made from the sources")
            recall = PostgresRecall(db)
            cloze_recalled = [recall.recall_sync(AGENT_ID, c.question, k) for c in clozes]
            hand = ([i for i in load_bank(include_humaneval=False).items
                     if i.tier is Tier.BASIC and i.scorer not in _CODE_SCORERS]
                    if handwritten else [])
            hand_recalled = [recall.recall_sync(AGENT_ID, i.prompt, k) for i in hand]
        finally:
            db.dispose()
    r5 = recall_at_k([[h.ref.content_hash for h in hits] for hits in cloze_recalled],
                     [c.passage.content_hash for c in clozes], 5)
    log(f"corpus: {len(docs)} documents, {len(passages)} passages; {len(clozes)} items; "
        f"recall@5 {r5:.3f}")
    ensure_model(settings)
    model = LlamaEngine.from_settings(settings)
    try:
        cloze = _compare(_run_arms(model, [to_item(c) for c in clozes], cloze_recalled, log,
                                   ranked=True))
        hand_out = _compare(_run_arms(model, hand, hand_recalled, log)) if hand else None
        curve = None
        if curve_checkpoints:
            from infra.bench.learning_curve import learning_curve

            curve = learning_curve(settings.postgres.sqlalchemy_url(), model, docs,
                                   [to_item(c) for c in clozes], seed=seed, k=k,
                                   checkpoints=curve_checkpoints, log=log)
    finally:
        model.close()
    goal = {"lift_pp": cloze["lift_pp"] >= GOAL_LIFT_PP, "p": cloze["mcnemar"]["p"] < GOAL_P,
            "recall_at_5": r5 >= GOAL_RECALL}
    return {"bench": "learning", "documents": len(docs), "passages": len(passages),
            "failed_sources": failed, "items": len(clozes), "seed": seed, "k": k,
            "recall_at_5": round(r5, 4), "cloze": cloze, "handwritten_basic": hand_out,
            "learning_curve": curve,
            "goal": {**goal, "met": all(goal.values()),
                     "bars": {"lift_pp": GOAL_LIFT_PP, "p": GOAL_P, "recall_at_5": GOAL_RECALL}},
            "pass": all(goal.values()), "duration_s": round(time.monotonic() - started, 1)}
