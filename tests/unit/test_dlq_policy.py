"""DLQ limits (arroyo-style): consecutive and ratio, with a recording producer stand-in."""

from __future__ import annotations

import pytest

from streams.dlq import DeadLetterQueue, DlqLimitExceeded, DlqPolicy, SourceRecord


class RecordingProducer:
    def __init__(self):
        self.sent = []

    def produce(self, topic, value=None, key=None, headers=None, on_delivery=None):
        self.sent.append((topic, value, key, headers))

    def flush(self, timeout=None):
        return 0


def _rec(offset):
    return SourceRecord("src", 2, offset, b"k", b"v", [("h", b"1")])


def test_headers_say_why_and_where():
    prod = RecordingProducer()
    dlq = DeadLetterQueue(prod, "g1")
    dlq.send(_rec(7), ValueError("bad bytes"))
    topic, value, key, headers = prod.sent[0]
    h = dict(headers)
    assert topic == "g1.dlq" and value == b"v" and key == b"k"
    assert h["h"] == b"1"
    assert h["dlq.error.class"] == b"ValueError" and h["dlq.error.message"] == b"bad bytes"
    assert (h["dlq.source.topic"], h["dlq.source.partition"], h["dlq.source.offset"]) == (
        b"src", b"2", b"7")
    assert h["dlq.group"] == b"g1"


def test_consecutive_limit():
    dlq = DeadLetterQueue(RecordingProducer(), "g", DlqPolicy(max_consecutive=3))
    dlq.send(_rec(0), ValueError())
    dlq.send(_rec(1), ValueError())
    dlq.ok()  # a valid record resets the run
    dlq.send(_rec(3), ValueError())
    dlq.send(_rec(4), ValueError())
    with pytest.raises(DlqLimitExceeded, match="3 invalid records in a row"):
        dlq.send(_rec(5), ValueError())


def test_ratio_limit_over_the_window():
    dlq = DeadLetterQueue(RecordingProducer(), "g",
                          DlqPolicy(max_consecutive=1000, max_ratio=0.25, window=20))
    for i in range(60):  # 1 in 5 invalid: 20 % < 25 %
        if i % 5 == 0:
            dlq.send(_rec(i), ValueError())
        else:
            dlq.ok()
    with pytest.raises(DlqLimitExceeded, match="of the last 20 records"):
        for i in range(60, 80):  # 1 in 2 invalid
            if i % 2:
                dlq.send(_rec(i), ValueError())
            else:
                dlq.ok()


@pytest.mark.parametrize("kw", [{"max_consecutive": 0}, {"max_ratio": 0}, {"window": 0}])
def test_invalid_policy(kw):
    with pytest.raises(ValueError, match="invalid DLQ policy"):
        DlqPolicy(**kw)
