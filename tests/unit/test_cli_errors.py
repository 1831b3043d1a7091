"""The CLI's error policy: a package's base error → one stderr line, exit code 2, no traceback."""

from __future__ import annotations

import pytest
import typer

import infra.cli.app
from agents.custody.errors import CustodyError
from inference.errors import EngineBusy, ModelLoadError
from infra.cli.errors import USER_ERRORS, error_line
from schemas.confluent import RegistryUnavailable
from schemas.errors import CatalogError
from sinks.errors import SinkError
from streams.errors import LvlupError


def _raising(exc: Exception) -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.command()
    def boom() -> None:
        raise exc

    @app.command()
    def other() -> None:  # two commands: typer keeps the command name on the command line
        """Unused."""

    return app


@pytest.mark.parametrize("exc", [
    CatalogError("topic lvlup.x: partitions must be >= 1"),
    ModelLoadError("model file /m.gguf: digest mismatch\nsecond line"),
    LvlupError("bad input"), SinkError("store"), CustodyError("bank"),
    RegistryUnavailable("registry down"), EngineBusy("busy"),
])
def test_a_package_error_ends_in_one_line_and_exit_code_2(monkeypatch, capsys, exc):
    monkeypatch.setattr(infra.cli.app, "build_app", lambda: _raising(exc))
    with pytest.raises(SystemExit) as ended:
        infra.cli.app.main(["boom"])
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lvlup: error: ")
    assert "Traceback" not in err
    assert ("retryable" in err) == isinstance(exc, RegistryUnavailable | EngineBusy)


def test_a_bug_keeps_its_traceback(monkeypatch):
    monkeypatch.setattr(infra.cli.app, "build_app", lambda: _raising(KeyError("bug")))
    with pytest.raises(KeyError):
        infra.cli.app.main(["boom"])


def test_every_package_base_error_is_covered():
    from agents.guardian.errors import GuardianError
    from agents.proposals.errors import ProposalError
    from inference.errors import InferenceError
    from infra.errors import StackError
    from schemas.errors import SchemaError

    for base in (LvlupError, SchemaError, SinkError, InferenceError, CustodyError,
                 ProposalError, GuardianError, StackError, RegistryUnavailable):
        assert base in USER_ERRORS
    assert error_line(LvlupError("a\n  b")) == "lvlup: error: a b"
