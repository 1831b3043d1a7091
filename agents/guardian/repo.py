"""Scheduled scans of a code tree on disk (by default the platform's own repository).

Walks ``root`` pruning excluded directories, keeps files matching an include glob, skips
symlinks (they could point outside ``root``) and scans the rest in place with
:func:`agents.guardian.scan.scan_paths`. Files over ``max_file_bytes`` are not scanned; each
yields an ``info`` finding ``guardian:skipped-large-file`` so the blind spot is visible.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path

from agents.guardian.errors import ScanInputError, TooManyFiles
from agents.guardian.finding import Finding
from agents.guardian.scan import ScanOptions, scan_paths

__all__ = ["DEFAULT_EXCLUDE", "list_tree", "scan_tree"]

#: Path components (fnmatch globs) never descended into.
DEFAULT_EXCLUDE: tuple[str, ...] = (".venv", ".lvlup*", "node_modules", ".git")


def _included(rel: str, patterns: Sequence[str]) -> bool:
    """fnmatch ``rel`` against ``patterns``; ``**/x`` also matches ``x`` at the top level."""
    return any(
        fnmatch.fnmatchcase(rel, p) or (p.startswith("**/") and fnmatch.fnmatchcase(rel, p[3:]))
        for p in patterns
    )


def _excluded(name: str, exclude: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in exclude)


def list_tree(
    root: Path,
    include: Sequence[str] = ("**/*.py",),
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    *,
    max_files: int = 5000,
) -> list[str]:
    """Sorted root-relative POSIX paths of the regular files to scan.

    A path is excluded when any of its components matches an ``exclude`` glob. Raises
    :class:`TooManyFiles` past ``max_files`` matches and :class:`ScanInputError` when ``root``
    is not a directory.
    """
    if not root.is_dir():
        raise ScanInputError(f"scan root {str(root)!r} is not a directory")
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not _excluded(d, exclude))
        base = Path(dirpath)
        for name in sorted(filenames):
            full = base / name
            rel = full.relative_to(root).as_posix()
            if _excluded(name, exclude) or full.is_symlink() or not _included(rel, include):
                continue
            found.append(rel)
            if len(found) > max_files:
                raise TooManyFiles(f"more than {max_files} files under {str(root)!r} to scan")
    return sorted(found)


def scan_tree(
    root: Path,
    include: Sequence[str] = ("**/*.py",),
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    *,
    max_files: int = 5000,
    max_file_bytes: int = 1024 * 1024,
    agent_id: str | None = None,
    options: ScanOptions | None = None,
) -> list[Finding]:
    """Scan the files :func:`list_tree` selects; ``proposal_id`` is ``None`` (repo-wide scan).

    ``max_file_bytes`` bounds one file's size in bytes. Raises what :func:`list_tree` and
    :func:`~agents.guardian.scan.scan_paths` raise.
    """
    scan: list[str] = []
    skipped: list[Finding] = []
    for rel in list_tree(root, include, exclude, max_files=max_files):
        size = (root / rel).stat().st_size
        if size > max_file_bytes:
            skipped.append(Finding(
                tool="guardian", rule_id="guardian:skipped-large-file", file_path=rel, line=1,
                severity="info", confidence="high", agent_id=agent_id,
                message=f"not scanned: {size} bytes, over the {max_file_bytes}-byte bound",
            ))
        else:
            scan.append(rel)
    findings = scan_paths(root, scan, agent_id=agent_id, options=options or ScanOptions())
    return sorted([*findings, *skipped], key=Finding.sort_key)
