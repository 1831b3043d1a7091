"""The learning curve's checkpoints are validated before anything is built."""

from __future__ import annotations

import pytest

from infra.bench.learning_curve import CHECKPOINTS, learning_curve


def test_checkpoints_are_the_issues_and_must_ascend() -> None:
    assert CHECKPOINTS == (0, 1, 2, 4, 8)
    for bad in ((1, 0), (0, 0, 1), (-1, 2)):
        with pytest.raises(ValueError, match="ascending"):
            learning_curve("postgresql://unused/db", None, [], [], seed=1, k=5,  # type: ignore[arg-type]
                           checkpoints=bad)
