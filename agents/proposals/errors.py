"""Exceptions raised by the proposals pipeline.

Tree::

    ProposalError
    └── ProposalInputError (ValueError)   poison: the proposal can never be processed as given
                                          (its diff does not apply, a path is unsafe)

Retryable failures come from the collaborators and keep their own types:
:class:`agents.guardian.errors.ScannerFailed`, :class:`agents.custody.errors.SandboxError`,
:class:`streams.producer.DeliveryFailed`.
"""

from __future__ import annotations

__all__ = ["ProposalError", "ProposalInputError"]


class ProposalError(Exception):
    """Base class of every error the proposals pipeline raises."""


class ProposalInputError(ProposalError, ValueError):
    """The proposal's files cannot be built from its record (bad diff, unsafe path)."""
