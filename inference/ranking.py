"""Rank continuations by their log-likelihood under the model: multiple choice the way
language-model evaluation scores it (lm-evaluation-harness ``loglikelihood`` requests; Gao et
al., "A framework for few-shot language model evaluation", 2021; Brown et al., "Language
Models are Few-Shot Learners", 2020, §2.4 — pick the completion with the highest
probability).

Given a prompt (the rendered chat prompt plus any prefill) and candidate continuations, the
score of a continuation is ``Σ log p(token_i | prompt, token_<i)`` over its tokens, in nats.
The prompt is evaluated once; each continuation is one batched decode on top of the prompt's
KV cache (the cache is truncated back to the prompt before the next), with logits kept only
for the continuation's own positions — nothing like llama-cpp-python's ``logits_all``, which
would hold ``n_ctx × n_vocab`` floats (4 GiB for Gemma 3's 262,144-token vocabulary).

Token boundaries follow the harness: continuation tokens are those of
``tokenize(prompt + continuation)`` after its longest common prefix with
``tokenize(prompt)``, so a merge across the boundary is scored as part of the continuation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["common_prefix", "continuation_logprobs", "log_softmax_at"]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists (where a ranked choice's
    tokens start: a token merged across the prompt/choice boundary belongs to the choice)."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def log_softmax_at(row: np.ndarray, token: int) -> float:
    """``log softmax(row)[token]`` in nats, computed stably (max-shifted log-sum-exp)."""
    peak = float(row.max())
    return float(row[token]) - (peak + float(np.log(np.exp(row - peak).sum())))


def continuation_logprobs(llama: Any, prompt_tokens: Sequence[int],
                          continuations: Sequence[Sequence[int]]) -> list[float]:
    """The summed log-probability (nats) of each tokenized continuation after
    ``prompt_tokens``, on an entered ``llama_cpp.Llama`` (the caller holds its lock; the
    model's state is reset afterwards). An empty continuation scores 0.0.

    Raises ``ValueError`` when the prompt is empty or prompt + a continuation exceed the
    context window; ``RuntimeError`` from llama.cpp's decode propagates.
    """
    if not prompt_tokens:
        raise ValueError("an empty prompt has no next-token distribution")
    n_ctx, n_vocab = llama.n_ctx(), llama.n_vocab()
    longest = max((len(c) for c in continuations), default=0)
    if len(prompt_tokens) + longest > n_ctx:
        raise ValueError(f"prompt ({len(prompt_tokens)} tokens) + continuation ({longest}) "
                         f"exceed the context window ({n_ctx})")
    llama.reset()
    try:
        llama.eval(list(prompt_tokens))
        n0 = llama.n_tokens
        first = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(n_vocab,)).copy()
        scores: list[float] = []
        for tokens in continuations:
            if not tokens:
                scores.append(0.0)
                continue
            llama._ctx.kv_cache_seq_rm(-1, n0, -1)
            llama._batch.set_batch(batch=list(tokens), n_past=n0, logits_all=True)
            llama._ctx.decode(llama._batch)
            rows = np.ctypeslib.as_array(llama._ctx.get_logits(),
                                         shape=(len(tokens) * n_vocab,)).reshape(len(tokens),
                                                                                 n_vocab)
            total = log_softmax_at(first, tokens[0])
            total += sum(log_softmax_at(rows[i - 1], tokens[i]) for i in range(1, len(tokens)))
            scores.append(total)
        return scores
    finally:
        llama.reset()
