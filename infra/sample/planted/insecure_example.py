"""A deliberately insecure module: the *planted finding* of ``lvlup run`` (issue #12).

Guardian's scheduled scan of the platform's own repository must report it: a shell command
built from input (bandit B602, CWE-78) and a hard-coded credential (detect-secrets). It is
sample data — nothing imports it, and ruff's security rules are silenced for this folder only
(pyproject.toml) so that the platform's scanner, not the linter, is what finds it.
"""

from __future__ import annotations

import subprocess

DATABASE_PASSWORD = "hunter2-planted-9f8e7d6c5b4a"


def archive(path: str) -> int:
    """Tar ``path`` — through a shell, with the path pasted into the command line."""
    return subprocess.run(f"tar czf /tmp/backup.tgz {path}", shell=True, check=False).returncode
