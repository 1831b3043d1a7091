"""The local engine: one llama.cpp model (llama-cpp-python) loaded once per process.

:class:`LlamaEngine` renders the chat with llama-cpp-python's formatter for the configured
``chat_format`` (``format_gemma`` for Gemma 3), merging system messages into the first user turn
when the format has no system role (:data:`NO_SYSTEM_ROLE_FORMATS`), then calls
``Llama.create_completion`` on the tokens. Going through ``create_completion`` rather than
``create_chat_completion`` gives us ``stopping_criteria``, used to stop at a deadline.

Sampling: ``temperature``, ``top_p`` and ``seed`` come from the request; llama-cpp-python's
defaults hold for the rest (``top_k`` 40, ``min_p`` 0.05, ``repeat_penalty`` 1.0). The same
seed and temperature give the same text on the same build and model.

Embeddings (:meth:`LlamaEngine.embed`, ``POST /v1/embeddings``): a second llama.cpp context
of the same GGUF, created on the first embedding request, with ``embedding=True`` and mean
pooling over the last hidden states of the input's tokens; each vector is scaled to unit
Euclidean length, as OpenAI's embeddings are. Gemma 3 is a causal language model, not a
trained sentence encoder: the vectors separate texts, but rank similarity less well than a
dedicated embedding model would.

One request at a time: llama-cpp-python is not safe for concurrent calls on one model
(abetlen/llama-cpp-python#873), so :meth:`complete` holds a ``threading.Lock``; the async
:class:`~inference.dispatch.Dispatcher` also queues with an ``asyncio.Lock``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from inference.batching import BatchDecoder
from inference.errors import DeadlineExceeded, InvalidRequest, ModelLoadError, StructuredOutputError
from inference.prompt import build_messages, merge_system_into_first_user
from inference.types import EngineResult, InferenceRequest

if TYPE_CHECKING:
    from llama_cpp import Llama

    from streams.settings import ModelSettings, Settings

__all__ = ["EMBED_CONTEXT_TOKENS", "NO_SYSTEM_ROLE_FORMATS", "CompletionEngine",
           "EmbeddingEngine", "LlamaEngine", "file_sha256"]

#: llama-cpp-python chat formats whose template has no system role.
NO_SYSTEM_ROLE_FORMATS = frozenset({"gemma"})


class CompletionEngine(Protocol):
    """What the dispatcher needs from a local engine (a test stand-in implements this)."""

    @property
    def sha256(self) -> str: ...

    def complete(
        self,
        request: InferenceRequest,
        *,
        grammar: str | None = None,
        timeout_s: float | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> EngineResult: ...

    def rank(self, request: InferenceRequest, choices: Sequence[str]) -> EngineResult: ...

    def count_tokens(self, text: str) -> int: ...


#: Tokens of the embedding context: its window, batch and micro-batch (``n_ctx`` =
#: ``n_batch`` = ``n_ubatch``). Pooled embeddings need the whole input in one micro-batch
#: (llama.cpp pools per micro-batch), and with embeddings on llama.cpp computes the output
#: layer for every token (``llama-context.cpp``: all tokens are outputs): Gemma 3's 262,144-
#: token vocabulary makes that 1 MiB of logits per token, so the window is kept at 512
#: (BERT's window; about +0.8 GB peak for a full one, measured).
EMBED_CONTEXT_TOKENS = 512


@runtime_checkable
class EmbeddingEngine(Protocol):
    """An engine that also gives embeddings (:meth:`LlamaEngine.embed`)."""

    def embed(self, texts: Sequence[str], *, timeout_s: float | None = None,
              ) -> EngineResult: ...


def file_sha256(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in ``chunk_bytes`` chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


class LlamaEngine:
    """One ``llama_cpp.Llama`` and the calls we make on it.

    Args:
        model_path: the GGUF file (``Settings.model_path()``).
        n_threads: llama.cpp threads; n_ctx: context window in tokens; chat_format: a
            llama-cpp-python chat format with a ``format_<name>`` formatter.
        expected_sha256: hex SHA-256 the file must have; checked before llama.cpp parses a
            byte of it (a GGUF is parsed by C code: a tampered file is refused, not loaded).

    Raises:
        ModelLoadError: the file is missing or has another digest, the chat format unknown,
            or llama.cpp fails.
    """

    def __init__(
        self, model_path: Path, *, n_threads: int = 2, n_ctx: int = 2048,
        chat_format: str = "gemma", expected_sha256: str | None = None,
        embed_tokens: int = EMBED_CONTEXT_TOKENS, parallel: int = 0,
    ) -> None:
        from llama_cpp import Llama, llama_chat_format

        if not model_path.is_file():
            raise ModelLoadError(f"model file not found: {model_path}")
        if expected_sha256 is not None:
            actual = file_sha256(model_path)
            if actual != expected_sha256.lower():
                raise ModelLoadError(f"model file {model_path} has SHA-256 {actual}, expected "
                                     f"{expected_sha256}: refusing to load it")
            self.__dict__["sha256"] = actual  # the cached_property's value
        formatter = getattr(llama_chat_format, f"format_{chat_format.replace('-', '_')}", None)
        if formatter is None:
            raise ModelLoadError(f"unknown chat format {chat_format!r}")
        self.model_path = model_path
        self.chat_format = chat_format
        self._formatter: Callable[..., Any] = formatter
        self._lock = threading.Lock()
        self._n_threads = n_threads
        self._embed_tokens = embed_tokens
        self._embed_lock = threading.Lock()
        self._embedder: Llama | None = None
        started = time.perf_counter()
        try:
            self._llama: Llama = Llama(
                model_path=str(model_path),
                chat_format=chat_format,
                n_threads=n_threads,
                n_ctx=n_ctx,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"llama.cpp cannot load {model_path}: {exc}") from exc
        #: Plain completions (no grammar) decoded together; None: one at a time on ``_llama``.
        self._decoder: BatchDecoder | None = None
        if parallel > 0:
            try:
                self._decoder = BatchDecoder(model_path, slots=parallel, n_ctx=n_ctx,
                                             n_threads=n_threads)
            except ModelLoadError:
                self._llama.close()
                raise
        #: Seconds spent loading the model.
        self.load_seconds = time.perf_counter() - started

    @classmethod
    def from_settings(cls, settings: Settings) -> LlamaEngine:
        """Engine for ``settings.model_path()`` with ``settings.model``'s threads and context."""
        return cls.from_model_settings(settings.model_path(), settings.model)

    @classmethod
    def from_model_settings(cls, model_path: Path, model: ModelSettings) -> LlamaEngine:
        """Engine for ``model_path`` with ``model``'s threads, context and chat format, its
        digest checked against ``model.expected_sha256()``."""
        return cls(
            model_path, n_threads=model.n_threads, n_ctx=model.n_ctx,
            chat_format=model.chat_format, expected_sha256=model.expected_sha256(),
            parallel=model.parallel,
        )

    @property
    def concurrency(self) -> int:
        """Completions this engine serves at once (its batch slots; 1 without batching)."""
        return 1 if self._decoder is None else self._decoder.slots

    @cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of the GGUF file, computed once (~1 s for 253 MB)."""
        return file_sha256(self.model_path)

    @property
    def n_ctx(self) -> int:
        """Context window, tokens."""
        return int(self._llama.n_ctx())

    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` with the model's tokenizer (no BOS)."""
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def check_grammar(self, gbnf: str) -> None:
        """Raise ``StructuredOutputError("schema_unsupported")`` if llama.cpp cannot parse it.

        llama-cpp-python adds a grammar sampler without checking for NULL, which crashes the
        process on a bad grammar; ``llama_sampler_init_grammar`` returns NULL instead.
        """
        import llama_cpp

        vocab = self._llama._model.vocab
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
        if not sampler:
            raise StructuredOutputError("schema_unsupported", "llama.cpp cannot parse the grammar")
        llama_cpp.llama_sampler_free(sampler)

    def render_prompt(self, request: InferenceRequest) -> str:
        """The prompt text the model sees for ``request`` (chat template applied, then the
        request's ``prefill``)."""
        return str(self._render(request).prompt) + request.prefill

    def _render(self, request: InferenceRequest) -> Any:
        messages = build_messages(request)
        if self.chat_format in NO_SYSTEM_ROLE_FORMATS:
            messages = merge_system_into_first_user(messages)
        return self._formatter(messages=messages)

    def complete(
        self,
        request: InferenceRequest,
        *,
        grammar: str | None = None,
        timeout_s: float | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> EngineResult:
        """Run one completion; blocks the calling thread. With ``parallel`` slots a plain
        completion (no ``grammar``) joins the batch decoder and runs beside others; with a
        grammar, or without slots, it runs alone on llama-cpp-python.

        Args:
            grammar: a GBNF grammar with root rule ``root``; checked with :meth:`check_grammar`.
            timeout_s: stop generating after this many seconds (prompt evaluation is not
                interruptible; generation stops at the next token).
            on_token: called in this thread with each piece of text as it is generated
                (llama-cpp-python's ``stream=True``); the pieces concatenate to the result's
                ``text``. An exception it raises aborts the completion and propagates.

        Raises:
            InvalidRequest: prompt plus ``max_tokens`` exceed the context window.
            DeadlineExceeded: ``timeout_s`` elapsed during generation.
            StructuredOutputError: llama.cpp cannot parse ``grammar`` (schema_unsupported).
        """
        from llama_cpp.llama import StoppingCriteriaList
        from llama_cpp.llama_grammar import LlamaGrammar

        started = time.perf_counter()
        if grammar is not None:
            self.check_grammar(grammar)
        rendered = self._render(request)
        # a prefill continues the model's own turn: the template opened it, the answer goes on
        # from the prefill's last character (the response carries the continuation only)
        tokens = self._llama.tokenize(
            (rendered.prompt + request.prefill).encode("utf-8"),
            add_bos=not rendered.added_special, special=True,
        )
        if len(tokens) + request.max_tokens > self.n_ctx:
            raise InvalidRequest(
                f"prompt ({len(tokens)} tokens) + max_tokens ({request.max_tokens}) exceed the "
                f"context window ({self.n_ctx})"
            )
        stop = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop or ""]
        stop = [*stop, *request.stop]  # the template's end of turn and the request's own
        if self._decoder is not None and grammar is None:
            generation = self._decoder.generate(
                tokens, max_tokens=request.max_tokens, temperature=request.temperature,
                top_p=request.top_p, seed=request.seed, stop=stop, timeout_s=timeout_s,
                on_token=on_token)
            return EngineResult(
                text=generation.text, finish_reason=generation.finish_reason,
                prompt_tokens=len(tokens), completion_tokens=generation.completion_tokens,
                latency_ms=(time.perf_counter() - started) * 1000.0,
            )
        deadline = None if timeout_s is None else started + timeout_s
        expired = threading.Event()

        def past_deadline(_ids: Any, _logits: Any) -> bool:
            if deadline is not None and time.perf_counter() > deadline:
                expired.set()
            return expired.is_set()

        with self._lock:
            # Evaluate every prompt from scratch: llama-cpp-python reuses the cached prefix of
            # the previous prompt, and a partly cached evaluation gives slightly different
            # logits, so a temperature-0 answer would depend on the request before it
            # (ggml-org/llama.cpp#4902). Reproducible answers (custody, caching, audit
            # replay) are worth one full prompt evaluation per request.
            self._llama.reset()  # type: ignore[no-untyped-call]
            out: Any = self._llama.create_completion(
                prompt=tokens,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                top_p=request.top_p,
                seed=request.seed,
                stop=[s for s in stop if s],
                grammar=None if grammar is None else LlamaGrammar.from_string(grammar, False),
                stopping_criteria=StoppingCriteriaList([past_deadline]),
                stream=on_token is not None,
            )
            if on_token is not None:
                out = _drain_stream(out, on_token, len(tokens), self._llama)
        if expired.is_set():
            raise DeadlineExceeded(f"generation stopped after {timeout_s:.3f} s")
        choice, usage = out["choices"][0], out["usage"]
        return EngineResult(
            text=choice["text"],
            finish_reason=choice["finish_reason"] or "stop",
            prompt_tokens=int(usage["prompt_tokens"]),
            completion_tokens=int(usage["completion_tokens"]),
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )

    def rank(self, request: InferenceRequest, choices: Sequence[str]) -> EngineResult:
        """Choose among ``choices`` (continuations of the prompt and its prefill) the one
        the model finds most likely (:mod:`inference.ranking`: summed token log-probability,
        nats); the result's ``text`` is that choice (the first on a tie), ``finish_reason``
        ``"choice"``, ``completion_tokens`` 0, and ``scores`` the log-probabilities in
        ``choices`` order. Blocks the calling thread; deterministic (the state is reset).

        Raises:
            InvalidRequest: no choices, or the prompt plus a choice exceed the context window.
        """
        from inference.ranking import common_prefix, continuation_logprobs

        if not choices:
            raise InvalidRequest("rank needs at least one choice")
        started = time.perf_counter()
        rendered = self._render(request)
        context = rendered.prompt + request.prefill
        add_bos = not rendered.added_special

        def tokens(text: str) -> list[int]:
            return list(self._llama.tokenize(text.encode("utf-8"), add_bos=add_bos,
                                             special=True))

        prompt = tokens(context)
        fulls = [tokens(context + choice) for choice in choices]
        # the prompt's tokens every choice shares (a token merged across the boundary is
        # scored with the continuation, as lm-evaluation-harness does)
        shared = min(common_prefix(prompt, full) for full in fulls)
        head = prompt[:max(shared, 1)]
        continuations = [full[len(head):] for full in fulls]
        try:
            with self._lock:
                scores = continuation_logprobs(self._llama, head, continuations)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc
        best = max(range(len(choices)), key=lambda i: (scores[i], -i))
        return EngineResult(text=choices[best], finish_reason="choice",
                            prompt_tokens=len(prompt), completion_tokens=0,
                            latency_ms=(time.perf_counter() - started) * 1000.0,
                            scores=tuple(scores))

    @property
    def n_embd(self) -> int:
        """Dimensions of an embedding (the model's hidden size: 640 for Gemma 3 270M)."""
        return int(self._llama.n_embd())

    def _embedding_context(self) -> Llama:
        """The embedding context, created on first use (call with ``_embed_lock`` held).
        Raises ModelLoadError."""
        if self._embedder is None:
            import llama_cpp

            try:
                self._embedder = llama_cpp.Llama(
                    model_path=str(self.model_path), embedding=True,
                    pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                    n_ctx=self._embed_tokens, n_batch=self._embed_tokens,
                    n_ubatch=self._embed_tokens, n_threads=self._n_threads, verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelLoadError(f"llama.cpp cannot open an embedding context of "
                                     f"{self.model_path}: {exc}") from exc
        return self._embedder

    def embed(self, texts: Sequence[str], *, timeout_s: float | None = None) -> EngineResult:
        """One embedding per text: the mean of the last hidden states of its tokens (BOS
        included), scaled to unit Euclidean length, rounded to float32 — ``n_embd`` numbers
        each. Each text is evaluated on its own (the same text always gives the same vector,
        whatever else the request holds). Blocks the calling thread; the embedding context
        is created on the first call (~1 s).

        The result's ``embeddings`` hold the vectors in ``texts`` order, ``prompt_tokens``
        the tokens evaluated, ``text`` ``""``, ``finish_reason`` ``"embedding"``.

        Raises:
            InvalidRequest: no texts, an empty text, or one over the embedding window
                (:data:`EMBED_CONTEXT_TOKENS` tokens) — checked for all before any is run.
            DeadlineExceeded: ``timeout_s`` elapsed (checked between texts).
            ModelLoadError: the embedding context cannot be created.
        """
        import numpy as np

        if not texts:
            raise InvalidRequest("nothing to embed")
        started = time.perf_counter()
        deadline = None if timeout_s is None else started + timeout_s
        with self._embed_lock:
            llama = self._embedding_context()
            window = int(llama.n_ctx())
            counts = []
            for i, text in enumerate(texts):
                if not text:
                    raise InvalidRequest(f"input[{i}] is empty")
                # what Llama.embed evaluates: BOS + the text, special tokens not parsed
                n = len(llama.tokenize(text.encode("utf-8"), add_bos=True, special=False))
                if n > window:
                    raise InvalidRequest(f"input[{i}] is {n} tokens; the embedding window is "
                                         f"{window} tokens")
                counts.append(n)
            vectors: list[tuple[float, ...]] = []
            for text in texts:
                if deadline is not None and time.perf_counter() > deadline:
                    raise DeadlineExceeded(f"embedding stopped after {timeout_s:.3f} s")
                raw = np.asarray(llama.embed(text, normalize=False, truncate=False),
                                 dtype=np.float64)
                norm = float(np.linalg.norm(raw))
                if not (norm > 0.0 and np.isfinite(norm)):
                    raise RuntimeError(f"llama.cpp gave an embedding of norm {norm}")
                vectors.append(tuple((raw / norm).astype(np.float32).tolist()))
        return EngineResult(text="", finish_reason="embedding", prompt_tokens=sum(counts),
                            completion_tokens=0,
                            latency_ms=(time.perf_counter() - started) * 1000.0,
                            embeddings=tuple(vectors))

    def perf(self) -> dict[str, float]:
        """Evaluated tokens and ms since the last :meth:`reset_perf`: llama.cpp's counters of
        the one-at-a-time context plus the batch decoder's (prompt chunks vs batches of
        sampled tokens; llama.cpp's own counters would call a 4-token batch a prompt).

        Keys: ``prompt_tokens``, ``prompt_ms``, ``generated_tokens``, ``generation_ms``.
        Prompt tokens served from llama-cpp-python's prefix reuse are not counted.
        """
        import llama_cpp

        data = llama_cpp.llama_perf_context(self._llama._ctx.ctx)
        out = {
            "prompt_tokens": float(data.n_p_eval),
            "prompt_ms": float(data.t_p_eval_ms),
            "generated_tokens": float(data.n_eval),
            "generation_ms": float(data.t_eval_ms),
        }
        if self._decoder is not None:
            stats = self._decoder.stats
            out["prompt_tokens"] += stats["prefill_tokens"]
            out["prompt_ms"] += stats["prefill_s"] * 1000.0
            out["generated_tokens"] += stats["generated_tokens"]
            out["generation_ms"] += stats["generate_s"] * 1000.0
        return out

    def reset_perf(self) -> None:
        """Zero llama.cpp's performance counters and the batch decoder's."""
        import llama_cpp

        llama_cpp.llama_perf_context_reset(self._llama._ctx.ctx)
        if self._decoder is not None:
            self._decoder.reset_stats()

    def close(self) -> None:
        """Free the model and contexts now rather than at garbage collection."""
        if self._decoder is not None:
            self._decoder.close()
        self._llama.close()
        with self._embed_lock:
            if self._embedder is not None:
                self._embedder.close()
                self._embedder = None


def _drain_stream(chunks: Any, on_token: Callable[[str], None], prompt_tokens: int,
                  llama: Any) -> dict[str, Any]:
    """Consume llama-cpp-python's streamed completion, calling ``on_token`` per piece, and
    return the non-streamed shape (``choices[0].text/finish_reason`` and ``usage``).

    A stream carries no usage: completion tokens are the answer's text tokenized again (at
    least one per non-empty piece; a stop sequence's tokens, held back, are not counted).
    """
    parts: list[str] = []
    finish: str | None = None
    pieces = 0
    for chunk in chunks:
        choice = chunk["choices"][0]
        text = choice.get("text") or ""
        if text:
            pieces += 1
            parts.append(text)
            on_token(text)
        finish = choice.get("finish_reason") or finish
    text = "".join(parts)
    counted = len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))
    return {"choices": [{"text": text, "finish_reason": finish or "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": max(pieces, counted)}}
