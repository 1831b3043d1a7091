"""Scan sources with bandit, detect-secrets and ruff; pure of I/O beyond a temp dir.

Any file is scanned for secrets; bandit and ruff read the Python ones (``.py``, ``.pyi``).

:func:`scan_files` takes in-memory sources (a proposal's files), writes them to a private
temporary directory (bandit and detect-secrets read files), runs the three scanners and
returns sorted, redacted findings with deterministic ids. :func:`scan_paths` does the same for
files already on disk (used by :mod:`agents.guardian.repo`).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agents.guardian.errors import ScanInputError
from agents.guardian.finding import Finding
from agents.guardian.scanners import redact, run_bandit, run_ruff, run_secrets

__all__ = ["TOOLS", "ScanOptions", "is_python", "scan_files", "scan_paths"]

#: Scanner names as they appear in ``Finding.tool`` and ``proposal_scanned.tools``.
TOOLS: tuple[str, ...] = ("bandit", "detect-secrets", "ruff")


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """Tunables of one scan.

    ``bandit_skip``: bandit test ids not run (``B101`` = ``assert`` used, noise in tests).
    ``ruff_select``: ruff rule prefixes; ``ruff_ignore``: codes dropped from them (``E501``:
    line length is style, ``S101``: same as bandit's ``B101``). ``max_total_bytes``: bound on
    the UTF-8 size of all sources given to :func:`scan_files`. ``ruff_timeout_s``: seconds
    before ruff is abandoned.
    """

    bandit_skip: tuple[str, ...] = ("B101",)
    ruff_select: tuple[str, ...] = ("E", "F", "B", "S")
    ruff_ignore: tuple[str, ...] = ("E501", "S101")
    max_total_bytes: int = 20 * 1024 * 1024
    ruff_timeout_s: float = 120.0


_DEFAULT_OPTIONS = ScanOptions()
_PYTHON_SUFFIXES = (".py", ".pyi")


def is_python(path: str) -> bool:
    """Whether bandit and ruff scan ``path``: its name ends in ``.py`` or ``.pyi``."""
    return path.endswith(_PYTHON_SUFFIXES)


def _checked_path(name: str) -> str:
    """``name`` as a safe root-relative POSIX path, or :class:`ScanInputError`."""
    path = PurePosixPath(name.replace("\\", "/"))
    if (
        not name
        or "\x00" in name
        or path.is_absolute()
        or ":" in path.parts[0]
        or any(part in ("..", ".", "") for part in path.parts)
    ):
        raise ScanInputError(f"unsafe file path {name!r}: give a relative path without '..'")
    return path.as_posix()


def scan_paths(
    root: Path,
    paths: Sequence[str],
    *,
    proposal_id: str | None = None,
    agent_id: str | None = None,
    options: ScanOptions = _DEFAULT_OPTIONS,
) -> list[Finding]:
    """Scan files on disk: ``paths`` are POSIX paths relative to ``root``.

    Every file is scanned for secrets (detect-secrets reads any text); bandit and ruff run on
    the Python ones (:func:`is_python`) only.

    Returns findings sorted by (path, line, tool, rule, message), messages redacted of any
    detected secret, ``proposal_id``/``agent_id`` attached and duplicate ids disambiguated.
    Raises :class:`~agents.guardian.errors.ScannerFailed` when a scanner fails.
    """
    rel = sorted({_checked_path(p) for p in paths})
    if not rel:
        return []
    python = [p for p in rel if is_python(p)]
    secrets, secret_values = run_secrets(root, rel)
    raw = [
        *(run_bandit(root, python, skip=options.bandit_skip) if python else []),
        *secrets,
        *run_ruff(
            root, python, select=options.ruff_select, ignore=options.ruff_ignore,
            timeout_s=options.ruff_timeout_s,
        ),
    ]
    seen: dict[str, int] = {}
    findings = []
    for hit in sorted(raw, key=Finding.sort_key):
        finding = dataclasses.replace(
            hit,
            message=redact(hit.message, hit.rule_id, secret_values),
            proposal_id=proposal_id,
            agent_id=agent_id,
        )
        base = finding.finding_id
        if base in seen:
            seen[base] += 1
            finding = dataclasses.replace(finding, occurrence=seen[base])
        else:
            seen[base] = 0
        findings.append(finding)
    return findings


def scan_files(
    files: Mapping[str, str],
    *,
    proposal_id: str | None = None,
    agent_id: str | None = None,
    options: ScanOptions = _DEFAULT_OPTIONS,
) -> list[Finding]:
    """Scan in-memory sources ``{relative path: text}`` (any kind of file).

    Every file is scanned for secrets, Python files (:func:`is_python`) also with bandit and
    ruff. Returns the findings of :func:`scan_paths`; an empty
    mapping yields ``[]``. Raises :class:`~agents.guardian.errors.ScanInputError` on an unsafe
    path (absolute, ``..``, drive letter, NUL) or when the sources exceed
    ``options.max_total_bytes``; :class:`~agents.guardian.errors.ScannerFailed` when a scanner
    fails.
    """
    encoded = {_checked_path(name): text.encode("utf-8") for name, text in files.items()}
    total = sum(len(data) for data in encoded.values())
    if total > options.max_total_bytes:
        raise ScanInputError(
            f"sources are {total} bytes, over the {options.max_total_bytes}-byte scan bound"
        )
    if not encoded:
        return []
    with tempfile.TemporaryDirectory(prefix="guardian-") as tmp:
        root = Path(tmp)
        for name, data in encoded.items():
            target = root / name
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            except OSError as exc:  # e.g. both "a" and "a/b.py" given
                raise ScanInputError(f"cannot lay out file {name!r}: {exc}") from exc
        return scan_paths(
            root, list(encoded), proposal_id=proposal_id, agent_id=agent_id, options=options
        )
