"""Is the answer in the language asked for? lingua (lingua-language-detector), 12 languages.

:class:`LanguageCheck` detects the language of an answer among :data:`LANGUAGES` (the
twelve the platform serves) with lingua's n-gram models (Stahl, lingua-py; models load
lazily on first use, then stay in memory). :meth:`LanguageCheck.verdict` is ``ok`` when

* the wanted language (the BCP-47 tag's primary subtag: ``fr-CA`` → ``fr``) is not one of
  the twelve — nothing to check it against;
* the answer has fewer than ``min_letters`` letters (too short to judge: a number, a name);
* lingua's most likely language is the wanted one, or its confidence for the wanted one is
  at least ``min_confidence`` (mixed text, code with comments).

The service retries a wrong answer once with an explicit instruction and then fails it
with ``language_mismatch`` (:class:`inference.errors.LanguageMismatch`), see
:meth:`inference.service.InferenceService.handle`. Thread-safe (lingua's detector is).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

__all__ = ["LANGUAGES", "LanguageCheck", "LanguageVerdict", "language_name"]

LANGUAGES: dict[str, str] = {
    "en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian",
    "pt": "Portuguese", "nl": "Dutch", "ru": "Russian", "zh": "Chinese", "ja": "Japanese",
    "ko": "Korean", "ar": "Arabic",
}
"""ISO 639-1 code → English name of the languages checked (the instruction names them)."""


def language_name(tag: str) -> str:
    """The English name of BCP-47 ``tag``'s language (the tag itself when unknown)."""
    return LANGUAGES.get(tag.split("-", 1)[0].lower(), tag)


@dataclass(frozen=True, slots=True)
class LanguageVerdict:
    """``ok``; ``detected`` (ISO 639-1, None when not judged) and lingua's ``confidence``
    (0–1) for the wanted language."""

    ok: bool
    detected: str | None
    confidence: float


class LanguageCheck:
    """A lingua detector over ``languages`` (ISO 639-1 codes; default the twelve).

    Args:
        min_letters: answers with fewer letters pass unjudged.
        min_confidence: the wanted language passes at this confidence even when another
            language scores higher.
    """

    def __init__(self, languages: Iterable[str] = tuple(LANGUAGES), *, min_letters: int = 20,
                 min_confidence: float = 0.3) -> None:
        self.languages = tuple(dict.fromkeys(code.lower() for code in languages))
        self.min_letters = min_letters
        self.min_confidence = min_confidence

    @cached_property
    def _detector(self) -> Any:
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        codes = [IsoCode639_1.from_str(code) for code in self.languages]
        return LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()

    def verdict(self, text: str, wanted: str) -> LanguageVerdict:
        """Judge ``text`` against BCP-47 ``wanted`` (rules in the module doc)."""
        code = wanted.split("-", 1)[0].lower()
        if code not in self.languages or sum(ch.isalpha() for ch in text) < self.min_letters:
            return LanguageVerdict(True, None, 1.0)
        values = self._detector.compute_language_confidence_values(text)
        if not values:
            return LanguageVerdict(True, None, 1.0)
        top = values[0].language.iso_code_639_1.name.lower()
        wanted_conf = next((v.value for v in values
                            if v.language.iso_code_639_1.name.lower() == code), 0.0)
        ok = top == code or wanted_conf >= self.min_confidence
        return LanguageVerdict(ok, top, float(wanted_conf))
