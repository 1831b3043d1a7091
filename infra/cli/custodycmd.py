"""``lvlup custody bank | compare``: the bank's versions; two selections of trials compared.

``bank``: the custody bank's versions and their items per category × tier.

The current bank (the one this process loads, counted exactly) and every version that a
``custody_run_result`` on the log recorded (its content hash), with the items its runs drew
(:func:`agents.custody.bankinfo.bank_versions`).

``compare A B``: see :mod:`agents.custody.compare` (selectors, exact McNemar, paired
bootstrap, flipped items); a bad selector exits 2 with one line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Annotated

import typer

from agents.custody.bankinfo import bank_versions, render_bank_versions
from agents.custody.compare import needs_models, read_trials, render_comparison
from agents.custody.replay import read_topics
from agents.custody.service import live_bank
from schemas.catalog import load_catalog
from streams.paired import DEFAULT_RESAMPLES, DEFAULT_SEED
from streams.producer import codec_for
from streams.settings import Settings
from streams.trialselect import compare_selected, parse_selector

__all__ = ["compare", "register"]


def register(app: typer.Typer) -> None:
    """Add ``lvlup custody`` to ``app``."""
    custody = typer.Typer(help="the custody protocol: bank versions, comparisons",
                          no_args_is_help=True)
    app.add_typer(custody, name="custody")

    @custody.command()
    def bank(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="one JSON array")] = False,
    ) -> None:
        """List the bank's versions (current and recorded by runs) and their items per
        category × tier."""
        settings: Settings = ctx.obj
        catalog = load_catalog()
        topics = [catalog.for_record(rt).name
                  for rt in ("custody_run_result", "custody_item_result")]
        records = asyncio.run(read_topics(settings.kafka.bootstrap(),
                                          codec_for(settings.schemas), topics))
        current = asyncio.run(live_bank(settings.custody.source_items))
        versions = bank_versions(current,
                                 [r for t, r in records if t == "custody_run_result"],
                                 [r for t, r in records if t == "custody_item_result"])
        if as_json:
            typer.echo(json.dumps([dataclasses.asdict(v) for v in versions]))
        else:
            typer.echo(render_bank_versions(versions))

    custody.command()(compare)


def compare(  # noqa: PLR0917 - typer maps parameters to the command's arguments
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="selector A, e.g. agent:imperium,window:2026-01-01..")],
    b: Annotated[str, typer.Argument(help="selector B, e.g. bank:custody-bank-v2")],
    where: Annotated[str | None, typer.Option(help="a selector both sides must also match")]
        = None,
    resamples: Annotated[int, typer.Option(min=100, max=200_000, help="bootstrap resamples")]
        = DEFAULT_RESAMPLES,
    seed: Annotated[int, typer.Option(help="bootstrap seed")] = DEFAULT_SEED,
    level: Annotated[float, typer.Option(min=0.5, max=0.999, help="interval level")] = 0.95,
    topic_prefix: Annotated[str, typer.Option(help="prefix of the topics (isolated runs)")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """Compare two selections of custody trials on their shared items: exact McNemar test,
    paired bootstrap interval of the difference in pass rates, and the items that flipped.
    Selector terms: agent: model: bank: run: category: tier: window:FROM..TO (docs/CUSTODY.md)."""
    sel_a, sel_b = parse_selector(a), parse_selector(b)
    base = parse_selector(where) if where is not None else None
    settings: Settings = ctx.obj
    trials = asyncio.run(read_trials(settings.kafka.bootstrap(), codec_for(settings.schemas),
                                     load_catalog(), models=needs_models(sel_a, sel_b, base),
                                     topic_prefix=topic_prefix))
    result = compare_selected(trials, sel_a, sel_b, base, resamples=resamples, seed=seed,
                              level=level)
    if as_json:
        typer.echo(json.dumps({"a": sel_a.text, "b": sel_b.text,
                               "where": base.text if base else None, **result.to_json()}))
    else:
        typer.echo(render_comparison(sel_a.text, sel_b.text, result,
                                     base.text if base else None))
