"""The scratch repository (the seed's "chaos repository"): where approved proposals land.

Approved changes are committed here — never to the platform's own repository. A proposal is
applied only when its ``target_repo`` is :data:`SCRATCH_REPO` (the name proposals use); its
post-image files (:func:`agents.proposals.files.proposal_files`, with this repository's
committed files as the base of modified ones) are written and committed with the agent as
author and a ``Proposal-Id:`` trailer. Applying is idempotent: a proposal whose trailer is
already in the history is not committed again.

Git that runs nothing (issue #17): a proposal's files are untrusted, so

* paths are checked by :func:`agents.proposals.files.safe_path` (no ``.git`` component in any
  case, no ``.gitattributes``/``.gitmodules``, no ``..`` or absolute paths) and written
  without following a symlink (each directory opened with ``O_NOFOLLOW`` relative to its
  parent, the file renamed into place);
* the commit is built with plumbing only — ``hash-object -w --no-filters --stdin`` from the
  bytes in memory, ``update-index --cacheinfo``, ``write-tree``, ``commit-tree``,
  ``update-ref`` — so no clean/smudge filter, hook or fsmonitor runs, whatever the
  repository's ``.git/config`` or attributes say;
* every ``git`` runs with a minimal environment, ``GIT_CONFIG_NOSYSTEM=1``,
  ``GIT_CONFIG_GLOBAL=/dev/null`` and ``-c`` overrides (:data:`_SAFE_CONFIG`) that switch off
  hooks, fsmonitor, attributes files, pagers and signature programs.

Uses the ``git`` executable (a subprocess per call; blocking — run in a thread).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agents.proposals.errors import ProposalError, ProposalInputError
from agents.proposals.files import proposal_files, safe_path
from streams.settings import tool_environment

__all__ = ["SCRATCH_REPO", "ScratchError", "ScratchRepo", "git_environment"]

#: ``target_repo`` of proposals meant for the scratch repository
SCRATCH_REPO = "scratch"

#: ``-c`` overrides on every git call: they win over the repository's own ``.git/config``
#: (git(1), "-c": command-line configuration has the highest precedence)
_SAFE_CONFIG = (
    "core.hooksPath=/dev/null", "core.fsmonitor=false", "core.attributesFile=/dev/null",
    "core.pager=cat", "core.sshCommand=false", "commit.gpgSign=false", "log.showSignature=false",
    "gpg.program=false", "core.askPass=false", "protocol.allow=never",
)
_PLATFORM = ("lvlup", "lvlup@localhost")


class ScratchError(ProposalError):
    """A git command in the scratch repository failed (retryable: disk, lock)."""


def git_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every scratch-repository ``git``: ``PATH`` only (no inherited
    ``GIT_*``), no system or global config (``GIT_CONFIG_NOSYSTEM=1``,
    ``GIT_CONFIG_GLOBAL=/dev/null``, ``GIT_ATTR_NOSYSTEM=1``), no prompts, ``extra`` on top."""
    return tool_environment({
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0", "HOME": "/nonexistent", "LC_ALL": "C",
        **(extra or {})})


class ScratchRepo:
    """A git repository at ``path`` (created with one empty commit when missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()

    def _git(self, *args: str, stdin: bytes | None = None,
             env: Mapping[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> bytes:
        overrides = [part for item in _SAFE_CONFIG for part in ("-c", item)]
        cmd = ["git", "--no-pager", "-C", str(self.path), *overrides, *args]
        try:
            done = subprocess.run(cmd, input=stdin, capture_output=True, timeout=60,
                                  check=False, env=git_environment(env))
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ScratchError(f"git {args[0]}: {exc}") from exc
        if done.returncode not in ok:
            raise ScratchError(f"git {args[0]} exited {done.returncode}: "
                               f"{done.stderr.decode(errors='replace')[:500]}")
        return done.stdout

    def ensure(self) -> ScratchRepo:
        """Create the repository (``git init`` + an empty first commit) if it does not exist."""
        if not (self.path / ".git").is_dir():
            self.path.mkdir(parents=True, exist_ok=True)
            self._git("init", "-q", "--template=", "-b", "main")
            self._commit("scratch repository for agent proposals\n", author=_PLATFORM,
                         parent=None)
        return self

    def read(self, rel: str) -> str | None:
        """The committed text of ``rel`` (from ``HEAD``, not the working tree), or None when
        it does not exist there. Raises :class:`ProposalInputError` for an unsafe path."""
        rel = safe_path(rel)
        out = self._git("cat-file", "--batch", stdin=f"HEAD:{rel}\n".encode())
        header, _, rest = out.partition(b"\n")
        fields = header.split()
        if len(fields) != 3 or fields[1] != b"blob":
            return None  # "<name> missing", or a tree/submodule at that path
        return rest[:int(fields[2])].decode("utf-8")

    def head(self) -> str:
        """The commit id ``HEAD`` points at."""
        return self._git("rev-parse", "--verify", "HEAD").decode().strip()

    def applied(self, proposal_id: str) -> bool:
        """Whether a commit with this proposal's trailer exists."""
        return bool(self._git("log", "--no-show-signature", "--format=%H", "--fixed-strings",
                              f"--grep=Proposal-Id: {proposal_id}").strip())

    def apply(self, proposal: Mapping[str, Any], decided_by: str) -> str | None:
        """Commit an approved ``proposal`` (a ``proposal_submitted`` record); returns the commit
        id, or None when it was already applied. Raises :class:`ProposalInputError` when its
        files cannot be built or written (unsafe path, a symlink on the way),
        :class:`ScratchError` when git fails."""
        pid = str(proposal["proposal_id"])
        if self.applied(pid):
            return None
        files = {safe_path(rel): text.encode("utf-8")
                 for rel, text in proposal_files(proposal, self.read).items()}
        agent = str(proposal["agent_id"])
        message = (f"{proposal['title']}\n\n{proposal['description']}\n\n"
                   f"Approved-By: {decided_by}\nProposal-Id: {pid}\n")
        return self._commit_files(files, message, author=(agent, f"{agent}@agents.lvlup"))

    def _commit_files(self, files: Mapping[str, bytes], message: str, *,
                      author: tuple[str, str]) -> str:
        """Write ``files`` (safe relative paths → bytes) and commit them on ``HEAD``."""
        for rel, data in files.items():
            _write_no_follow(self.path, rel, data)
        head = self._git("rev-parse", "--verify", "HEAD").decode().strip()
        self._git("read-tree", head)  # the index is HEAD's tree; no working-tree read
        for rel, data in files.items():
            blob = self._git("hash-object", "-w", "--no-filters", "--stdin", stdin=data)
            self._git("update-index", "--add", "--cacheinfo",
                      f"100644,{blob.decode().strip()},{rel}")
        return self._commit(message, author=author, parent=head)

    def paths(self) -> list[str]:
        """The regular files committed at ``HEAD`` (relative POSIX paths, sorted)."""
        out = self._git("ls-tree", "-r", "-z", "--full-tree", "HEAD")
        paths = []
        for entry in out.split(b"\0"):
            meta, _, name = entry.partition(b"\t")
            if meta.split()[:2] in ([b"100644", b"blob"], [b"100755", b"blob"]):
                paths.append(name.decode("utf-8", errors="replace"))
        return sorted(paths)

    def files(self, *, max_bytes: int = 4 * 2**20) -> dict[str, str]:
        """``{path: text}`` of the UTF-8 files committed at ``HEAD`` (from git's objects, not
        the working tree), at most ``max_bytes`` in all (the rest left out, in path order);
        files that are not UTF-8 are left out. Raises :class:`ScratchError` when git fails."""
        names = self.paths()
        if not names:
            return {}
        out = self._git("cat-file", "--batch",
                        stdin="".join(f"HEAD:{n}\n" for n in names).encode())
        files: dict[str, str] = {}
        total, pos = 0, 0
        for name in names:
            end = out.index(b"\n", pos)
            fields = out[pos:end].split()
            pos = end + 1
            if len(fields) != 3 or fields[1] != b"blob":
                continue
            size = int(fields[2])
            data = out[pos:pos + size]
            pos += size + 1
            total += size
            if total > max_bytes:
                break
            try:
                files[name] = data.decode("utf-8")
            except UnicodeDecodeError:
                continue
        return files

    def seed(self, files: Mapping[str, str]) -> str | None:
        """Commit those of ``files`` (``{path: text}``) that ``HEAD`` lacks, as the platform
        (an agent's later change to a seeded file is kept); returns the commit id or None
        when nothing was missing. Raises :class:`ProposalInputError` for an unsafe path."""
        have = set(self.paths())
        missing = {safe_path(rel): text.encode("utf-8") for rel, text in files.items()
                   if safe_path(rel) not in have}
        if not missing:
            return None
        return self._commit_files(missing, "seed: code for the agents to fix, with its tests\n",
                                  author=_PLATFORM)

    def _commit(self, message: str, *, author: tuple[str, str], parent: str | None) -> str:
        tree = self._git("write-tree").decode().strip()
        env = {"GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1],
               "GIT_COMMITTER_NAME": _PLATFORM[0], "GIT_COMMITTER_EMAIL": _PLATFORM[1]}
        parents = ["-p", parent] if parent else []
        commit = self._git("commit-tree", "--no-gpg-sign", tree, *parents, "-F", "-",
                           stdin=message.encode("utf-8"), env=env).decode().strip()
        self._git("update-ref", "-m", "lvlup: commit", "refs/heads/main", commit,
                  *([parent] if parent else []))
        return commit


def _write_no_follow(root: Path, rel: str, data: bytes) -> None:
    """Write ``data`` at ``root/rel`` without following any symlink: every directory is
    opened with ``O_NOFOLLOW`` relative to its parent's descriptor (no check-then-use race)
    and the file is written to a fresh name and renamed over the target, so an existing
    symlink or hard link there is replaced, never written through. Raises
    :class:`ProposalInputError` when a component is a symlink or not a directory."""
    parts = rel.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            with contextlib.suppress(FileExistsError):  # made earlier: opened below
                os.mkdir(part, 0o755, dir_fd=fd)
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise ProposalInputError(f"{rel}: path goes through a symlink or a file"
                                             f" ({part!r})") from exc
                raise
            os.close(fd)
            fd = nxt
        name = parts[-1]
        try:
            if stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                raise ProposalInputError(f"{rel}: the target is a symlink")
        except FileNotFoundError:
            pass
        tmp = f".lvlup-write-{secrets.token_hex(8)}"
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644,
                      dir_fd=fd)
        try:
            with os.fdopen(out, "wb") as fh:
                fh.write(data)
            os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        except OSError as exc:
            os.unlink(tmp, dir_fd=fd)
            if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                raise ProposalInputError(f"{rel}: a directory is in the way") from exc
            raise
    finally:
        os.close(fd)
