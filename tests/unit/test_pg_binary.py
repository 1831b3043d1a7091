"""The binary COPY layout of the Postgres sink's append-only views (sinks.postgres.binary):
values in the wire types' shapes, and the checks that keep psycopg's binary dumpers from
storing what text COPY would have refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import ARRAY, BigInteger, Boolean, Column, Float, Integer, MetaData, String, Table
from sqlalchemy.dialects.postgresql import JSONB

from sinks.postgres.binary import (
    binary_layout,
    checked_bool,
    checked_int4,
    to_pg_date,
    to_pg_jsonb,
    to_pg_timestamptz,
)
from sinks.postgres.models import learning_logs

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("ms", [-2_208_988_800_000, -1, 0, 946_684_800_000,
                                1_700_000_000_123, 253_402_300_799_999])
def test_timestamps_are_microseconds_since_2000_exactly(ms):
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    assert PG_EPOCH + timedelta(microseconds=to_pg_timestamptz(ms)) == instant
    assert to_pg_timestamptz(instant) == to_pg_timestamptz(ms)
    assert to_pg_timestamptz(instant.replace(tzinfo=None)) == to_pg_timestamptz(ms)  # naive: UTC


def test_dates_are_days_since_2000_and_other_values_pass():
    assert to_pg_date(10_957) == 0 and to_pg_date(0) == -10_957
    assert to_pg_date(date(2000, 1, 2)) == 1
    assert to_pg_date(None) is None and to_pg_timestamptz(None) is None
    assert to_pg_timestamptz("2026-01-01") == "2026-01-01"  # the int8 dumper refuses it


def test_jsonb_carries_its_version_byte():
    assert to_pg_jsonb({"a": [1, "b"]}) == b'\x01{"a":[1,"b"]}'
    assert to_pg_jsonb(None) is None


def test_int4_and_bool_refuse_what_the_binary_dumpers_would_store_wrongly():
    assert checked_int4(2**31 - 1) == 2**31 - 1 and checked_int4(-(2**31)) == -(2**31)
    with pytest.raises(OverflowError):
        checked_int4(2**31)
    with pytest.raises(OverflowError):
        checked_int4(-(2**31) - 1)
    assert checked_bool(True) is True and checked_bool(None) is None
    with pytest.raises(TypeError):
        checked_bool(1)


def test_layouts_name_a_wire_type_per_column_and_decline_types_they_do_not_send():
    layout = binary_layout(learning_logs)
    assert layout is not None
    assert layout.types["event_id"] == "text" and layout.types["src_offset"] == "int8"
    assert layout.types["occurred_at"] == "int8" and layout.types["metadata"] == "bytea"
    assert layout.types["src_partition"] == "int4" and layout.types["impact_score"] == "float8"
    meta = MetaData()
    flags = Table("f", meta, Column("k", String, primary_key=True), Column("b", Boolean),
                  Column("n", BigInteger), Column("i", Integer), Column("j", JSONB))
    assert binary_layout(flags) is not None
    assert binary_layout(Table("a", meta, Column("tags", ARRAY(String)))) is None
    assert binary_layout(Table("r", meta, Column("x", Float(precision=24)))) is None
