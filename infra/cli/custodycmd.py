"""``lvlup custody bank``: the custody bank's versions and their items per category × tier.

The current bank (the one this process loads, counted exactly) and every version that a
``custody_run_result`` on the log recorded (its content hash), with the items its runs drew
(:func:`agents.custody.bankinfo.bank_versions`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Annotated

import typer

from agents.custody.bank import load_bank
from agents.custody.bankinfo import bank_versions, render_bank_versions
from agents.custody.replay import read_topics
from schemas.catalog import load_catalog
from streams.producer import codec_for
from streams.settings import Settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``lvlup custody`` to ``app``."""
    custody = typer.Typer(help="the custody protocol: bank versions", no_args_is_help=True)
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
        versions = bank_versions(load_bank(),
                                 [r for t, r in records if t == "custody_run_result"],
                                 [r for t, r in records if t == "custody_item_result"])
        if as_json:
            typer.echo(json.dumps([dataclasses.asdict(v) for v in versions]))
        else:
            typer.echo(render_bank_versions(versions))
