"""``lvlup worker inference|imperium|custody|proposals|conquest``: the platform's worker
processes (``lvlup run`` supervises them; each can also run on its own, on other machines, in
the same groups). Each process's :class:`~streams.wiring.Wiring` is built here, once."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from streams.errors import LvlupError
from streams.serial import stop_on_signals
from streams.settings import Settings
from streams.wiring import Wiring, wiring_for

__all__ = ["WORKERS", "register"]

#: the worker kinds ``lvlup worker`` runs
WORKERS = ("inference", "imperium", "custody", "proposals", "conquest")


async def _inference(settings: Settings, wiring: Wiring, metrics_port: int = 0) -> None:
    from inference.budget_journal import BUDGET_RECORD, tail
    from inference.factory import build_service, open_ledger
    from inference.kafka_worker import InferenceWorker

    codec, catalog = wiring.codec, wiring.catalog
    # linger 0: every record here is on a request's reply path (journal, response, usage)
    producer = wiring.producer("inference.local", linger_ms=0)
    if settings.inference.replay:
        from inference.recorded import load_recorded

        recorded = load_recorded(settings.kafka.bootstrap(), codec,
                                 catalog.for_record("inference_response").name)
        worker = InferenceWorker(settings.kafka.bootstrap(), codec, catalog, None, producer,
                                 recorded=recorded, name="inference.replay")
    stop = stop_on_signals()
    tasks = []
    if not settings.inference.replay:
        budget_topic = catalog.for_record(BUDGET_RECORD).name
        ledger, offsets = open_ledger(settings, producer, codec, budget_topic)
        service = build_service(settings, ledger=ledger)
        metrics = None
        if metrics_port:
            from prometheus_client import start_http_server

            from inference.metrics import WorkerMetrics

            metrics = WorkerMetrics(service.cache)
            start_http_server(metrics_port, addr="127.0.0.1", registry=metrics.registry)
        worker = InferenceWorker(settings.kafka.bootstrap(), codec, catalog, service, producer,
                                 metrics=metrics, max_in_flight=max(1, settings.model.parallel))
        tasks.append(asyncio.create_task(tail(ledger, settings.kafka.bootstrap(), codec,
                                              budget_topic, offsets=offsets, stop=stop)))
    tasks.append(asyncio.create_task(worker.run(stop)))
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        stop.set()  # one ended (stopped, or failed): stop the other
        for task in done:
            task.result()  # a failure propagates: the supervisor restarts the worker
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        producer.close()


def register(app: typer.Typer) -> None:
    """Add ``lvlup worker`` to ``app``."""

    @app.command()
    def worker(
        ctx: typer.Context,
        kind: Annotated[str, typer.Argument(
            help="inference | imperium | custody | proposals | conquest")],
        metrics_port: Annotated[int, typer.Option(
            help="inference: Prometheus metrics on 127.0.0.1:PORT (0 = off)")] = 0,
    ) -> None:
        """Run one worker process in the foreground until SIGTERM/SIGINT."""
        settings: Settings = ctx.obj
        if kind not in WORKERS:
            raise LvlupError(f"unknown worker {kind!r}: inference, imperium, custody, proposals"
                             " or conquest")
        wiring = wiring_for(settings)  # this process's codec, catalog and producers
        if kind == "inference":
            asyncio.run(_inference(settings, wiring, metrics_port))
        elif kind == "imperium":
            from faust.worker import Worker

            from agents.imperium import build_imperium

            app_ = build_imperium(settings, wiring)
            Worker(app_, loglevel=settings.log_level.lower(), quiet=True).execute_from_commandline()
        elif kind == "custody":
            from agents.custody.service import serve

            asyncio.run(serve(settings, wiring))
        elif kind == "proposals":
            from agents.proposals.worker import serve as serve_proposals

            asyncio.run(serve_proposals(settings, wiring))
        else:
            from agents.conquest.worker import serve as serve_conquest

            asyncio.run(serve_conquest(wiring))
