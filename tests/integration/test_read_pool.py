"""The API's read pool on the real Postgres: concurrent reads go out in pipelines, each gets
its own answer, and a failing read in a batch costs the others nothing."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from sqlalchemy.engine import make_url

from api.db import ReadPool
from api.errors import ApiError, JsonResponse
from sinks.errors import StoreUnavailable

SQL = "SELECT %(n)s::int AS n, %(n)s::int * 2 AS twice"
BAD = "SELECT %(x)s::int AS n"  # 'abc' → a DataError, answered 400


@pytest.fixture
def conninfo(stack) -> str:  # type: ignore[no-untyped-def]
    url = make_url(stack.postgres.sqlalchemy_url()).set(database="postgres")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def test_concurrent_reads_are_pipelined_and_each_gets_its_rows(conninfo: str) -> None:
    async def go() -> tuple[list[list[tuple[int, int]]], int, int]:
        pool = ReadPool(conninfo, pipelines=1)
        try:
            answers = await asyncio.gather(*(pool.fetch(SQL, {"n": i}) for i in range(40)))
            return answers, pool.batches, pool.batched_reads
        finally:
            await pool.close()

    answers, batches, batched = asyncio.run(go())
    assert answers == [[(i, 2 * i)] for i in range(40)]
    # gather queues all 40 before the drainer first runs (asyncio runs tasks in FIFO order):
    # one pipeline carried them all
    assert (batches, batched) == (1, 40)


def test_a_failing_read_in_a_batch_fails_alone(conninfo: str) -> None:
    async def go() -> tuple[list[object], int]:
        pool = ReadPool(conninfo, pipelines=1)
        try:
            reads = [pool.fetch(BAD, {"x": "abc"}) if i == 5 else pool.fetch(SQL, {"n": i})
                     for i in range(12)]
            return await asyncio.gather(*reads, return_exceptions=True), pool.batches
        finally:
            await pool.close()

    answers, batches = asyncio.run(go())
    assert batches == 0  # the pipeline of 12 failed as a whole, and was split
    for i, answer in enumerate(answers):
        if i == 5:
            assert isinstance(answer, ApiError)
            assert answer.status == 400
        else:
            assert answer == [(i, 2 * i)]


def test_a_cancelled_caller_does_not_disturb_the_batch(conninfo: str) -> None:
    async def go() -> list[object]:
        pool = ReadPool(conninfo, pipelines=1)
        try:
            tasks = [asyncio.ensure_future(pool.fetch(SQL, {"n": i})) for i in range(10)]
            await asyncio.sleep(0)  # all queued
            tasks[3].cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            again = await pool.fetch(SQL, {"n": 99})  # the pool still works
            return [*results, again]
        finally:
            await pool.close()

    answers = asyncio.run(go())
    assert isinstance(answers[3], asyncio.CancelledError)
    assert [a for i, a in enumerate(answers[:10]) if i != 3] == [
        [(i, 2 * i)] for i in range(10) if i != 3]
    assert answers[10] == [(99, 198)]


def test_a_closed_pool_refuses_reads(conninfo: str) -> None:
    async def go() -> None:
        pool = ReadPool(conninfo)
        await pool.fetch(SQL, {"n": 1})
        await pool.close()
        with pytest.raises(StoreUnavailable):
            await pool.fetch(SQL, {"n": 2})

    asyncio.run(go())


def test_reads_queued_one_turn_after_the_first_go_out_with_it(conninfo: str) -> None:
    """uvicorn wakes several connections a loop iteration, and their handlers reach the
    pool one iteration after one another: the drainer gives the loop one turn before it
    takes its batch, so those reads share the first one's pipeline instead of it going out
    alone."""
    async def go() -> tuple[list[list[tuple[int, int]]], int, int]:
        pool = ReadPool(conninfo, pipelines=1)
        try:
            first = asyncio.ensure_future(pool.fetch(SQL, {"n": 0}))
            await asyncio.sleep(0)  # first's task queues its read and starts the drainer
            rest = [asyncio.ensure_future(pool.fetch(SQL, {"n": i})) for i in range(1, 10)]
            answers = await asyncio.gather(first, *rest)
            return answers, pool.batches, pool.batched_reads
        finally:
            await pool.close()

    answers, batches, batched = asyncio.run(go())
    assert answers == [[(i, 2 * i)] for i in range(10)]
    assert (batches, batched) == (1, 10)  # before: read 0 alone, then a batch of 9


def test_a_batch_of_two_statements_answers_each_read_in_order(conninfo: str) -> None:
    other = "SELECT %(n)s::int + 100 AS m"

    async def go() -> tuple[list[list[tuple[int, ...]]], int, int]:
        pool = ReadPool(conninfo, pipelines=1)
        try:
            answers = await asyncio.gather(*(
                pool.fetch(other if i % 3 == 0 else SQL, {"n": i}) for i in range(15)))
            return answers, pool.batches, pool.batched_reads
        finally:
            await pool.close()

    answers, batches, batched = asyncio.run(go())
    assert answers == [[(i + 100,)] if i % 3 == 0 else [(i, 2 * i)] for i in range(15)]
    assert (batches, batched) == (1, 15)


def test_a_read_made_as_the_last_batch_is_answered_is_sent(conninfo: str) -> None:
    """The caller a batch just answered runs before the drainer's done callbacks would: its
    next read must still find a drainer (before the drainer left its set in the same step,
    this read waited forever)."""
    async def reads(pool: ReadPool) -> list[list[tuple[int, int]]]:
        out = []
        for i in range(5):  # each read made in the step its previous answer woke this task
            out.append(await pool.fetch(SQL, {"n": i}))
        return out

    async def go() -> list[list[tuple[int, int]]]:
        pool = ReadPool(conninfo, pipelines=1)
        try:
            return await asyncio.wait_for(reads(pool), 10)
        finally:
            await pool.close()

    assert asyncio.run(go()) == [[(i, 2 * i)] for i in range(5)]



JSON_VALUE = {"tags": ["a", "ü", "\t"], "n": 9007199254740993, "f": 0.1,
              "quote": "say \"hi\"\n", "nested": {"empty": {}, "none": None, "t": True}}


def test_json_cells_are_spliced_unparsed_and_answer_the_same_value(conninfo: str) -> None:
    # the read pool hands json/jsonb over as the server's text (orjson.Fragment) for the answer
    # to copy; a parse into dicts and a dump again cost ~80 µs of a 21-row page's client CPU
    sql = ("SELECT %(v)s::jsonb AS b, %(v)s::json AS j, NULL::jsonb AS none, "
           "ARRAY[%(v)s::jsonb, '[1, 2]'::jsonb] AS arr")
    text = orjson.dumps(JSON_VALUE).decode()
    expected = JSON_VALUE

    async def go() -> list[tuple[object, ...]]:
        pool = ReadPool(conninfo, pipelines=1)
        try:  # two reads: one alone, then one of a pipeline of 3
            alone = await pool.fetch(sql, {"v": text})
            batch = await asyncio.gather(*(pool.fetch(sql, {"v": text}) for _ in range(3)))
            return [*alone, *(rows[0] for rows in batch)]
        finally:
            await pool.close()

    for b, j, none, arr in asyncio.run(go()):
        assert isinstance(b, orjson.Fragment) and isinstance(j, orjson.Fragment)
        assert none is None
        body = JsonResponse({"b": b, "j": j, "none": none, "arr": arr}).body
        assert orjson.loads(body) == {"b": expected, "j": expected, "none": None,
                                      "arr": [expected, [1, 2]]}
