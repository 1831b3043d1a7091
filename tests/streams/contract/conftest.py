"""``backend``: every contract test runs once on the in-memory broker and once on Kafka."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .backends import Backend, KafkaBackend, MemoryBackend


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    made: Backend
    if request.param == "memory":
        made = MemoryBackend()
    else:
        made = KafkaBackend(request.getfixturevalue("bootstrap"))
    try:
        yield made
    finally:
        made.close()
