"""Property-based tests of the whole API against its own /openapi.json (schemathesis): no
5xx, answers match the documented schemas and statuses, schema-violating input refused.

Runs in-process against the ASGI app (real Postgres, Kafka and chdb behind it), with a
bounded number of examples per operation so it finishes in well under two minutes.
"""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from api.openapi import build_spec
from api.routes import all_operations
from api.settings import ApiSettings

from .conftest import ChdbReader

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 5


def _schema(*, coverage: bool = True):
    loaded = schemathesis.openapi.from_dict(build_spec(all_operations()))
    loaded.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                    max_examples=MAX_EXAMPLES)
    loaded.config.phases.coverage.enabled = coverage
    return loaded


# POST /api/events documents one of ~30 record schemas per item: the coverage phase (every
# boundary of every variant) alone takes minutes there, so that operation gets fuzzing only
schema = _schema().exclude(path="/api/events").exclude(path_regex="^/dashboard/")
batch_schema = _schema(coverage=False).include(path="/api/events")
# /dashboard/login and /logout are the browser's form posts (303 either way, tested in
# tests/security/test_api_edges.py), not a JSON API


@pytest.fixture(scope="module")
def asgi_app(api_env, loaded):
    """One app for every example (schemathesis keeps its lifespan running until the end)."""
    from schemathesis.python.asgi import shutdown_lifespans

    yield create_app(api_env.settings,
                     ApiSettings(sink_group=api_env.group, rate_limit_per_key="",
                                 rate_limit_per_ip="", command_timeout_s=5.0),
                     engine=api_env.engine, router=api_env.router,
                     reader_factory=lambda _s: ChdbReader(api_env.chdb_dir))
    shutdown_lifespans()


def _check(case, api_env, app) -> None:
    # the checks' own follow-up requests (auth probes) go to the app too
    case.operation.app = case.operation.schema.app = app
    if case.headers and "Idempotency-Key" in case.headers:
        # keys are stateful: a schema-valid key already used with another body is rightly
        # refused (422), which schemathesis cannot know, so every example gets a fresh key
        # (the header's format and the reuse rule are tested in test_idempotency.py)
        case.headers["Idempotency-Key"] = f"schemathesis-{uuid.uuid4()}"
    excluded = []
    if case.operation.path == "/api/custody/compare":
        # a selector is a small language (docs/CUSTODY.md): a schema-valid string such as
        # "0" is not a selector and is refused 400 bad_selector with the term — which JSON
        # Schema cannot express; the refusals are tested in tests/custody/test_compare.py
        excluded.append(positive_data_acceptance)
    case.call_and_validate(headers={"Authorization": f"Bearer {api_env.tokens['admin']}"},
                           excluded_checks=excluded)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi(case, api_env, asgi_app):
    _check(case, api_env, asgi_app)


@batch_schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_batch_ingest_conforms_to_its_openapi(case, api_env, asgi_app):
    _check(case, api_env, asgi_app)
