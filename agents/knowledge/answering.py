"""An agent answers a custody item with its memory: role + recalled knowledge + question, a
constrained answer where the format is fixed, and the citation of what it used.

:class:`CustodyMemory` is the optional collaborator of the custody worker
(``CustodyDeps.memory``): ``answer(agent_id, agent_type, item, max_tokens, seed)`` recalls
from the agent's memory (:class:`~agents.knowledge.recall.Recall`), builds the grounded
prompt (:mod:`agents.knowledge.grounding`), asks the model through ``ask`` — which records
the knowledge positions on the ``inference_request`` — and returns the answer text with the
request id and the positions, which the item result cites.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agents.custody.humaneval import CODE_STOP, completion_prefill
from agents.custody.items import Item
from agents.knowledge.grounding import (
    DEFAULT_K,
    Grounding,
    ground,
    grounded_prompt,
    unwrap_answer,
)
from agents.knowledge.recall import KnowledgeRef, Recall, refs_record
from agents.knowledge.roles import role_prompt

__all__ = ["Answered", "Ask", "CustodyMemory", "chosen", "cite", "client_ask", "memory_infer"]


class Ask(Protocol):
    """``await ask(agent_id, prompt, schema=…, max_tokens=…, seed=…, request_id=…,
    knowledge=…, prefill=…, stop=…)``: the model's answer text (temperature 0; the JSON text
    when ``schema`` is set; the continuation of ``prefill``, ending before the first ``stop``
    sequence; with ``choices``, the one the model
    finds most likely — ranked, not generated). ``knowledge`` is the ``KnowledgeRef`` records
    to put on the request. Raises what the inference client raises
    (``InferenceTimeout``, ``InferenceFailed``)."""

    def __call__(self, agent_id: str, prompt: str, *, schema: dict[str, Any] | None,
                 max_tokens: int, seed: int, request_id: str,
                 knowledge: list[dict[str, Any]], prefill: str = "",
                 choices: Sequence[str] = (), stop: Sequence[str] = ()) -> Awaitable[str]: ...


@dataclass(frozen=True, slots=True)
class Answered:
    """The answer ``text`` (unwrapped from a constrained JSON answer), the ``request_id`` of
    the inference request, and the ``refs`` of the knowledge its prompt contained."""

    text: str
    request_id: str
    refs: tuple[KnowledgeRef, ...]


@dataclass
class CustodyMemory:
    """Answers custody items with the agent's memory (module doc). ``recall`` None: the role
    prompt only (no memory; the baseline). ``k``: entries recalled per item. ``new_id``
    makes request ids (default: random UUIDs)."""

    recall: Recall | None
    ask: Ask
    k: int = DEFAULT_K
    new_id: Callable[[], str] = field(default=lambda: f"inf-{uuid.uuid4().hex}")

    async def grounding(self, agent_id: str, agent_type: str, item: Item) -> Grounding:
        """The grounded prompt for ``item`` (recall errors propagate)."""
        return await ground(self.recall, agent_id=agent_id, role=role_prompt(agent_type),
                            question=item.prompt, scorer=item.scorer, params=item.params,
                            k=self.k)

    async def answer(self, agent_id: str, agent_type: str, item: Item, max_tokens: int,
                     seed: int) -> Answered:
        """Answer ``item`` as ``agent_id`` (module doc); a HumanEval-style item is completed
        from its prompt (:func:`~agents.custody.humaneval.completion_prefill`). Raises what
        ``recall`` and ``ask`` raise."""
        grounding = await self.grounding(agent_id, agent_type, item)
        request_id = self.new_id()
        code = completion_prefill(item)
        text = await self.ask(agent_id, grounding.prompt, schema=grounding.schema,
                              max_tokens=_tokens(max_tokens, grounding), seed=seed,
                              request_id=request_id, knowledge=refs_record(grounding.refs),
                              prefill=code or grounding.prefill, choices=grounding.continuations,
                              stop=CODE_STOP if code else ())
        if code:  # the function: the prompt the model's turn opened with, and its body
            return Answered(code + text, request_id, grounding.refs)
        if grounding.choices:
            return Answered(chosen(grounding, text), request_id, grounding.refs)
        return Answered(unwrap_answer(text, item.prompt), request_id, grounding.refs)


def chosen(grounding: Grounding, text: str) -> str:
    """The candidate whose continuation the model ranked first (``text``); ``""`` when
    ``text`` is none of them (a failed trial, never a guess)."""
    try:
        return grounding.choices[grounding.continuations.index(text)]
    except ValueError:
        return ""


def _tokens(max_tokens: int, grounding: Grounding) -> int:
    """A constrained answer needs room for its JSON wrapper (``{"answer": "…"}``)."""
    return max(max_tokens, 24) if grounding.schema is not None else max_tokens


def client_ask(infer: Callable[..., Awaitable[dict[str, Any]]], timeout_s: float = 300.0
               ) -> Ask:
    """An :class:`Ask` over ``InferenceClient.infer`` (pass the bound method): one user
    message, temperature 0, the schema, knowledge and choices on the request; returns the
    response's JSON text when it has one, else its text (a ranked request: the chosen
    continuation)."""

    async def ask(agent_id: str, prompt: str, *, schema: dict[str, Any] | None,
                  max_tokens: int, seed: int, request_id: str,
                  knowledge: list[dict[str, Any]], prefill: str = "",
                  choices: Sequence[str] = (), stop: Sequence[str] = ()) -> str:
        extra: dict[str, Any] = {"choices": list(choices)} if choices else {}
        if stop:
            extra["stop"] = list(stop)
        response = await infer(agent_id=agent_id, messages=[{"role": "user", "content": prompt}],
                               max_tokens=max_tokens, seed=seed, temperature=0.0,
                               json_schema=schema, timeout_s=timeout_s, request_id=request_id,
                               knowledge=knowledge, prefill=prefill, **extra)
        return str(response.get("json") or response.get("text") or "")

    return ask


def cite(refs: Sequence[KnowledgeRef], request_id: str) -> dict[str, Any]:
    """The ``custody_item_result`` v2 fields citing an answer: ``request_id`` and
    ``knowledge``."""
    return {"request_id": request_id, "knowledge": refs_record(refs)}


def memory_infer(recall: Recall, infer: Callable[..., Awaitable[dict[str, Any]]],
                 agent_types: Mapping[str, str], *, k: int = 3, timeout_s: float = 300.0
                 ) -> Callable[..., Awaitable[str]]:
    """``infer(agent_id, prompt, max_tokens, seed, prefill="", *, stop=()) -> text`` (the
    continuation of ``prefill``, the start of the model's turn, ending before the first of
    the ``stop`` sequences) that answers as the agent with its
    memory — its role (``agent_types``: agent id → type), the ``k`` entries its memory recalls
    for the prompt, the prompt (:func:`~agents.knowledge.grounding.grounded_prompt`) — and
    records the knowledge positions on the inference request (a proposal draft's prompt, so
    an audit shows what the agent knew when it drafted). ``infer`` is
    ``InferenceClient.infer``. Raises what ``recall`` (a store outage) and ``infer`` raise."""

    async def run(agent_id: str, prompt: str, max_tokens: int, seed: int,
                  prefill: str = "", *, stop: Sequence[str] = ()) -> str:
        entries = await recall(agent_id, prompt, k)
        grounded = grounded_prompt(role_prompt(agent_types.get(agent_id, "")), prompt, entries)
        response = await infer(agent_id=agent_id, max_tokens=max_tokens, seed=seed,
                               messages=[{"role": "user", "content": grounded}],
                               temperature=0.0, timeout_s=timeout_s, prefill=prefill,
                               stop=list(stop),
                               knowledge=refs_record([e.ref for e in entries]))
        return str(response.get("text") or "")

    return run
