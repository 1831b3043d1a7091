"""Fixtures of the security tests.

The HTTP API attacks (``test_api_authority.py``, ``test_api_edges.py``) run against the same
real stack as ``tests/api``: its fixtures (a migrated Postgres database, prefixed Kafka
topics, a chdb directory, one key per scope, the ``TestClient`` factory) are re-exported
here so that pytest registers them once for this directory.
"""

from __future__ import annotations

from tests.api.conftest import (  # noqa: F401 - fixtures, registered by import
    api_env,
    client,
    loaded,
    make_client,
    open_proposals,
)
