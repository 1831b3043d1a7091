"""Guardian: static security and quality scans of proposed and registered code.

Pure core only: :func:`scan_files` (in-memory sources of a proposal), :func:`scan_tree`
(a tree on disk) and :func:`scan_verdict` (the ``proposal_scanned`` verdict). Findings map to
``guardian_finding`` records via :meth:`Finding.to_record`.
"""

from __future__ import annotations

from agents.guardian.errors import GuardianError, ScanInputError, ScannerFailed, TooManyFiles
from agents.guardian.finding import CONFIDENCES, SEVERITIES, Confidence, Finding, Severity
from agents.guardian.repo import DEFAULT_EXCLUDE, list_tree, scan_tree
from agents.guardian.scan import TOOLS, ScanOptions, scan_files, scan_paths
from agents.guardian.verdict import VerdictPolicy, scan_verdict

__all__ = [
    "CONFIDENCES",
    "DEFAULT_EXCLUDE",
    "SEVERITIES",
    "TOOLS",
    "Confidence",
    "Finding",
    "GuardianError",
    "ScanInputError",
    "ScanOptions",
    "ScannerFailed",
    "Severity",
    "TooManyFiles",
    "VerdictPolicy",
    "list_tree",
    "scan_files",
    "scan_paths",
    "scan_tree",
    "scan_verdict",
]
