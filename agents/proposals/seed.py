"""What the scratch repository starts with: code guardian flags, and tests of its behaviour.

The agents' finding fixes need real findings in the repository they change, and a fix is only
evidence when a test shows the fixed function still does its job. The seed is:

* the platform's planted insecure module (``infra/sample/planted/insecure_example.py``, read
  from the platform's repository by the worker and passed in: bandit B602 ``shell=True``,
  CWE-78, and a hard-coded credential), with behaviour tests of ``archive``
  (:data:`PLANTED_TESTS`): the command is ``tar czf /tmp/backup.tgz <path>`` and its status
  is returned — true before and after a correct fix — and a path with shell syntax reaches tar
  as one argument (the finding's own regression test, false before the fix);
* :data:`LEGACY_SETTINGS`, a parser built on ``eval`` (bandit B307), and its tests.

Tests replace ``subprocess.run`` with a recorder, so they run in the sandbox without ``tar``.
"""

from __future__ import annotations

__all__ = ["LEGACY_SETTINGS", "LEGACY_SETTINGS_TESTS", "PLANTED_PATH", "PLANTED_TESTS",
           "seed_files"]

#: the platform's planted module, at the same path in the scratch repository
PLANTED_PATH = "infra/sample/planted/insecure_example.py"

PLANTED_TESTS = '''"""archive() runs tar czf /tmp/backup.tgz <path> and returns its status."""
import shlex
import subprocess

from infra.sample.planted import insecure_example


def _archive(path, status=0):
    calls = []

    class Done:
        returncode = status

    def record(cmd, *args, **kwargs):
        calls.append((cmd, kwargs))
        return Done()

    real = subprocess.run
    subprocess.run = record
    try:
        result = insecure_example.archive(path)
    finally:
        subprocess.run = real
    assert len(calls) == 1, calls
    cmd, kwargs = calls[0]
    argv = shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]
    return result, argv, kwargs


def test_archive_runs_tar_on_the_path():
    result, argv, _ = _archive("reports/q1", status=3)
    assert result == 3
    assert argv == ["tar", "czf", "/tmp/backup.tgz", "reports/q1"]


def test_archive_passes_the_path_as_one_argument():
    path = "x; touch pwned"
    _, argv, kwargs = _archive(path)
    assert not kwargs.get("shell"), "the command goes through a shell"
    assert argv[-1] == path and argv[:3] == ["tar", "czf", "/tmp/backup.tgz"]
'''

LEGACY_SETTINGS = '''"""Settings values parsed from text."""


def parse_value(text: str) -> object:
    """The Python literal written in text: a number, string, list, dict, bool or None."""
    return eval(text)
'''

LEGACY_SETTINGS_TESTS = '''from legacy.settings import parse_value


def test_parses_literals():
    assert parse_value("[1, 2.5, 'a']") == [1, 2.5, "a"]
    assert parse_value("{'debug': True, 'level': None}") == {"debug": True, "level": None}


def test_refuses_code():
    try:
        parse_value("__import__('os').getpid()")
    except (ValueError, SyntaxError):
        return
    raise AssertionError("code was evaluated")
'''


def seed_files(planted: str | None) -> dict[str, str]:
    """``{path: text}`` of the seed; ``planted`` is the planted module's text (None: the
    platform's repository is not at hand, so that module and its tests are left out)."""
    files = {"legacy/__init__.py": "", "legacy/settings.py": LEGACY_SETTINGS,
             "tests/test_legacy_settings.py": LEGACY_SETTINGS_TESTS}
    if planted is not None:
        files[PLANTED_PATH] = planted
        files["tests/test_planted_archive.py"] = PLANTED_TESTS
    return files
