"""The learning curve of ``lvlup bench learning`` (issue #20 item 8): the pass rate on the same
source-derived items after 0, 1, 2, 4 and 8 learning cycles.

A cycle teaches an agent one document (``learning.topics_per_agent`` 1: one insight, the
document's sections into memory), so after ``c`` cycles the agent's memory holds ``c``
documents — the first ``c`` of the corpus in a seeded order (SHA-256 of ``seed:url``),
written through the Postgres sink's own writer into a fresh database exactly as a run
builds ``agent_memory``. At each checkpoint every item is answered as custody answers it
(:class:`~agents.knowledge.answering.CustodyMemory`'s rules, engine called directly): a cloze
with recalled entries is ranked over the best-matching recalled sentence's words; without
any, the model generates from the role and question alone. Items cut from documents not yet
learned are the curve's floor; the corpus is the whole offline corpus the items come from.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import create_engine

from agents.custody.items import Item
from agents.custody.scorers import score
from agents.knowledge.grounding import cloze_choices, grounded_prompt
from agents.knowledge.roles import role_prompt
from agents.learning.sources import Document
from inference.engine import LlamaEngine
from infra.bench.learning import (
    AGENT_ID,
    AGENT_TYPE,
    TemporaryDatabase,
    ask_model,
    build_memory,
    rank_words,
)
from sinks.postgres.memory import PostgresRecall

__all__ = ["CHECKPOINTS", "learning_curve"]

#: Cycles after which the pass rate is measured.
CHECKPOINTS = (0, 1, 2, 4, 8)


def learning_curve(db_url: str, model: LlamaEngine, docs: Sequence[Document],
                   items: Sequence[Item], *, seed: int, k: int,
                   checkpoints: Sequence[int] = CHECKPOINTS,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Pass rates of ``items`` after each of ``checkpoints`` cycles (module doc), on a fresh
    database on the server of ``db_url`` (dropped afterwards). Returns ``{"cycles": […],
    "documents": [learned document URLs per checkpoint], "passed": […], "n": …,
    "pass_rate": […]}``. Raises ``ValueError`` for checkpoints that are not ascending and
    ≥ 0."""
    if list(checkpoints) != sorted(set(checkpoints)) or min(checkpoints, default=0) < 0:
        raise ValueError(f"checkpoints must be ascending and >= 0: {checkpoints}")
    order = sorted(docs, key=lambda d: hashlib.sha256(f"{seed}:{d.url}".encode()).hexdigest())
    role = role_prompt(AGENT_TYPE)
    out: dict[str, Any] = {"cycles": [], "documents": [], "passed": [], "n": len(items),
                           "pass_rate": []}
    with TemporaryDatabase(db_url) as url:
        db = create_engine(url)
        try:
            recall, learned = PostgresRecall(db), 0
            for cycles in checkpoints:
                upto = min(cycles, len(order))
                if upto > learned:
                    build_memory(db, order[learned:upto], at_ms=int(time.time() * 1000))
                    learned = upto
                passed = 0
                for item in items:
                    entries = recall.recall_sync(AGENT_ID, item.prompt, k)
                    words = cloze_choices(item.prompt, entries)
                    prompt = grounded_prompt(role, item.prompt, entries)
                    answer = (rank_words(model, prompt, item, words) if words
                              else ask_model(model, grounded_prompt(role, item.prompt, []), None,
                                        item.max_tokens, item))
                    passed += score(item, answer).passed
                out["cycles"].append(cycles)
                out["documents"].append([d.url for d in order[:upto]])
                out["passed"].append(passed)
                out["pass_rate"].append(round(passed / len(items), 4) if items else 0.0)
                log(f"learning curve: after {cycles} cycles ({upto} documents) "
                    f"{passed}/{len(items)}")
        finally:
            db.dispose()
    return out
