"""Recorded inference I/O: responses on ``lvlup.inference.responses`` are the record of
truth, and a worker in replay mode (``LVLUP_INFERENCE__REPLAY=true``) answers from them
instead of calling the model — the audit replay re-runs agents without re-inferring.

A request with no recorded response is answered with the error ``not_recorded``.
"""

from __future__ import annotations

from schemas.codec import Codec
from streams.log_reader import read_topic

__all__ = ["load_recorded"]


def load_recorded(bootstrap: str, codec: Codec, topic: str) -> dict[str, dict[str, object]]:
    """``{request_id: response record}`` of every response on ``topic`` (first one wins:
    a re-served request carries the same event id and content)."""
    out: dict[str, dict[str, object]] = {}
    for _record_type, record in read_topic(bootstrap, codec, topic):
        out.setdefault(str(record["request_id"]), record)
    return out
