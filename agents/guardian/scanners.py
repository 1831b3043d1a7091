"""Adapters from bandit, detect-secrets and ruff to :class:`Finding`.

Each adapter takes a root directory and the root-relative POSIX paths to scan (files that
exist on disk) and returns findings whose ``file_path`` is root-relative. Suppression comments
(``# nosec``, ``# noqa``, ``# pragma: allowlist secret``) are ignored on purpose: the code
scanned is untrusted and must not be able to silence its own scan.

Sources: bandit's ``BanditManager`` library API (bandit >= 1.7.5 carries ``issue.cwe``);
detect-secrets' ``SecretsCollection`` with every default plugin (keyword, high-entropy, vendor
key patterns); ruff's JSON output (``ruff check --output-format json``).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.guardian.errors import ScannerFailed
from agents.guardian.finding import Confidence, Finding, Severity

__all__ = ["redact", "run_bandit", "run_ruff", "run_secrets"]

_log = logging.getLogger(__name__)

_BANDIT_LEVELS: dict[str, Severity] = {"LOW": "low", "MEDIUM": "medium", "HIGH": "high"}
_BANDIT_CONFIDENCE: dict[str, Confidence] = {"LOW": "low", "MEDIUM": "medium", "HIGH": "high"}
#: detect-secrets plugin types that are generic heuristics rather than a vendor's key format.
_SECRET_CONFIDENCE: dict[str, Confidence] = {
    "Secret Keyword": "medium",
    "Base64 High Entropy String": "low",
    "Hex High Entropy String": "low",
}
_ALLOWLIST_FILTER = "detect_secrets.filters.allowlist.is_line_allowlisted"
#: detect-secrets keeps its settings in module globals; one scan at a time per process.
_SECRETS_LOCK = threading.Lock()
#: Rules whose messages quote the suspected password itself.
_PASSWORD_RULES = frozenset({"B105", "B106", "B107", "ruff:S105", "ruff:S106", "ruff:S107"})
_QUOTED = re.compile(r"""(['"`]).*?\1""")


def _relative(root: Path, name: str) -> str:
    return Path(name).resolve().relative_to(root.resolve()).as_posix()


def run_bandit(root: Path, paths: Sequence[str], *, skip: Sequence[str] = ()) -> list[Finding]:
    """Run every bandit test except ``skip`` (test ids, e.g. ``"B101"``) over ``paths``.

    Files bandit cannot parse yield a ``guardian:unparsed`` finding (medium), since nothing in
    them was checked. Raises :class:`ScannerFailed` if bandit itself raises.
    """
    from bandit.core import config, manager  # heavy: loaded on the first scan

    try:
        mgr = manager.BanditManager(
            config.BanditConfig(), "file", quiet=True, ignore_nosec=True,
            profile={"exclude": list(skip)},
        )
        mgr.discover_files([str(root / p) for p in paths], recursive=False)
        mgr.run_tests()
    except Exception as exc:  # any bandit/detect-secrets error, translated here
        raise ScannerFailed("bandit", repr(exc)) from exc
    findings = []
    for issue in mgr.get_issue_list():
        cwe = getattr(issue, "cwe", None)
        cwe_id = getattr(cwe, "id", 0) if cwe is not None else 0
        findings.append(Finding(
            tool="bandit",
            rule_id=issue.test_id,
            file_path=_relative(root, issue.fname),
            line=max(1, int(issue.lineno)),
            severity=_BANDIT_LEVELS.get(str(issue.severity), "info"),
            confidence=_BANDIT_CONFIDENCE.get(str(issue.confidence), "low"),
            message=str(issue.text),
            cwe=f"CWE-{cwe_id}" if cwe_id else None,
        ))
    for name, reason in mgr.skipped:
        findings.append(Finding(
            tool="guardian", rule_id="guardian:unparsed", file_path=_relative(root, name),
            line=1, severity="medium", confidence="high",
            message=f"bandit could not parse the file, so it was not checked: {reason}",
        ))
    return findings


def run_secrets(root: Path, paths: Sequence[str]) -> tuple[list[Finding], set[str]]:
    """Scan ``paths`` with detect-secrets' default plugins and filters (allowlist comments off).

    Returns ``(findings, secret_values)``; the values are only for :func:`redact` and must not
    be logged or published. Each finding is ``secret:<plugin type>``, CWE-798, severity high;
    the message never contains the secret. Raises :class:`ScannerFailed` on a plugin error.
    """
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import default_settings

    collection = SecretsCollection()
    try:
        with _SECRETS_LOCK, default_settings() as settings:
            settings.disable_filters(_ALLOWLIST_FILTER)
            for path in paths:
                collection.scan_file(str(root / path))
    except Exception as exc:  # any bandit/detect-secrets error, translated here
        raise ScannerFailed("detect-secrets", repr(exc)) from exc
    findings: list[Finding] = []
    values: set[str] = set()
    for filename, secret in collection:
        if secret.secret_value:
            values.add(secret.secret_value)
        findings.append(Finding(
            tool="detect-secrets",
            rule_id=f"secret:{secret.type}",
            file_path=_relative(root, filename),
            line=max(1, secret.line_number),
            severity="high",
            confidence=_SECRET_CONFIDENCE.get(secret.type, "high"),
            message=f"Possible hard-coded secret ({secret.type}); value withheld.",
            cwe="CWE-798",
        ))
    return findings, values


def ruff_binary() -> str:
    """Path of the ruff executable: the one shipped by the ``ruff`` package, else ``PATH``.

    Raises :class:`ScannerFailed` when neither exists.
    """
    try:
        from ruff.__main__ import find_ruff_bin

        return str(find_ruff_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("ruff")
        if found is None:
            raise ScannerFailed("ruff", "no ruff executable found") from None
        return found


def run_ruff(
    root: Path,
    paths: Sequence[str],
    *,
    select: Sequence[str],
    ignore: Sequence[str] = (),
    timeout_s: float = 120.0,
) -> list[Finding]:
    """Run ``ruff check`` with rule prefixes ``select`` minus ``ignore`` over ``paths``.

    ``--isolated`` ignores any ruff config near the files; ``--ignore-noqa`` ignores
    suppressions. Rule ids are ``ruff:<code>`` (``ruff:syntax-error`` when ruff gives none);
    ``S`` (security) codes are medium, others low. ``timeout_s`` is in seconds. Raises
    :class:`ScannerFailed` on a non-zero exit, a timeout or unreadable output.
    """
    if not paths:
        return []
    argv = [
        ruff_binary(), "check", "--isolated", "--no-cache", "--ignore-noqa", "--exit-zero",
        "--output-format", "json", "--select", ",".join(select),
        *(["--ignore", ",".join(ignore)] if ignore else []), "--", *paths,
    ]
    try:
        done = subprocess.run(
            argv, cwd=root, capture_output=True, text=True, timeout=timeout_s, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ScannerFailed("ruff", repr(exc)) from exc
    if done.returncode != 0:
        raise ScannerFailed("ruff", f"exit {done.returncode}: {done.stderr.strip()[:500]}")
    try:
        rows: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    except json.JSONDecodeError as exc:
        raise ScannerFailed("ruff", f"unreadable JSON output: {exc}") from exc
    findings = []
    for row in rows:
        code = row.get("code") or "syntax-error"
        findings.append(Finding(
            tool="ruff",
            rule_id=f"ruff:{code}",
            file_path=_relative(root, str(root / row["filename"])),
            line=max(1, int((row.get("location") or {}).get("row") or 1)),
            severity="medium" if code.startswith("S") else "low",
            confidence="high",
            message=str(row.get("message", "")),
        ))
    return findings


def redact(message: str, rule_id: str, secrets: set[str]) -> str:
    """``message`` with known secret values, and quoted literals of password rules, masked."""
    for value in secrets:
        if len(value) >= 4:
            message = message.replace(value, "<redacted>")
    if rule_id in _PASSWORD_RULES:
        message = _QUOTED.sub("'<redacted>'", message)
    return message
