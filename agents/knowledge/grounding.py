"""Prompts grounded in an agent's memory: its role, the passages recalled for the question,
the question; a choice answer constrained to the option letters (JSON Schema); a cloze asked
as a sentence completion (what a 270M base model does best).

Pure assembly (:func:`grounded_prompt`, :func:`answer_schema`, :func:`unwrap_answer`) and
one async step (:func:`ground`) that asks the :class:`~agents.knowledge.recall.Recall`
collaborator. Without memory (``recall`` None) the prompt is the role and the question only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.knowledge.recall import KnowledgeRef, Recall, Recalled

__all__ = ["ANSWER_KEY", "BLANK", "CLOZE_LEAD", "DEFAULT_K", "Grounding", "answer_prefill",
           "answer_schema", "cloze_parts", "ground", "grounded_prompt", "unwrap_answer"]

#: Entries recalled per question.
DEFAULT_K = 5
#: The answer's key in a constrained JSON answer.
ANSWER_KEY = "answer"
#: Most characters of one memory entry put in a prompt.
ENTRY_CHARS = 700
#: The blank of a cloze question and the lead its items start with.
BLANK = "____"
CLOZE_LEAD = "Fill in the blank:"
_TERM = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*[A-Za-z0-9+]|[A-Za-z]")


@dataclass(frozen=True, slots=True)
class Grounding:
    """What the model is asked: the ``prompt`` text, the memory ``entries`` it contains (best
    first), when the answer has a fixed format the ``schema`` of a JSON answer
    ``{"answer": …}`` (None: free text), and the ``prefill`` its answer starts with (the
    inference request's assistant prefill; empty: none)."""

    prompt: str
    entries: tuple[Recalled, ...] = ()
    schema: dict[str, Any] | None = None
    prefill: str = ""

    @property
    def refs(self) -> tuple[KnowledgeRef, ...]:
        """The positions of the knowledge used, in prompt order."""
        return tuple(e.ref for e in self.entries)


def cloze_parts(question: str) -> tuple[str, str] | None:
    """``(sentence, prefix)`` of a cloze question (one containing :data:`BLANK`): the sentence
    with the blank and the text before the blank; None for other questions."""
    if BLANK not in question:
        return None
    sentence = question.split(":", 1)[1].strip() if question.startswith(CLOZE_LEAD) else question
    return sentence, sentence.split(BLANK, 1)[0].rstrip()


def grounded_prompt(role: str, question: str, entries: Sequence[Recalled]) -> str:
    """``role``, the numbered ``entries`` as notes from memory (each cut to
    :data:`ENTRY_CHARS` characters; none without memory), then ``question``.

    A cloze question (:func:`cloze_parts`) is asked as a completion: the prompt states the
    task, and the model's turn is prefilled with the words before the blank
    (:func:`answer_prefill`), so the next word the model writes is its answer — a small base
    model completes far better than it follows instructions, and the blank itself is never
    shown (the 270M model copied ``____`` back when it was).
    """
    notes = "\n".join(f"[{n}] {' '.join(e.text.split())[:ENTRY_CHARS]}"
                      for n, e in enumerate(entries, 1))
    memory = (f"Notes from your memory (trusted sources you learned from):\n{notes}\n\n"
              if entries else "")
    cloze = cloze_parts(question)
    if cloze is None:
        use = "Use the notes to answer.\n\n" if entries else ""
        return f"{role}\n\n{memory}{use}{question}"
    return (f"{role}\n\n{memory}Continue the sentence with the next word"
            f"{', as the notes say' if entries else ''}.").rstrip()


def answer_prefill(question: str) -> str:
    """What the model's answer to ``question`` starts with: the words before a cloze's blank
    (ending in a space, so the model writes the next word), else nothing."""
    cloze = cloze_parts(question)
    return "" if cloze is None or not cloze[1] else cloze[1] + " "


def answer_schema(scorer: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON Schema of a constrained answer, or None for free text: ``choice`` items
    answer one of the option letters; anything else is free text."""
    if scorer != "choice":
        return None
    return {"type": "object", "properties": {ANSWER_KEY: {"enum": sorted(params["options"])}},
            "required": [ANSWER_KEY]}


def unwrap_answer(text: str, question: str = "") -> str:
    """The answer in the model's output: the ``answer`` of a constrained JSON answer; for a
    cloze ``question`` the first word written (the completion of the sentence); else
    ``text`` itself."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict) and isinstance(value.get(ANSWER_KEY), str):
        return str(value[ANSWER_KEY])
    if cloze_parts(question) is not None:
        word = _TERM.search(text)
        return word.group(0) if word else ""
    return text


async def ground(recall: Recall | None, *, agent_id: str, role: str, question: str,
                 scorer: str, params: Mapping[str, Any], query: str | None = None,
                 k: int = DEFAULT_K) -> Grounding:
    """The grounded prompt of ``question`` for ``agent_id``: its memory's ``k`` best entries
    for ``query`` (default: the question), its ``role`` and the answer schema of the item's
    ``scorer``. ``recall`` None: no memory. Whatever ``recall`` raises propagates."""
    entries = await recall(agent_id, query or question, k) if recall is not None else []
    return Grounding(grounded_prompt(role, question, entries), tuple(entries),
                     answer_schema(scorer, params), answer_prefill(question))
