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

__all__ = ["ANSWER_KEY", "BLANK", "CLOZE_LEAD", "DEFAULT_K", "MAX_VOCABULARY", "Grounding",
           "answer_prefill", "answer_schema", "best_sentence", "cloze_choices", "cloze_parts",
           "cloze_schema", "continuations", "ground", "grounded_prompt", "notes_vocabulary",
           "rank_prefill", "unwrap_answer"]

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
    inference request's assistant prefill; empty: none). A cloze answered with memory is
    ranked instead of generated: ``choices`` are the candidate answers and
    ``continuations`` (same order) what the model scores after ``prefill``."""

    prompt: str
    entries: tuple[Recalled, ...] = ()
    schema: dict[str, Any] | None = None
    prefill: str = ""
    choices: tuple[str, ...] = ()
    continuations: tuple[str, ...] = ()

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


#: Words a cloze answer may be chosen from: 3+ characters, letters first (``_TERM``-like).
_NOTE_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*[A-Za-z0-9]")
#: Function words never a cloze's missing term (the exact-match answer is a content word).
_FUNCTION_WORDS_TEXT = """
the and for are but not you all any its our out one two how who why via per was were has had
have with from into this that these those than then them they their there when where which
while will would could should can may might must shall does did doing been being also such
"""
_FUNCTION_WORDS = frozenset(_FUNCTION_WORDS_TEXT.split())
#: Most words offered to the model (grammar size stays small).
MAX_VOCABULARY = 400


def notes_vocabulary(entries: Sequence[Recalled]) -> list[str]:
    """The distinct content words of the recalled ``entries`` (3+ characters, letters first,
    no function words; first occurrence order, at most :data:`MAX_VOCABULARY`)."""
    seen: dict[str, None] = {}
    for entry in entries:
        for word in _NOTE_WORD.findall(" ".join(entry.text.split())[:ENTRY_CHARS]):
            if len(word) >= 3 and word.lower() not in _FUNCTION_WORDS:
                seen.setdefault(word, None)
    return list(seen)[:MAX_VOCABULARY]


def cloze_schema(entries: Sequence[Recalled]) -> dict[str, Any] | None:
    """Constrained output for a cloze answered with memory: one word of the notes
    (:func:`notes_vocabulary`) as a JSON string; None without notes (free text). Retrieval
    plus constrained decoding: the model still chooses the word, from what it remembers."""
    words = notes_vocabulary(entries)
    return {"type": "string", "enum": words} if words else None


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def best_sentence(question: str, entries: Sequence[Recalled]) -> str:
    """The sentence of the recalled ``entries`` (each cut to :data:`ENTRY_CHARS`) that best
    matches ``question``: most shared words (case-folded, :data:`_NOTE_WORD` words) per
    ``1 + √(its words not in the question)`` — a sentence that shares the question's words
    and adds few others; the first such on a tie. ``""`` without entries."""
    asked = {w.lower() for w in _NOTE_WORD.findall(question)}
    best, best_score = "", -1.0
    for entry in entries:
        for sentence in _SENTENCE_END.split(" ".join(entry.text.split())[:ENTRY_CHARS]):
            words = {w.lower() for w in _NOTE_WORD.findall(sentence)}
            score = len(asked & words) / (1.0 + len(words - asked) ** 0.5)
            if score > best_score:
                best, best_score = sentence, score
    return best


def cloze_choices(question: str, entries: Sequence[Recalled]) -> tuple[str, ...]:
    """The words a cloze answered with memory is chosen from: the distinct words (3+
    characters, letters first) of the recalled sentence that best matches it
    (:func:`best_sentence`), in order — retrieval narrowed to one sentence, the choice left to
    the model (:func:`continuations`). Empty for other questions or without entries."""
    if cloze_parts(question) is None or not entries:
        return ()
    seen: dict[str, None] = {}
    for word in _NOTE_WORD.findall(best_sentence(question, entries)):
        if len(word) >= 3:
            seen.setdefault(word, None)
    return tuple(seen)


def rank_prefill(question: str) -> str:
    """The prefill of a ranked cloze answer: the words before the blank, no trailing space
    (each continuation starts with its own space); ``""`` for other questions."""
    cloze = cloze_parts(question)
    return "" if cloze is None else cloze[1]


def continuations(question: str, words: Sequence[str]) -> list[str]:
    """The continuations of :func:`rank_prefill` the model ranks, one per candidate word:
    ``" " + word + the rest of the sentence after the blank`` — the whole completed sentence
    is scored, so the words after the blank count (a small model guesses poorly from the words
    before it alone)."""
    cloze = cloze_parts(question)
    if cloze is None:
        return []
    rest = cloze[0].split(BLANK, 1)[1]
    lead = " " if cloze[1] else ""
    return [f"{lead}{word}{rest}" for word in words]


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
    ``scorer``; a cloze with recalled entries is ranked (``choices``, :func:`cloze_choices`).
    ``recall`` None: no memory. Whatever ``recall`` raises propagates."""
    entries = await recall(agent_id, query or question, k) if recall is not None else []
    prompt = grounded_prompt(role, question, entries)
    choices = cloze_choices(question, entries)
    if choices:
        return Grounding(prompt, tuple(entries), None, rank_prefill(question), choices,
                         tuple(continuations(question, choices)))
    schema = answer_schema(scorer, params)
    if schema is None and cloze_parts(question) is not None:
        schema = cloze_schema(entries)
    return Grounding(prompt, tuple(entries), schema, answer_prefill(question))
