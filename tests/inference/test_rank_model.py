"""LlamaEngine.rank on the real Gemma 3 270M: continuations ranked by log-likelihood
(inference.ranking), checked against llama.cpp's own full-logits evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inference.engine import LlamaEngine
from inference.errors import InvalidRequest
from inference.ranking import log_softmax_at
from tests.inference.conftest import make_request, model_path_for_tests

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def engine():
    engine = LlamaEngine(model_path_for_tests(), n_threads=2, n_ctx=1024)
    yield engine
    engine.close()


def test_the_copy_in_the_prompt_wins(engine: LlamaEngine) -> None:
    request = make_request("Notes: The Kafka broker stores records in partitions.\n"
                           "Repeat the note.", temperature=0.0, prefill="The Kafka broker stores")
    choices = [" records in partitions.", " bananas in partitions.", " cars in partitions."]
    result = engine.rank(request, choices)
    assert result.text == " records in partitions." and result.finish_reason == "choice"
    assert len(result.scores) == 3 and result.scores[0] == max(result.scores)
    assert all(s < 0 for s in result.scores)
    again = engine.rank(request, choices)
    assert again.scores == result.scores  # deterministic: the state is reset each time


def test_scores_equal_a_full_logits_evaluation(engine: LlamaEngine) -> None:
    """The batched scoring on the prompt's KV cache equals evaluating prompt + continuation
    with llama-cpp-python's own logits_all model (reference implementation)."""
    from llama_cpp import Llama

    request = make_request("Name a colour.", temperature=0.0, prefill="A colour:")
    choices = [" red", " blue sky"]
    ranked = engine.rank(request, choices).scores
    rendered = engine._render(request)
    context = rendered.prompt + request.prefill
    ref = Llama(model_path=str(model_path_for_tests()), n_ctx=256, n_threads=2,
                logits_all=True, verbose=False)
    try:
        prompt = ref.tokenize(context.encode(), add_bos=not rendered.added_special,
                              special=True)
        for choice, got in zip(choices, ranked, strict=True):
            full = ref.tokenize((context + choice).encode(), add_bos=not rendered.added_special,
                                special=True)
            ref.reset()
            ref.eval(full)
            want = sum(log_softmax_at(np.asarray(ref.scores[i - 1]), full[i])
                       for i in range(len(prompt), len(full)))
            assert math.isclose(got, want, rel_tol=1e-3, abs_tol=1e-3), (choice, got, want)
    finally:
        ref.close()


def test_no_choices_is_invalid(engine: LlamaEngine) -> None:
    with pytest.raises(InvalidRequest):
        engine.rank(make_request("x"), [])
