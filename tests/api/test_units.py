"""Pure parts of the API, no stack needed: exports, watermark assembly, literals, errors."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import UTC, datetime

import pytest

import api
from api.errors import ApiError, NotImplementedYet, error_body, to_api_error
from api.ratelimit import parse_limits
from api.reads import sql_literal
from api.watermarks import build_watermark
from sinks.errors import StoreUnavailable
from streams.producer import DeliveryFailed


def test_every_module_lists_its_public_names():
    for info in pkgutil.walk_packages(api.__path__, "api."):
        module = importlib.import_module(info.name)
        exported = getattr(module, "__all__", None)
        assert exported is not None, info.name
        for name in exported:
            assert hasattr(module, name), (info.name, name)
        public = {n for n, v in vars(module).items()
                  if not n.startswith("_") and getattr(v, "__module__", None) == info.name
                  and callable(v) and "[" not in n}
        assert public <= set(exported), (info.name, public - set(exported))


def test_watermark_lag_is_end_minus_stored_per_partition_and_topic():
    at = datetime(2025, 3, 14, tzinfo=UTC)
    wm = build_watermark("postgres", "g", {"t": {0: 5, 1: 7}, "u": {}},
                         ends={"t": {0: 9, 1: 7, 2: 1}, "u": None}, measured_at=at,
                         max_occurred_at=at, views={"v": at})
    t, u = wm["topics"]
    assert t == {"topic": "t", "lag": 5, "partitions": [
        {"partition": 0, "next_offset": 5, "end_offset": 9, "lag": 4},
        {"partition": 1, "next_offset": 7, "end_offset": 7, "lag": 0},
        {"partition": 2, "next_offset": 0, "end_offset": 1, "lag": 1}]}
    assert u == {"topic": "u", "lag": None, "partitions": []}
    assert wm["lag"] is None  # one topic could not be measured
    ok = build_watermark("clickhouse", None, {"t": {0: 5}}, ends={"t": {0: 5}},
                         measured_at=at, max_occurred_at=None)
    assert ok["lag"] == 0 and ok["views"] == {}


def test_sql_literals_cannot_break_out():
    assert sql_literal("a'b\\c") == "'a\\'b\\\\c'"
    assert sql_literal(3) == "3"
    assert sql_literal(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)) == (
        "fromUnixTimestamp64Milli(1000, 'UTC')")
    with pytest.raises(ApiError):
        sql_literal("x\x00")


def test_rate_limit_strings():
    assert parse_limits("") == []
    assert [str(x) for x in parse_limits("5/second;100/minute")] == [
        "5 per 1 second", "100 per 1 minute"]
    with pytest.raises(ValueError):
        parse_limits("many/often")


def test_error_translation():
    assert error_body("x", "y") == {"error": {"code": "x", "message": "y", "details": {}}}
    assert to_api_error(StoreUnavailable("pg down")).status == 503
    assert to_api_error(DeliveryFailed("no ack")).code == "broker_unavailable"
    err = to_api_error(RuntimeError("secret internals"))
    assert (err.status, err.message) == (500, "internal error")
    nie = NotImplementedYet("not yet", missing="a record type")
    assert (nie.status, nie.code, nie.details) == (501, "not_implemented",
                                                    {"missing": "a record type"})
