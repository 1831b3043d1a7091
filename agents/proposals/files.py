"""A proposal's files after its change: ``code_after`` and the unified diff, applied.

A ``proposal_submitted`` record carries one ``file_path`` with optional ``code_before`` /
``code_after`` excerpts and the change as a ``unified_diff`` (possibly touching several files,
new ones included). :func:`proposal_files` returns the post-image ``{path: text}`` of every
file the proposal touches:

* a diff section whose old side is ``/dev/null`` creates a file from its ``+`` lines;
* a section modifying ``path`` is applied to a base text: ``code_before`` when ``path`` is the
  record's ``file_path``, else ``read_base(path)`` if given (e.g. from a scratch repository);
* ``code_after`` (when set) is the post-image of ``file_path`` and wins over the diff;
* a section deleting a file (new side ``/dev/null``) removes it.

Hunks are applied strictly: every context and ``-`` line must match the base at the hunk's
position (``git apply`` without fuzz). Paths lose their ``a/``/``b/`` prefixes and must be
relative without ``..`` and may not touch git's own files (:func:`safe_path`). Pure: no I/O
beyond ``read_base``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from agents.proposals.errors import ProposalInputError

__all__ = ["FilePatch", "apply_patch", "parse_diff", "proposal_files", "safe_path"]

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_NULL = "/dev/null"
_SHORT_GIT = re.compile(r"git~\d+")


@dataclass
class FilePatch:
    """One file's section of a unified diff: paths (``None`` for ``/dev/null``) and hunks,
    each ``(old_start, lines)`` with lines still carrying their ``' '``/``-``/``+`` marker."""

    old_path: str | None
    new_path: str | None
    hunks: list[tuple[int, list[str]]] = field(default_factory=list)


#: path components (compared case-insensitively) a proposal may never write: git's directory
#: and the files that make git run programs or fetch (filters via attributes, submodules)
_GIT_NAMES = frozenset({".git", ".gitattributes", ".gitmodules"})


def _is_git_name(part: str) -> bool:
    # case-insensitive file systems (and git's own core.protectHFS/NTFS checks) treat
    # ".GIT", ".git." / ".git " (Windows strips trailing dots and spaces) and the 8.3 short
    # name "git~1" as ".git"
    folded = part.casefold().rstrip(". ")
    return folded in _GIT_NAMES or _SHORT_GIT.fullmatch(folded) is not None


def safe_path(name: str) -> str:
    """``name`` as a relative POSIX path without ``a/``/``b/`` prefix, or ProposalInputError.

    Refused: empty names, absolute paths, ``..``/``.``/empty components, a drive or scheme
    (``C:``), backslashes, NUL and other control characters, and any component that is git's
    own — ``.git`` (any case, trailing dots/spaces, ``git~1``), ``.gitattributes``,
    ``.gitmodules``: a ``.git/config`` filter or hook, or an attributes file naming one,
    would make ``git`` run a program on the host (issue #17).
    """
    name = name.split("\t", 1)[0].strip()
    if name.startswith(("a/", "b/")):
        name = name[2:]
    path = PurePosixPath(name)
    if (not name or "\\" in name or any(ord(ch) < 32 or ord(ch) == 127 for ch in name)
            or path.is_absolute() or ":" in path.parts[0]
            or any(p in ("..", ".", "") for p in path.parts)
            or any(p in ("..", ".", "") for p in name.split("/"))):
        raise ProposalInputError(f"unsafe path {name!r} in the proposal")
    if any(_is_git_name(p) for p in path.parts):
        raise ProposalInputError(f"unsafe path {name!r} in the proposal: git's own files "
                                 "(.git, .gitattributes, .gitmodules) cannot be written")
    return path.as_posix()


def _side(raw: str) -> str | None:
    raw = raw.split("\t", 1)[0].strip()
    return None if raw == _NULL else safe_path(raw)


def parse_diff(diff: str) -> list[FilePatch]:
    """The file sections of ``diff``; ``git``-style headers (``diff --git``, ``index``) are
    skipped. Raises :class:`ProposalInputError` on a hunk outside a file section or a hunk
    whose line counts disagree with its header."""
    patches: list[FilePatch] = []
    lines = diff.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            patches.append(FilePatch(_side(line[4:]), _side(lines[i + 1][4:])))
            i += 2
            continue
        m = _HUNK.match(line)
        if m:
            if not patches:
                raise ProposalInputError("diff hunk before any '---'/'+++' file header")
            old_n = int(m.group(2)) if m.group(2) is not None else 1
            new_n = int(m.group(4)) if m.group(4) is not None else 1
            body: list[str] = []
            i += 1
            seen_old = seen_new = 0
            while i < len(lines) and (seen_old < old_n or seen_new < new_n):
                text = lines[i]
                if text.startswith("\\"):  # "\ No newline at end of file"
                    i += 1
                    continue
                mark = text[:1] or " "
                if mark not in " +-":
                    break
                body.append(mark + text[1:])
                seen_old += mark in " -"
                seen_new += mark in " +"
                i += 1
            if (seen_old, seen_new) != (old_n, new_n):
                raise ProposalInputError(
                    f"hunk {line!r}: {seen_old}/{seen_new} lines, header says {old_n}/{new_n}")
            patches[-1].hunks.append((int(m.group(1)), body))
            continue
        i += 1
    return patches


def apply_patch(base: str, patch: FilePatch) -> str:
    """``base`` with ``patch``'s hunks applied (strict, no fuzz); raises
    :class:`ProposalInputError` where a context or removed line does not match."""
    old = base.splitlines()
    out: list[str] = []
    pos = 0
    for start, body in patch.hunks:
        at = max(start - 1, 0) if any(b[0] in " -" for b in body) else start
        if at < pos or at > len(old):
            raise ProposalInputError(f"{patch.new_path or patch.old_path}: hunk at line {start}"
                                     " is out of order or past the end")
        out.extend(old[pos:at])
        pos = at
        for b in body:
            mark, text = b[0], b[1:]
            if mark in " -":
                if pos >= len(old) or old[pos] != text:
                    raise ProposalInputError(
                        f"{patch.new_path or patch.old_path}: line {pos + 1} does not match"
                        " the diff's context")
                pos += 1
            if mark in " +":
                out.append(text)
    out.extend(old[pos:])
    return "\n".join(out) + ("\n" if out else "")


def proposal_files(record: Mapping[str, Any],
                   read_base: Callable[[str], str | None] | None = None) -> dict[str, str]:
    """The post-image ``{path: text}`` of a ``proposal_submitted`` record (module doc).

    Raises :class:`ProposalInputError` when a path is unsafe, a modified file has no base, or a
    hunk does not apply.
    """
    main = safe_path(str(record["file_path"]))
    files: dict[str, str] = {}
    for patch in parse_diff(str(record.get("unified_diff") or "")):
        if patch.new_path is None:
            files.pop(patch.old_path or "", None)
            continue
        if patch.old_path is None:
            base = ""
        else:
            found = record.get("code_before") if patch.old_path == main else None
            if found is None and read_base is not None:
                found = read_base(patch.old_path)
            if found is None:
                raise ProposalInputError(f"{patch.old_path}: modified by the diff, but its"
                                         " original text is not available")
            base = str(found)
        files[patch.new_path] = apply_patch(base, patch)
    if record.get("code_after") is not None:
        files[main] = str(record["code_after"])
    return files
