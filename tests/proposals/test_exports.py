"""``__all__`` of the proposals and conquest packages and their modules lists real names."""

from __future__ import annotations

import importlib

import pytest

MODULES = ["agents.proposals", "agents.proposals.digest", "agents.proposals.draft",
           "agents.proposals.errors", "agents.proposals.experiment", "agents.proposals.files",
           "agents.proposals.pipeline", "agents.proposals.records",
           "agents.proposals.reposcan", "agents.proposals.runindex", "agents.proposals.scratch",
           "agents.proposals.worker", "agents.conquest", "agents.conquest.durations",
           "agents.conquest.patterns",
           "agents.conquest.recommend", "agents.conquest.worker", "infra.cli.proposalscmd"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_are_unique(name):
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported))
    assert [n for n in exported if not hasattr(module, n)] == []
