"""The scratch repository (the seed's "chaos repository"): where approved proposals land.

Approved changes are committed here — never to the platform's own repository. A proposal is
applied only when its ``target_repo`` is :data:`SCRATCH_REPO` (the name proposals use); its
post-image files (:func:`agents.proposals.files.proposal_files`, with this repository's
files as the base of modified ones) are written and committed with the agent as author and a
``Proposal-Id:`` trailer. Applying is idempotent: a proposal whose trailer is already in the
history is not committed again. Paths are checked to stay inside the repository (no ``..``,
no absolute paths, no writing through a symlink).

Uses the ``git`` executable (a subprocess per call; blocking — run in a thread).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agents.proposals.errors import ProposalError, ProposalInputError
from agents.proposals.files import proposal_files, safe_path

__all__ = ["SCRATCH_REPO", "ScratchError", "ScratchRepo"]

#: ``target_repo`` of proposals meant for the scratch repository
SCRATCH_REPO = "scratch"


class ScratchError(ProposalError):
    """A git command in the scratch repository failed (retryable: disk, lock)."""


class ScratchRepo:
    """A git repository at ``path`` (created with one empty commit when missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()

    def _git(self, *args: str) -> str:
        try:
            done = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True,
                                  text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ScratchError(f"git {args[0]}: {exc}") from exc
        if done.returncode != 0:
            raise ScratchError(f"git {args[0]} exited {done.returncode}: {done.stderr[:500]}")
        return done.stdout

    def ensure(self) -> ScratchRepo:
        """Create the repository (``git init`` + an empty first commit) if it does not exist."""
        if not (self.path / ".git").is_dir():
            self.path.mkdir(parents=True, exist_ok=True)
            self._git("init", "-q", "-b", "main")
            self._git("-c", "user.name=lvlup", "-c", "user.email=lvlup@localhost", "commit",
                      "-q", "--allow-empty", "-m", "scratch repository for agent proposals")
        return self

    def _target(self, rel: str) -> Path:
        target = self.path / safe_path(rel)
        for parent in [target, *target.parents]:
            if parent == self.path:
                break
            if parent.is_symlink():
                raise ProposalInputError(f"{rel}: path goes through a symlink")
        return target

    def read(self, rel: str) -> str | None:
        """The committed working-tree text of ``rel``, or None when it does not exist."""
        target = self._target(rel)
        return target.read_text(encoding="utf-8") if target.is_file() else None

    def applied(self, proposal_id: str) -> bool:
        """Whether a commit with this proposal's trailer exists."""
        return bool(self._git("log", "--format=%H", "--fixed-strings",
                              f"--grep=Proposal-Id: {proposal_id}").strip())

    def apply(self, proposal: Mapping[str, Any], decided_by: str) -> str | None:
        """Commit an approved ``proposal`` (a ``proposal_submitted`` record); returns the commit
        id, or None when it was already applied. Raises :class:`ProposalInputError` when its
        files cannot be built or written, :class:`ScratchError` when git fails."""
        pid = str(proposal["proposal_id"])
        if self.applied(pid):
            return None
        files = proposal_files(proposal, self.read)
        for rel, text in files.items():
            target = self._target(rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        self._git("add", "--", *files)
        agent = str(proposal["agent_id"])
        message = (f"{proposal['title']}\n\n{proposal['description']}\n\n"
                   f"Approved-By: {decided_by}\nProposal-Id: {pid}\n")
        self._git("-c", "user.name=lvlup", "-c", "user.email=lvlup@localhost", "commit", "-q",
                  "--allow-empty", "--author", f"{agent} <{agent}@agents.lvlup>", "-m", message)
        return self._git("rev-parse", "HEAD").strip()
