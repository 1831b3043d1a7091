"""plan_run with ``sources``: a retest draws first from the items cut from what the agent
just read (custody_test_requested v2 ``sources``)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agents.custody.bank import Bank
from agents.custody.items import Category, Item, Tier
from agents.custody.planning import plan_run
from agents.custody.state import AgentState

KV = Category.KNOWLEDGE_VERIFICATION


def _item(n: int, source: str) -> Item:
    return Item(id=f"kvc-{n:04d}", category=KV, tier=Tier.BASIC, prompt=f"Fill in {n}",
                scorer="exact", params={"answers": [str(n)]}, source=source)


@pytest.fixture
def mixed(bank: Bank) -> Bank:
    extra = [_item(n, "package:bandit" if n < 4 else "package:httpx") for n in range(40)]
    return replace(bank, items=tuple(sorted((*bank.items, *extra), key=lambda i: i.id)))


def agent() -> AgentState:
    return AgentState("guardian", "guardian", level=1)


def test_sources_narrow_the_draw(mixed: Bank) -> None:
    plan = plan_run(agent(), KV, 3, 7, mixed, sources=["package:bandit"])
    assert len(plan) == 3 and {i.source for i in plan} == {"package:bandit"}


def test_without_sources_the_whole_category(mixed: Bank) -> None:
    sources = {i.source for s in range(30) for i in plan_run(agent(), KV, 3, s, mixed)}
    assert len(sources) > 1


def test_too_few_focus_items_give_a_shorter_run_of_only_those(mixed: Bank) -> None:
    plan = plan_run(agent(), KV, 8, 7, mixed, sources=["package:bandit"])
    assert len(plan) == 4 and {i.source for i in plan} == {"package:bandit"}


def test_unknown_source_falls_back_to_the_category(mixed: Bank) -> None:
    assert ([i.id for i in plan_run(agent(), KV, 3, 7, mixed, sources=["package:nope"])]
            == [i.id for i in plan_run(agent(), KV, 3, 7, mixed)])


def test_deterministic(mixed: Bank) -> None:
    first = plan_run(agent(), KV, 3, 11, mixed, sources=["package:httpx"])
    assert first == plan_run(agent(), KV, 3, 11, mixed, sources=["package:httpx"])
