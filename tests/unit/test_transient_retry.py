"""One retry policy for admin and offset reads (issue #16: NOT_COORDINATOR right after start)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.kafka_admin import is_transient, transient_retry


def _failing(codes: list[int], result: str = "ok"):
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if codes:
            raise KafkaException(KafkaError(codes.pop(0)))
        return result

    return fn, calls


def test_a_coordinator_that_is_still_loading_is_waited_for():
    fn, calls = _failing([KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS])
    assert transient_retry(1.0)(fn) == "ok"
    assert calls["n"] == 3


def test_a_final_error_is_raised_at_once():
    fn, calls = _failing([KafkaError.TOPIC_AUTHORIZATION_FAILED])
    with pytest.raises(KafkaException):
        transient_retry(1.0)(fn)
    assert calls["n"] == 1


def test_a_transient_error_that_persists_is_raised_after_the_deadline():
    fn, _ = _failing([KafkaError.NOT_COORDINATOR] * 1000)
    with pytest.raises(KafkaException) as caught:
        transient_retry(0.1)(fn)
    assert caught.value.args[0].code() == KafkaError.NOT_COORDINATOR


def test_only_kafka_errors_count_as_transient():
    assert is_transient(KafkaException(KafkaError(KafkaError._TRANSPORT)))
    assert not is_transient(KafkaException(KafkaError(KafkaError._INVALID_ARG)))
    assert not is_transient(TimeoutError())
