"""Issue #17, item 2: git that runs nothing.

A proposal may not write git's own files (``.git/…`` in any spelling, ``.gitattributes``,
``.gitmodules``), and even a scratch repository whose ``.git/config`` already names a filter,
an fsmonitor and hooks that would run a command must be committed to without running any of
them. Each attack is shown to be live against a plain ``git add``/``git commit`` first, so a
passing test is not vacuous.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from agents.custody.gate import PositionedRun
from agents.proposals.errors import ProposalInputError
from agents.proposals.files import proposal_files, safe_path
from agents.proposals.pipeline import PipelineDeps, ProposalPolicy, process_proposal
from agents.proposals.scratch import ScratchRepo
from tests.proposals.support import CLEAN, DAY, proposal, run_result

T0 = 1_760_000_000_000


def _evil_config(marker: Path) -> str:
    cmd = f"sh -c 'touch {marker}'"
    return (f'[filter "x"]\n\tclean = {cmd}\n\tsmudge = {cmd}\n\trequired = true\n'
            f"[core]\n\tfsmonitor = {cmd}\n\thooksPath = hooks-evil\n"
            f'[diff "x"]\n\ttextconv = {cmd}\n')


def _plant(repo: Path, marker: Path) -> None:
    """What an attacker with a foothold in the scratch repository would leave there."""
    with (repo / ".git" / "config").open("a", encoding="utf-8") as fh:
        fh.write(_evil_config(marker))
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "attributes").write_text("* filter=x diff=x\n")
    (repo / ".gitattributes").write_text("* filter=x diff=x\n")
    for hooks in (repo / ".git" / "hooks", repo / "hooks-evil"):
        hooks.mkdir(exist_ok=True)
        for name in ("pre-commit", "commit-msg", "post-commit", "reference-transaction",
                     "post-index-change", "pre-auto-gc"):
            hook = hooks / name
            hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
            hook.chmod(0o755)


@pytest.mark.parametrize("path", [
    ".git/config", ".GIT/config", "a/.git/hooks/pre-commit", ".git./config", ".git /config",
    "git~1/config", ".gitattributes", "sub/.gitattributes", ".GitAttributes", ".gitmodules",
    "/etc/passwd", "../x.py", "a/../../x.py", "a\\..\\x.py", "a\x00.py", "a/\n.py", "C:/x.py",
    "a//b.py", "./x.py",
])
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(ProposalInputError, match="unsafe"):
        safe_path(path)


def test_ordinary_paths_still_pass() -> None:
    for ok in ("tool/clean.py", ".github/workflows/ci.yml", "gitx.py", "docs/.gitkeep",
               "git~x.py", "docs/.gitignore"):
        assert safe_path(ok) == ok
    assert safe_path("b/pkg/x.py") == "pkg/x.py"  # the diff's b/ prefix


def test_a_proposal_writing_git_config_and_attributes_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    files = {".git/config": _evil_config(marker), ".gitattributes": "* filter=x\n"}
    for path, text in files.items():
        record = proposal("good-1", {"tool/clean.py": CLEAN, path: text}, occurred_at=1)
        with pytest.raises(ProposalInputError, match="git's own files"):
            proposal_files(record)
        repo = ScratchRepo(tmp_path / f"scratch-{path.strip('.').replace('/', '-')}").ensure()
        with pytest.raises(ProposalInputError, match="git's own files"):
            repo.apply(record, "alice")
        # also through code_after: the record's own file_path
        with pytest.raises(ProposalInputError, match="git's own files"):
            repo.apply({**record, "file_path": path, "code_after": text}, "alice")
        assert "filter" not in (repo.path / ".git" / "config").read_text()
    assert not marker.exists()


def test_the_pipeline_declines_a_git_path_before_anything_runs() -> None:
    emitted: list[tuple[str, dict[str, Any]]] = []

    async def emit(rtype: str, rec: dict[str, Any]) -> None:
        emitted.append((rtype, rec))

    def no_sandbox(*_: Any) -> Any:
        raise AssertionError("an invalid proposal must not reach the sandbox")

    runs = [PositionedRun(run_result("good-1", occurred_at=T0 - (i + 1) * DAY,
                                     run_id=f"r{i}-{c}", category=c),
                          "lvlup.custody.run-results", 1, 2 * i + j)
            for i in range(3) for j, c in enumerate(("code_quality", "security_awareness"))]
    record = proposal("good-1", {"tool/clean.py": CLEAN, ".git/hooks/post-commit": "x\n"},
                      occurred_at=T0)
    deps = PipelineDeps(emit=emit, runs=lambda agent: runs, now_ms=lambda: T0 + 5,
                        run_python=no_sandbox)
    policy = ProposalPolicy()  # custody-v1: 10/10 runs in both required categories pass
    result = asyncio.run(process_proposal(record, deps, policy))
    assert result.stage == "invalid"
    assert "git's own files" in emitted[-1][1]["reason"]


def test_the_planted_attack_is_live_against_plain_git(tmp_path: Path) -> None:
    """Control: the same planted repository makes an ordinary ``git add`` run the filter."""
    repo = ScratchRepo(tmp_path / "scratch").ensure().path
    marker = tmp_path / "pwned-control"
    _plant(repo, marker)
    (repo / "x.py").write_text("x = 1\n")
    subprocess.run(["git", "-C", str(repo), "add", "x.py"], capture_output=True, check=False)
    assert marker.exists()


def test_a_planted_repository_commits_without_running_anything(tmp_path: Path) -> None:
    repo = ScratchRepo(tmp_path / "scratch").ensure()
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    _plant(repo.path, marker)
    first = proposal("good-1", {"tool/clean.py": CLEAN}, occurred_at=1, title="add clean")
    commit = repo.apply(first, "alice")
    assert commit and repo.applied(str(first["proposal_id"]))
    modify = ("--- a/tool/clean.py\n+++ b/tool/clean.py\n@@ -4,2 +4,2 @@\n"
              " def double(x: int) -> int:\n-    return 2 * x\n+    return x + x\n")
    second = {**proposal("good-1", {"y.py": ""}, occurred_at=2), "file_path": "tool/clean.py",
              "unified_diff": modify}
    assert repo.apply(second, "bob")
    assert repo.apply(second, "bob") is None
    assert not marker.exists(), "git ran a planted filter, hook or fsmonitor"
    # the blob is the proposal's bytes: no clean filter rewrote it
    shown = subprocess.run(["git", "-C", str(repo.path), "-c", "core.fsmonitor=false",
                            "cat-file", "blob", "HEAD:tool/clean.py"],
                           capture_output=True, text=True, check=True).stdout
    assert "return x + x" in shown
    assert not marker.exists()


def test_writes_never_follow_a_symlink(tmp_path: Path) -> None:
    repo = ScratchRepo(tmp_path / "scratch").ensure()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.py").write_text("original\n")
    (repo.path / "dirlink").symlink_to(outside)
    (repo.path / "filelink.py").symlink_to(outside / "target.py")
    for name in ("dirlink/evil.py", "filelink.py"):
        with pytest.raises(ProposalInputError, match="symlink"):
            repo.apply(proposal("a", {name: "x = 1\n"}, occurred_at=1), "alice")
    assert [p.name for p in outside.iterdir()] == ["target.py"]
    assert (outside / "target.py").read_text() == "original\n"
