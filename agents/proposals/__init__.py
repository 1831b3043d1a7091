"""The proposals pipeline (issue #8): submitted → gated → scanned → experimented → decided.

Pure parts: :mod:`~agents.proposals.files` (post-image files from the diff),
:mod:`~agents.proposals.experiment` (tests in the sandbox, summary),
:mod:`~agents.proposals.records` (record builders, deterministic ids),
:mod:`~agents.proposals.pipeline` (the lifecycle over injected collaborators). Kafka:
:mod:`~agents.proposals.runindex`,
:mod:`~agents.proposals.worker` (``lvlup worker proposals``).
"""

from __future__ import annotations

from agents.proposals.errors import ProposalError, ProposalInputError
from agents.proposals.experiment import ExperimentSummary, TestCase, TestOutcome, summarize
from agents.proposals.files import proposal_files
from agents.proposals.pipeline import (
    PipelineDeps,
    ProposalPolicy,
    ProposalResult,
    decision_notification,
    process_proposal,
)

__all__ = [
    "ExperimentSummary",
    "PipelineDeps",
    "ProposalError",
    "ProposalInputError",
    "ProposalPolicy",
    "ProposalResult",
    "TestCase",
    "TestOutcome",
    "decision_notification",
    "process_proposal",
    "proposal_files",
    "summarize",
]
