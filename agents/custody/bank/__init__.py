"""The custody test bank: versioned YAML data in this package, plus HumanEval for code quality.

Files (read with :mod:`importlib.resources`): ``manifest.yaml`` (``version``, the category
``files``) and one ``<category>.yaml`` per hand-written category, each a list of items::

    - id: sec-007            # unique in the bank
      tier: advanced         # basic | intermediate | advanced | expert | master | legendary
      scorer: cwe            # a kind of agents.custody.scorers
      max_tokens: 64         # answer length hint
      prompt: "…"
      params: {accept: [89]}
      reference: "CWE-89"    # an answer that passes (self-test; never shown to agents)

For ``choice`` items the options are appended to the prompt as ``A) …`` lines and the
reference defaults to the right letter. The bank version is the manifest's ``version`` plus
the HumanEval tiering rule (``+humaneval.<rule>``) when HumanEval is included.

The version is a name people bump; :attr:`Bank.content_hash` is what the data *is*: SHA-256 of
the canonical JSON of every item (id, category, tier, prompt, scorer and its rule version,
params, max_tokens, reference, source), sorted by id. Every run records both
(``custody_run_result`` v2), so results are comparable exactly when their hashes match, even if
someone forgot to bump the version.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema
import yaml

from agents.custody.errors import BankError
from agents.custody.humaneval import HUMANEVAL_RULE, load_humaneval_items
from agents.custody.items import Category, Item, Tier
from agents.custody.scorers import REQUIRED_PARAMS, SCORER_VERSIONS

__all__ = ["Bank", "load_bank", "parse_items"]

_ITEM_KEYS = frozenset({"id", "tier", "scorer", "prompt", "params", "max_tokens", "reference"})


@dataclass(frozen=True, slots=True)
class Bank:
    """An immutable, versioned set of items, sorted by id."""

    version: str
    items: tuple[Item, ...]

    def by_category(self, category: Category) -> tuple[Item, ...]:
        """Items of ``category``, sorted by id."""
        return tuple(i for i in self.items if i.category is category)

    def get(self, item_id: str) -> Item:
        """The item with ``item_id``; raises :class:`KeyError` if absent."""
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    @property
    def content_hash(self) -> str:
        """SHA-256 (64 hex) of the bank's content (module doc); independent of item order and
        of ``version``. Computed on each access (a few milliseconds for ~300 items)."""
        canonical = [
            {"id": i.id, "category": i.category.value, "tier": i.tier.value, "prompt": i.prompt,
             "scorer": f"{i.scorer}/{SCORER_VERSIONS.get(i.scorer, 0)}", "params": i.params,
             "max_tokens": i.max_tokens, "reference": i.reference, "source": i.source}
            for i in sorted(self.items, key=lambda i: i.id)
        ]
        text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                          default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def counts(self) -> dict[str, dict[str, int]]:
        """``{category: {tier: n}}`` over every category and tier (zeros included)."""
        table = {c.value: {t.value: 0 for t in Tier} for c in Category}
        for item in self.items:
            table[item.category.value][item.tier.value] += 1
        return table


@functools.lru_cache(maxsize=2)
def load_bank(include_humaneval: bool = True) -> Bank:
    """Load and validate the packaged bank (cached). Raises :class:`BankError` on bad data."""
    manifest = _read_yaml("manifest.yaml")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("version"), str):
        raise BankError("manifest.yaml: needs a string 'version' and a list 'files'")
    items: list[Item] = []
    for name in manifest.get("files", []):
        category = Category(name.removesuffix(".yaml"))
        items.extend(parse_items(_read_yaml(name), category, where=name))
    version = manifest["version"]
    if include_humaneval:
        items.extend(load_humaneval_items())
        version += f"+humaneval.{HUMANEVAL_RULE}"
    ids = [i.id for i in items]
    if len(ids) != len(set(ids)):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise BankError(f"duplicate item ids: {dupes[:5]}")
    return Bank(version=version, items=tuple(sorted(items, key=lambda i: i.id)))


def _read_yaml(name: str) -> Any:
    try:
        text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
        return yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise BankError(f"{name}: {exc}") from exc


def parse_items(raw: Any, category: Category, *, where: str = "<data>") -> list[Item]:
    """Validate a list of raw item mappings of ``category`` and build :class:`Item` objects.

    Raises :class:`BankError` naming the file and item on any problem.
    """
    if not isinstance(raw, list):
        raise BankError(f"{where}: expected a list of items")
    return [_parse_item(entry, category, f"{where}[{n}]") for n, entry in enumerate(raw)]


def _parse_item(entry: Any, category: Category, where: str) -> Item:
    if not isinstance(entry, dict):
        raise BankError(f"{where}: an item must be a mapping")
    unknown = set(entry) - _ITEM_KEYS
    missing = {"id", "tier", "scorer", "prompt"} - set(entry)
    if unknown or missing:
        raise BankError(f"{where}: unknown keys {sorted(unknown)}, missing {sorted(missing)}")
    where = f"{where} ({entry['id']})"
    kind, params = entry["scorer"], entry.get("params") or {}
    if kind not in REQUIRED_PARAMS:
        raise BankError(f"{where}: unknown scorer kind {kind!r}")
    if not isinstance(params, dict) or REQUIRED_PARAMS[kind] - set(params):
        raise BankError(f"{where}: {kind} needs params {sorted(REQUIRED_PARAMS[kind])}")
    try:
        tier = Tier(entry["tier"])
    except ValueError as exc:
        raise BankError(f"{where}: unknown tier {entry['tier']!r}") from exc
    prompt, reference = str(entry["prompt"]).strip(), entry.get("reference")
    _check_params(kind, params, where)
    if kind == "choice":
        prompt = _render_choice(prompt, params["options"])
        reference = reference or params["answer"]
    if reference is None:
        raise BankError(f"{where}: a reference answer is required")
    return Item(
        id=str(entry["id"]),
        category=category,
        tier=tier,
        prompt=prompt,
        scorer=kind,
        params=params,
        max_tokens=int(entry.get("max_tokens", 256)),
        reference=str(reference),
    )


def _check_params(kind: str, params: Mapping[str, Any], where: str) -> None:
    try:
        if kind == "choice" and params["answer"] not in params["options"]:
            raise BankError(f"{where}: answer {params['answer']!r} is not an option")
        if kind == "regex":
            for key in ("pattern", "forbid"):
                if key in params:
                    re.compile(params[key])
        if kind == "json_schema":
            jsonschema.Draft202012Validator.check_schema(params["schema"])
    except (re.error, jsonschema.SchemaError) as exc:
        raise BankError(f"{where}: invalid {kind} params: {exc}") from exc


def _render_choice(prompt: str, options: Mapping[str, str]) -> str:
    lines = [f"{letter}) {text}" for letter, text in sorted(options.items())]
    return f"{prompt}\n\n" + "\n".join(lines) + "\n\nAnswer with the letter of the correct option."
