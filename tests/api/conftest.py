"""Fixtures of the API tests: a real migrated Postgres database, real Kafka topics under a
per-module prefix, a real chdb directory, keys, and a Starlette TestClient factory."""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import Scope, create_key
from api.settings import ApiSettings
from infra.bench.sample import SampleStream
from schemas.catalog import dlq_topic, load_catalog
from schemas.codec import load_codec
from schemas.example_data import example_records
from schemas.registry import load_registry
from sinks.app import build_sink
from sinks.clickhouse.client import ChdbClient, QueryResult
from sinks.clickhouse.migrate import migrate_up
from sinks.clickhouse.readonly import check_read_only
from sinks.clickhouse.writer import ClickHouseWriter
from sinks.postgres.migrate import create_migrated, drop_database
from sinks.records import Batch, ConsumedRecord
from streams.kafka_admin import delete_topics
from streams.producer import EventProducer
from streams.settings import Settings
from tests.integration.sink_support import PrefixRouter, wait_caught_up

from .support import read_records


class _LiveStderr:
    """A structlog logger that writes to whatever ``sys.stderr`` is at each call."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


@pytest.fixture(autouse=True)
def _logging_to_a_live_stream() -> Iterator[None]:
    """Every API test logs to the stderr of its own moment, and leaves logging as it was.

    Why: ``lvlup`` commands run through typer's ``CliRunner`` (here and in other suites of the
    same session) call :func:`streams.logs.configure_logging`, which binds structlog to the
    ``sys.stderr`` of that moment — the runner's buffer, closed when ``invoke`` returns — and
    caches loggers on first use. A later ``log.warning`` (the API's 503/500 paths) then
    raised ``ValueError: I/O operation on closed file`` from inside the error handler, so API
    tests failed only when run after a CLI test. The process-wide configuration is saved and
    restored around each test, and loggers are not cached while an API test runs.
    """
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    structlog.configure(logger_factory=lambda *_args: _LiveStderr(),
                        cache_logger_on_first_use=False)
    try:
        yield
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)


class ChdbReader:
    """Read-only access to one chdb directory (the test's own, never the stack's)."""

    def __init__(self, path: Path) -> None:
        self.client = ChdbClient(path)

    def query(self, sql: str) -> QueryResult:
        return self.client.query(check_read_only(sql))

    def close(self) -> None:
        self.client.close()


@dataclass
class ApiEnv:
    settings: Settings
    router: PrefixRouter
    topics: list[str]
    engine: Engine
    url: str
    chdb_dir: Path
    group: str
    tokens: dict[str, str]

    def topic(self, record_type: str) -> str:
        return self.router.route(record_type)[0]

    def auth(self, scope: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[scope]}"}


def _new_database(base_url: str) -> tuple[str, Callable[[], None]]:
    name = f"t_api_{uuid.uuid4().hex[:10]}"
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    create_migrated(url)
    return url, lambda: drop_database(url)


@contextmanager
def _environment(stack: Settings, tmp_path_factory: pytest.TempPathFactory,
                 name: str) -> Iterator[ApiEnv]:
    """A database migrated to head, every catalog topic under a prefix of its own, a chdb
    directory with the ClickHouse migrations, and one key per scope; removed afterwards."""
    url, drop = _new_database(stack.postgres.sqlalchemy_url())
    router = PrefixRouter(f"test.{name}{uuid.uuid4().hex[:8]}.")
    bootstrap = stack.kafka.bootstrap()
    topics = router.topics(bootstrap, [t.value_schema for t in load_catalog().topics])
    chdb_dir = tmp_path_factory.mktemp("chdb")
    client = ChdbClient(chdb_dir)
    client.command("CREATE DATABASE IF NOT EXISTS lvlup")
    migrate_up(client, "lvlup")
    client.close()
    settings = stack.model_copy(update={
        "postgres": stack.postgres.model_copy(update={"url": SecretStr(url)}),
        "clickhouse": stack.clickhouse.model_copy(update={"chdb_path": chdb_dir}),
    })
    engine = create_engine(url, pool_size=4, max_overflow=4)
    tokens = {scope.value: create_key(engine, f"test-{scope.value}", [scope])[1]
              for scope in Scope}
    env = ApiEnv(settings, router, topics, engine, url, chdb_dir,
                 f"pg-{name}-{uuid.uuid4().hex[:8]}", tokens)
    try:
        yield env
    finally:
        engine.dispose()
        drop()
        delete_topics(bootstrap, topics)


@pytest.fixture(scope="session")
def api_env(stack, tmp_path_factory) -> Iterator[ApiEnv]:
    """The environment of the tests that write: commands, batch ingest, the WebSocket, the
    end-to-end flow (its own sink group into the same database), schemathesis. Their records
    change its log and views, so no test here asserts on exact contents."""
    with _environment(stack, tmp_path_factory, "api") as env:
        yield env


@dataclass
class Loaded:
    """What the ``loaded`` fixture put on the log and into the views."""

    records: list[ConsumedRecord]

    def of(self, record_type: str) -> list[ConsumedRecord]:
        return [r for r in self.records if r.record_type == record_type]


def run_sink(env: ApiEnv, group: str) -> None:
    """Run the real Postgres sink over every test topic until it caught up, then stop it."""
    settings = env.settings.model_copy(update={
        "sinks": env.settings.sinks.model_copy(update={"max_wait_ms": 100})})
    runner = build_sink(settings, load_codec(), env.topics, kind="postgres",
                        engine=env.engine, group=group)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            runner.run()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    try:
        while True:  # fail at once when the sink died instead of waiting out the deadline
            try:
                wait_caught_up(env.engine, group, env.settings.kafka.bootstrap(), env.topics, 1)
                break
            except AssertionError:
                if not thread.is_alive():
                    raise AssertionError(f"the sink stopped early: {errors!r}") from None
                if time.monotonic() > deadline:
                    raise
    finally:
        runner.stop()
        thread.join(60)
        delete_topics(env.settings.kafka.bootstrap(), [dlq_topic(group)])
    assert not errors, errors


def _load(env: ApiEnv) -> Loaded:
    """A sample stream plus one example of every newest-version record type on ``env``'s
    log, its Postgres views built by the real sink (group ``env.group``), and the same
    records in its chdb through the real ClickHouse writer."""
    codec = load_codec()
    bootstrap = env.settings.kafka.bootstrap()
    producer = EventProducer(bootstrap, codec, env.router, name="test")
    registry = load_registry()
    for record_type, version, record in example_records():
        if version == registry.latest(record_type).version:
            producer.emit(record_type, record)
    for record_type, record in SampleStream(seed=7).records(400):
        producer.emit(record_type, record)
    producer.close()
    run_sink(env, env.group)
    records = read_records(bootstrap, env.topics)
    client = ChdbClient(env.chdb_dir)
    try:
        batch = Batch()
        for rec in records:
            batch.add(rec)
        ClickHouseWriter(client, "lvlup").write("test", batch)
    finally:
        client.close()
    return Loaded(records)


@pytest.fixture(scope="session")
def loaded(api_env: ApiEnv) -> Loaded:
    """:func:`_load` on the writers' environment (entities the commands refer to)."""
    return _load(api_env)


@pytest.fixture(scope="session")
def open_proposals(api_env: ApiEnv, loaded: Loaded) -> list[dict[str, Any]]:
    """Four proposals the writers' views show as submitted (not decided): written as the
    proposing agents would (``proposal_submitted`` on the log), then the real sink run once.
    The examples' own proposals are already decided (approved / rejected by the gate)."""
    template = next(rec for rt, _v, rec in example_records() if rt == "proposal_submitted")
    producer = EventProducer(api_env.settings.kafka.bootstrap(), load_codec(), api_env.router,
                             name="test")
    made = []
    for i in range(4):
        rec = {**template, "event_id": str(uuid.uuid4()),
               "proposal_id": f"prop-open-{uuid.uuid4().hex[:8]}-{i}"}
        producer.emit("proposal_submitted", rec)
        made.append({"proposal_id": rec["proposal_id"], "agent_id": rec["agent_id"]})
    producer.close()
    run_sink(api_env, api_env.group)
    return made


@dataclass
class ReadEnv:
    env: ApiEnv
    loaded: Loaded


@pytest.fixture(scope="session")
def read_env(stack, tmp_path_factory) -> Iterator[ReadEnv]:
    """A second environment that nothing writes to after :func:`_load`: the read tests
    assert exact contents, watermarks and zero lag on it, whatever ran before them."""
    with _environment(stack, tmp_path_factory, "apiread") as env:
        yield ReadEnv(env, _load(env))


@pytest.fixture
def make_client(api_env: ApiEnv):
    """``with make_client(**api_settings) as client:`` — the app with its lifespan running."""

    @contextmanager
    def _make(**overrides) -> Iterator[TestClient]:
        values = {"sink_group": api_env.group, "rate_limit_per_key": "",
                  "rate_limit_per_ip": "", "key_cache_ttl_s": 0.0, **overrides}
        app = create_app(api_env.settings, ApiSettings(**values), engine=api_env.engine,
                         router=api_env.router,
                         reader_factory=lambda _s: ChdbReader(api_env.chdb_dir))
        with TestClient(app, raise_server_exceptions=True) as client:
            yield client

    return _make


@pytest.fixture
def client(make_client) -> Iterator[TestClient]:
    with make_client() as c:
        yield c
