"""Operations: ``lvlup dlq list|replay``, ``lvlup bench NAME``, ``lvlup sink``."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from infra.bench.codec import bench_codec
from infra.bench.pairs import BenchOptions, format_ratio
from streams.dlq_replay import list_dlqs, replay_dlq
from streams.errors import LvlupError
from streams.settings import Settings

__all__ = ["register"]

def _bench_sinks(settings: Settings, options: BenchOptions) -> dict[str, Any]:
    from infra.bench.sinks import bench_sinks

    return bench_sinks(settings, options=options)


def _bench_inference(settings: Settings) -> dict[str, Any]:
    from infra.bench.inference_front import bench_inference_front

    return bench_inference_front(settings)


def _bench_ingest(settings: Settings, options: BenchOptions) -> dict[str, Any]:
    from infra.bench.ingest import bench_ingest

    return bench_ingest(settings, options=options)


def _bench_replay(settings: Settings, options: BenchOptions) -> dict[str, Any]:
    from infra.bench.replay import bench_replay

    return bench_replay(settings, options=options)


def _bench_sandbox(_settings: Settings) -> dict[str, Any]:
    from infra.bench.custody import bench_sandbox

    return bench_sandbox()


def _bench_learning(settings: Settings) -> dict[str, Any]:
    from infra.bench.learning import run_learning_bench

    return run_learning_bench(settings, items=40, seed=20,
                              log=lambda line: print(line, file=sys.stderr, flush=True))


def _bench_loop(settings: Settings, options: BenchOptions) -> dict[str, Any]:
    from infra.bench.loop import bench_loop

    return bench_loop(settings, options)


def _bench_restart(settings: Settings, options: BenchOptions) -> dict[str, Any]:
    from infra.bench.restart import bench_restart

    return bench_restart(settings, options)


def _bench_api(settings: Settings) -> dict[str, Any]:
    from infra.bench.api import bench_api

    return bench_api(settings)


BENCHES: dict[str, Callable[[Settings], dict[str, Any]]] = {
    "ingest": lambda settings: _bench_ingest(settings, BenchOptions()),  # see PAIRED
    "codec": lambda _settings: bench_codec(),
    "sinks": lambda settings: _bench_sinks(settings, BenchOptions()),
    "inference": _bench_inference,
    "api": _bench_api,
    "replay": lambda settings: _bench_replay(settings, BenchOptions()),
    "sandbox": _bench_sandbox,
    "learning": _bench_learning,
    "loop": lambda settings: _bench_loop(settings, BenchOptions()),
    "restart": lambda settings: _bench_restart(settings, BenchOptions()),
}
# the ratio benches (issue #22): median of interleaved baseline/platform pairs
PAIRED: dict[str, Callable[[Settings, BenchOptions], dict[str, Any]]] = {
    "ingest": _bench_ingest, "sinks": _bench_sinks, "replay": _bench_replay,
    "loop": _bench_loop, "restart": _bench_restart,
}


def _print_flat(result: dict[str, Any]) -> None:
    table = Table("figure", "value")

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                path = f"{prefix}.{k}" if prefix else str(k)
                walk(path, v)
                if k == "ratio" and (spread := format_ratio(value)):
                    table.add_row(f"{path} (median [min–max])", spread)
        else:
            table.add_row(prefix, f"{value:.3f}" if isinstance(value, float) else str(value))

    walk("", result)
    Console(stderr=True).print(table)


def register(app: typer.Typer) -> None:
    """Add the operations commands to ``app``."""
    dlq = typer.Typer(help="Dead-letter topics.", no_args_is_help=True)
    app.add_typer(dlq, name="dlq")

    @dlq.command("list")
    def dlq_list(ctx: typer.Context) -> None:
        """Dead-letter topics and how many records each holds."""
        for name, count in list_dlqs(ctx.obj.kafka.bootstrap()).items():
            typer.echo(f"{count:10d}  {name}")

    @dlq.command("replay")
    def dlq_replay(
        ctx: typer.Context,
        group: Annotated[str, typer.Argument(help="the consumer group whose DLQ to replay")],
        max_records: Annotated[int, typer.Option("--max", min=1)] = 100,
    ) -> None:
        """Send DLQ records back to their source topics (after the cause is fixed)."""
        report = replay_dlq(ctx.obj.kafka.bootstrap(), group, max_records)
        typer.echo(f"replayed {report.replayed}: {json.dumps(report.by_topic)}")

    @app.command()
    def bench(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help=f"one of: {', '.join(BENCHES)}, or all")],
        *,
        as_json: Annotated[bool, typer.Option("--json", help="JSON object on stdout's last "
                                                     "line")] = False,
        write: Annotated[str | None, typer.Option(help="with 'all': rewrite this Markdown "
                                                       "file (BENCHMARKS.md)")] = None,
        pairs: Annotated[int, typer.Option(min=1, help="ratio benches (ingest, sinks, replay): "
                                                       "interleaved baseline/platform pairs; "
                                                       "the ratio is their median")] = 3,
        short: Annotated[bool, typer.Option("--short", help="ratio benches at small sizes "
                                                            "(tests; not a figure)")] = False,
    ) -> None:
        """Run a benchmark (or all of them) and print its figures."""
        names = list(BENCHES) if name == "all" else [name]
        unknown = [n for n in names if n not in BENCHES]
        if unknown:
            raise LvlupError(f"unknown benchmark {unknown[0]!r}: one of {', '.join(BENCHES)}")
        options = BenchOptions(pairs=pairs, short=short)
        results: dict[str, dict[str, Any]] = {}
        for each in names:
            results[each] = (PAIRED[each](ctx.obj, options) if each in PAIRED
                             else BENCHES[each](ctx.obj))
            _print_flat(results[each])
        if write:
            from pathlib import Path

            from infra.bench.page import write_benchmarks

            write_benchmarks(Path(write), results)
        if as_json:
            body = results[names[0]] if len(names) == 1 else results
            typer.echo(json.dumps({"bench": name, **body}, default=str))

    @app.command()
    def chaos(
        ctx: typer.Context,
        events: Annotated[int, typer.Option(min=1000)] = 20_000,
        faults: Annotated[int, typer.Option(min=1)] = 5,
        seed: Annotated[int, typer.Option()] = 1,
        *,
        as_json: Annotated[bool, typer.Option("--json")] = False,
        write: Annotated[str | None, typer.Option(help="also write the figures into this "
                                                       "Markdown file (BENCHMARKS.md)")] = None,
    ) -> None:
        """Inject faults during a stream, then check every acked event is in each view
        exactly once; exit 1 on any loss or duplicate."""
        from infra.chaos.run import run_chaos

        report = run_chaos(ctx.obj, events=events, faults=faults, seed=seed)
        figures = {"events": report.events, "acked": report.acked,
                   "faults": report.by_kind(), "lost_postgres": report.lost_postgres,
                   "lost_clickhouse": report.lost_clickhouse,
                   "duplicated_clickhouse_final": report.duplicated_clickhouse_final,
                   "duplicated_clickhouse_raw": report.duplicated_clickhouse_raw,
                   "unexpected": report.unexpected, "sink_restarts": report.sink_restarts,
                   "failpoints_fired": report.failpoints_fired,
                   "per_kind": report.results(),
                   "seconds": round(report.seconds, 1), "pass": report.ok}
        _print_flat(figures)
        if write:
            from pathlib import Path

            from infra.bench.page import write_benchmarks

            write_benchmarks(Path(write), {"chaos": figures})
        if as_json:
            typer.echo(json.dumps({"bench": "chaos", **figures}))
        if not report.ok:
            raise typer.Exit(1)

    @app.command()
    def sink(
        ctx: typer.Context,
        kind: Annotated[str, typer.Argument(help="postgres | clickhouse | all")] = "all",
        topics: Annotated[str | None, typer.Option(help="comma-separated topics "
                                                       "(default: the catalog)")] = None,
        group_suffix: Annotated[str, typer.Option(help="appended to the consumer groups")]
            = "",
    ) -> None:
        """Run sink consumers in the foreground until SIGTERM/SIGINT."""
        from infra.sinks_process import run_sinks

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        run_sinks(ctx.obj, kind, stop, topics=topics.split(",") if topics else None,
                  group_suffix=group_suffix)
