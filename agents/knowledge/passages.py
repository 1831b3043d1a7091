"""Source documents as passages: chunks by section, each with a content hash.

A document's text is split at headings (Markdown ``#`` lines, reStructuredText titles
underlined with ``=``, ``-``, ``~``…) and blank lines into paragraphs; consecutive paragraphs
of one section are packed into passages of at most ``max_chars`` characters (a longer
paragraph is cut at sentence ends). The hash is SHA-256 of the whitespace-normalised,
case-folded text, so the same passage from two sources or two cycles is one memory entry.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Passage", "chunk_sections", "content_hash", "rank_passages"]

_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_RST_RULE = re.compile(r"^([=\-~^\"'`*+#])\1{2,}\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(])")
_WORD = re.compile(r"[a-z0-9]+")
MAX_CHARS = 700
MIN_CHARS = 40


@dataclass(frozen=True, slots=True)
class Passage:
    """One chunk of a source: ``text``, the ``section`` heading it sits under ("" before the
    first heading), where it comes from (``source`` URL, ``title``) and its ``content_hash``
    (hex, 16 characters; :func:`content_hash`)."""

    text: str
    section: str
    source: str
    title: str
    content_hash: str


def content_hash(text: str) -> str:
    """The first 16 hex digits of SHA-256 of ``text`` case-folded with whitespace collapsed."""
    normal = " ".join(text.casefold().split())
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()[:16]


def _sections(text: str) -> Iterable[tuple[str, list[str]]]:
    """(heading, paragraphs) in document order."""
    heading = ""
    paragraphs: list[str] = []
    current: list[str] = []
    lines = text.replace("\r\n", "\n").split("\n")
    for n, line in enumerate(lines):
        md = _MD_HEADING.match(line)
        underline = n + 1 < len(lines) and _RST_RULE.match(lines[n + 1]) and line.strip()
        if md or underline:
            if current:
                paragraphs.append(" ".join(current))
                current = []
            if paragraphs:
                yield heading, paragraphs
                paragraphs = []
            heading = (md.group(1) if md else line).strip()
            continue
        if _RST_RULE.match(line) or not line.strip():
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        current.append(line.strip())
    if current:
        paragraphs.append(" ".join(current))
    if paragraphs:
        yield heading, paragraphs


def _pieces(paragraph: str, max_chars: int) -> list[str]:
    """``paragraph`` cut at sentence ends into pieces of at most ``max_chars`` (a single
    longer sentence is hard-cut)."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    out, current = [], ""
    for whole in _SENTENCE_END.split(paragraph):
        sentence = whole
        while len(sentence) > max_chars:
            if current:
                out.append(current)
                current = ""
            out.append(sentence[:max_chars])
            sentence = sentence[max_chars:]
        if current and len(current) + 1 + len(sentence) > max_chars:
            out.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        out.append(current)
    return out


def chunk_sections(text: str, *, source: str, title: str = "", max_chars: int = MAX_CHARS,
                   min_chars: int = MIN_CHARS) -> list[Passage]:
    """``text`` as passages (module doc), in document order, without duplicates (by hash).

    ``max_chars`` bounds a passage's length (characters); pieces shorter than ``min_chars``
    (badges, lone links) are dropped. Raises ``ValueError`` if ``max_chars < min_chars``.
    """
    if max_chars < min_chars:
        raise ValueError("max_chars must be >= min_chars")
    out: list[Passage] = []
    seen: set[str] = set()
    for heading, paragraphs in _sections(text):
        pieces = [p for para in paragraphs for p in _pieces(para, max_chars)]
        packed: list[str] = []
        for piece in pieces:
            if packed and len(packed[-1]) + 1 + len(piece) <= max_chars:
                packed[-1] = f"{packed[-1]} {piece}"
            else:
                packed.append(piece)
        for chunk in packed:
            digest = content_hash(chunk)
            if len(chunk) >= min_chars and digest not in seen:
                seen.add(digest)
                out.append(Passage(chunk, heading, source, title, digest))
    return out


def rank_passages(topic: str, passages: Sequence[Passage], k: int) -> list[Passage]:
    """The ``k`` passages sharing most distinct words (≥ 3 letters) with ``topic``, then
    earliest first; passages sharing none are left out. Deterministic."""
    terms = {w for w in _WORD.findall(topic.lower()) if len(w) > 2}
    scored = []
    for n, passage in enumerate(passages):
        words = set(_WORD.findall(f"{passage.section} {passage.text}".lower()))
        hits = len(terms & words)
        if hits:
            scored.append((-hits, n, passage))
    return [p for _h, _n, p in sorted(scored, key=lambda s: (s[0], s[1]))[:k]]
