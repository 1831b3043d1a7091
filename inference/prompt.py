"""Chat messages sent to a model: the request's turns plus our system instructions.

Two instructions may be added, as one leading ``system`` message:

* ``language`` other than English → ``"Answer in French (fr)."`` (a name from
  :data:`LANGUAGE_NAMES`, else the tag itself). This is a prompt instruction only: a small model
  may ignore it; nothing checks the answer's language.
* ``json_schema`` set → ``"Reply with only a JSON value that matches this JSON Schema: …"``.
  The local engine also constrains decoding with a grammar (:mod:`inference.structured`).

Chat formats without a system role (Gemma: llama-cpp-python's ``format_gemma`` silently drops
system messages) get :func:`merge_system_into_first_user`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from inference.types import InferenceRequest, Message

__all__ = [
    "LANGUAGE_NAMES",
    "build_messages",
    "language_instruction",
    "merge_system_into_first_user",
]

ChatMessage = dict[str, str]

#: Display names for common BCP-47 primary language subtags.
LANGUAGE_NAMES: dict[str, str] = {
    "ar": "Arabic",
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "hi": "Hindi",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "nl": "Dutch",
    "pl": "Polish",
    "pt": "Portuguese",
    "ru": "Russian",
    "sv": "Swedish",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "zh": "Chinese",
}


def language_instruction(language: str) -> str | None:
    """``"Answer in French (fr)."`` for ``"fr"``; None for English (``en``, ``en-GB``, …)."""
    primary = language.split("-", 1)[0].lower()
    if primary == "en":
        return None
    name = LANGUAGE_NAMES.get(primary, language)
    return f"Answer in {name} ({language})."


def build_messages(request: InferenceRequest) -> list[ChatMessage]:
    """The request's messages as ``[{"role", "content"}]`` with our system instruction first.

    The instruction (language, JSON schema) is prepended to the request's own system message(s)
    as a separate message; nothing is added for an English, free-text request.
    """
    parts: list[str] = []
    lang = language_instruction(request.language)
    if lang is not None:
        parts.append(lang)
    if request.json_schema is not None:
        schema = json.dumps(request.json_schema, separators=(",", ":"), sort_keys=True)
        parts.append(f"Reply with only a JSON value that matches this JSON Schema: {schema}")
    out: list[ChatMessage] = []
    if parts:
        out.append({"role": "system", "content": " ".join(parts)})
    out.extend(_as_dicts(request.messages))
    return out


def merge_system_into_first_user(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """Fold every ``system`` message into the first ``user`` turn (for chat formats without one).

    System contents are joined with a blank line and put before the first user message's
    content, separated by a blank line. Without any user message, they become one user message
    placed where the first system message was. Other turns keep their order.
    """
    system = [m["content"] for m in messages if m["role"] == "system"]
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if not system:
        return rest
    preamble = "\n\n".join(system)
    for message in rest:
        if message["role"] == "user":
            message["content"] = f"{preamble}\n\n{message['content']}"
            return rest
    first = next(i for i, m in enumerate(messages) if m["role"] == "system")
    before = sum(1 for m in messages[:first] if m["role"] != "system")
    return [*rest[:before], {"role": "user", "content": preamble}, *rest[before:]]


def _as_dicts(messages: Sequence[Message]) -> list[ChatMessage]:
    return [{"role": m.role, "content": m.content} for m in messages]
