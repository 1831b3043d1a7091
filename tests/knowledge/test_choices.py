"""Cloze answers with memory by ranking: the candidate words come from the recalled sentence
that best matches the question; the continuations complete the whole sentence."""

from __future__ import annotations

from agents.knowledge.grounding import (
    best_sentence,
    cloze_choices,
    continuations,
    rank_prefill,
)
from agents.knowledge.recall import KnowledgeRef, Recalled

Q = "Fill in the blank: Bandit flags subprocess calls that set ____ to true as risky."


def entry(text: str, offset: int = 0) -> Recalled:
    return Recalled(text, "passage", "package:bandit", KnowledgeRef("t", 0, offset, f"h{offset}"),
                    1.0)


NOTES = [entry("Kafka stores records in partitions. Consumers commit offsets.", 1),
         entry("Bandit is a security linter. Bandit flags subprocess calls that set shell to "
               "true as risky. It also checks for hard-coded passwords.", 2)]


def test_the_best_sentence_is_the_one_sharing_the_question_words() -> None:
    assert best_sentence(Q, NOTES) == ("Bandit flags subprocess calls that set shell to true "
                                       "as risky.")
    assert best_sentence(Q, []) == ""


def test_choices_are_the_words_of_that_sentence_in_order() -> None:
    words = cloze_choices(Q, NOTES)
    assert "shell" in words and words[0] == "Bandit"
    assert len(words) == len(set(words)) and all(len(w) >= 3 for w in words)
    assert "Kafka" not in words


def test_no_choices_without_memory_or_for_other_questions() -> None:
    assert cloze_choices(Q, []) == ()
    assert cloze_choices("Which is safer? A or B", NOTES) == ()


def test_continuations_complete_the_sentence_after_the_prefill() -> None:
    assert rank_prefill(Q) == "Bandit flags subprocess calls that set"
    assert continuations(Q, ["shell", "path"]) == [" shell to true as risky.",
                                                  " path to true as risky."]
    first = "Fill in the blank: ____ is a security linter."
    assert rank_prefill(first) == "" and continuations(first, ["Bandit"]) == [
        "Bandit is a security linter."]
    assert continuations("no blank here", ["x"]) == []
