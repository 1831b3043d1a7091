"""``backend``: every contract test runs on the in-memory broker and on Kafka; the serial
loop's tests (``loop_backend``) also on Kafka with a Faust agent as the group member."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .backends import Backend, FaustBackend, KafkaBackend, MemoryBackend

KAFKA = pytest.mark.integration


def _made(request: pytest.FixtureRequest) -> Iterator[Backend]:
    made: Backend
    if request.param == "memory":
        made = MemoryBackend()
    else:
        kind = FaustBackend if request.param == "faust" else KafkaBackend
        made = kind(request.getfixturevalue("bootstrap"))
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(params=["memory", pytest.param("kafka", marks=KAFKA)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from _made(request)


@pytest.fixture(params=["memory", pytest.param("kafka", marks=KAFKA),
                        pytest.param("faust", marks=KAFKA)])
def loop_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from _made(request)
