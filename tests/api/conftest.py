"""Fixtures of the API tests: a real migrated Postgres database, real Kafka topics under a
per-module prefix, a real chdb directory, keys, and a Starlette TestClient factory."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import Scope, create_key
from api.settings import ApiSettings
from schemas.catalog import dlq_topic, load_catalog
from schemas.codec import load_codec
from schemas.example_data import example_records
from schemas.registry import load_registry
from sinks.app import build_sink
from sinks.clickhouse.client import ChdbClient, QueryResult
from sinks.clickhouse.migrate import migrate_up
from sinks.clickhouse.readonly import check_read_only
from sinks.clickhouse.writer import ClickHouseWriter
from sinks.postgres.migrate import upgrade
from sinks.records import Batch, ConsumedRecord
from streams.kafka_admin import delete_topics
from streams.producer import EventProducer
from streams.sample import SampleStream
from streams.settings import Settings
from tests.integration.sink_support import PrefixRouter, read_log, wait_caught_up


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
    base = make_url(base_url)
    name = f"t_api_{uuid.uuid4().hex[:10]}"
    admin = dict(host=base.host, port=base.port, user=base.username, password=base.password,
                 dbname="postgres", autocommit=True)
    with psycopg.connect(**admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    upgrade(url)

    def drop() -> None:
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

    return url, drop


@pytest.fixture(scope="session")
def api_env(stack, tmp_path_factory) -> Iterator[ApiEnv]:
    url, drop = _new_database(stack.postgres.sqlalchemy_url())
    router = PrefixRouter(f"test.api{uuid.uuid4().hex[:8]}.")
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
                 f"pg-api-{uuid.uuid4().hex[:8]}", tokens)
    yield env
    engine.dispose()
    drop()
    delete_topics(bootstrap, topics)


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
    try:
        wait_caught_up(env.engine, group, env.settings.kafka.bootstrap(), env.topics, 120)
    finally:
        runner.stop()
        thread.join(60)
        delete_topics(env.settings.kafka.bootstrap(), [dlq_topic(group)])
    assert not errors, errors


@pytest.fixture(scope="session")
def loaded(api_env: ApiEnv) -> Loaded:
    """A sample stream plus one example of every newest-version record type on the log, the
    Postgres views built by the real sink (group ``api_env.group``), and the same records in
    chdb through the real ClickHouse writer."""
    codec = load_codec()
    bootstrap = api_env.settings.kafka.bootstrap()
    producer = EventProducer(bootstrap, codec, api_env.router, name="test")
    registry = load_registry()
    for record_type, version, record in example_records():
        if version == registry.latest(record_type).version:
            producer.emit(record_type, record)
    for record_type, record in SampleStream(seed=7).records(400):
        producer.emit(record_type, record)
    producer.close()
    run_sink(api_env, api_env.group)
    records = read_log(bootstrap, codec, api_env.topics)
    client = ChdbClient(api_env.chdb_dir)
    try:
        batch = Batch()
        for rec in records:
            batch.add(rec)
        ClickHouseWriter(client, "lvlup").write("test", batch)
    finally:
        client.close()
    return Loaded(records)


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
