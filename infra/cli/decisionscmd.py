"""``lvlup replay decisions --policy FILE``: the recorded custody decisions under another policy.

Reads the custody and proposal records from the log (bounded to the end offsets at call time,
:func:`agents.custody.replay.read_topics`) and prints which gate verdicts and level decisions
flip (:mod:`agents.custody.decisions`); writes nothing. A policy that does not load or a bad
time exits 2 with one line.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from agents.custody.decisions import RECORD_TYPES, render_replay, replay_decisions
from agents.custody.policy import load_policy
from agents.custody.replay import read_topics
from schemas.catalog import load_catalog
from streams.producer import codec_for
from streams.settings import Settings
from streams.trialselect import parse_time_ms

__all__ = ["decisions"]


def decisions(
    ctx: typer.Context,
    *,
    policy: Annotated[Path, typer.Option(help="the counterfactual custody policy (YAML)")],
    since: Annotated[str | None, typer.Option("--from", help="report decisions from this "
                                              "time (ISO-8601 or epoch ms)")] = None,
    until: Annotated[str | None, typer.Option("--to", help="report decisions before this "
                                              "time")] = None,
    topic_prefix: Annotated[str, typer.Option(help="prefix of the topics (isolated runs)")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """Recompute gate verdicts, levels and XP from the recorded run and item results under
    POLICY and print the decisions that flip; live views are left alone."""
    counterfactual = load_policy(policy)
    since_ms = None if since is None else parse_time_ms(since)
    until_ms = None if until is None else parse_time_ms(until)
    settings: Settings = ctx.obj
    catalog = load_catalog()
    topics = list(dict.fromkeys(topic_prefix + catalog.for_record(rt).name
                                for rt in RECORD_TYPES))
    records = asyncio.run(read_topics(settings.kafka.bootstrap(), codec_for(settings.schemas),
                                      topics))
    replay = replay_decisions(records, counterfactual, since_ms=since_ms, until_ms=until_ms)
    typer.echo(json.dumps(replay.to_json()) if as_json else render_replay(replay))
