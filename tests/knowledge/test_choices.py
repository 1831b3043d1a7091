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


def test_memory_infer_drafts_as_the_agent_with_its_memory_and_cites_it() -> None:
    """A proposal draft's prompt goes out with the agent's role and recalled knowledge, and
    the inference request records the knowledge positions (issue #20 item 2)."""
    import asyncio

    from agents.knowledge.answering import memory_infer

    sent: dict = {}

    async def recall(agent_id, query, k):
        assert (agent_id, k) == ("guardian", 3)
        return NOTES[1:]

    async def infer(**fields):
        sent.update(fields)
        return {"text": "def fix(): ..."}

    run = memory_infer(recall, infer, {"guardian": "guardian"})
    out = asyncio.run(run("guardian", "Fix B602 in archive().", 200, 7, "```python\n",
                          stop=["```"]))
    assert out == "def fix(): ..."
    prompt = sent["messages"][0]["content"]
    assert prompt.startswith("You are Guardian") and "Bandit flags subprocess" in prompt
    assert prompt.endswith("Fix B602 in archive().")
    assert sent["knowledge"] == [{"topic": "t", "partition": 0, "offset": 2,
                                  "content_hash": "h2"}]
    assert (sent["max_tokens"], sent["seed"], sent["temperature"]) == (200, 7, 0.0)
    assert sent["prefill"] == "```python\n"  # the draft's header starts the model's turn
    assert sent["stop"] == ["```"]
