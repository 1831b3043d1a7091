"""`lvlup bench inference` states whether a run meets issue #21's goals (the page's verdict
reads ``pass``; without it every run read "falls short")."""

from __future__ import annotations

import pytest

from infra.bench.inference_front import GOAL_ADDED_MS, GOAL_RATIO, GOAL_SCALING, meets_goals


def test_a_run_at_every_goal_meets_them():
    assert meets_goals(GOAL_ADDED_MS, GOAL_RATIO, GOAL_SCALING)
    assert meets_goals(-3.0, 1.0, 2.2)


@pytest.mark.parametrize("added, ratio, scaling", [
    (GOAL_ADDED_MS + 0.1, 1.0, 2.0),  # the front door adds too much latency
    (0.0, GOAL_RATIO - 0.01, 2.0),     # too few tokens/s through it
    (0.0, 1.0, GOAL_SCALING - 0.01),   # batching does not scale enough
])
def test_missing_any_goal_fails_the_run(added, ratio, scaling):
    assert not meets_goals(added, ratio, scaling)
