"""The read cache coalesces concurrent reads of one key: unit semantics of
:class:`api.readcache.ReadCache`, and the app on the real Postgres answering eight concurrent
requests with one read while the first one's read is held up by a table lock."""

from __future__ import annotations

import asyncio
import threading
import time

import psycopg
import pytest

from api.readcache import ReadCache


async def _lead_and_wait(cache: ReadCache, key: str, waiters: int,
                         body: bytes | None) -> list[bytes | None]:
    cache.lead(key)
    joined = [asyncio.create_task(cache.join(key)) for _ in range(waiters)]
    while cache.waiting < waiters:
        await asyncio.sleep(0)
    cache.land(key, body)
    return await asyncio.gather(*joined)


def test_waiters_take_the_leaders_answer_and_it_is_stored() -> None:
    cache = ReadCache(ttl_s=30)
    answers = asyncio.run(_lead_and_wait(cache, "k", 5, b'{"items": []}'))
    assert answers == [b'{"items": []}'] * 5
    assert (cache.misses, cache.coalesced, cache.waiting) == (1, 5, 0)
    assert cache.fresh("k") == b'{"items": []}'


def test_a_leader_that_stores_nothing_releases_its_waiters_to_read() -> None:
    cache = ReadCache(ttl_s=30)
    answers = asyncio.run(_lead_and_wait(cache, "k", 3, None))
    assert answers == [None, None, None]
    assert cache.coalesced == 0 and cache.fresh("k") is None

    async def next_read() -> None:  # no flight left behind: the next caller leads at once
        assert await cache.join("k") is None

    asyncio.run(next_read())


def test_a_cancelled_waiter_leaves_the_read_and_the_other_waiters_alone() -> None:
    async def go() -> tuple[bytes | None, bool]:
        cache = ReadCache(ttl_s=30)
        cache.lead("k")
        gone, stays = (asyncio.create_task(cache.join("k")) for _ in range(2))
        while cache.waiting < 2:
            await asyncio.sleep(0)
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        cache.land("k", b"{}")
        return await stays, gone.cancelled()

    assert asyncio.run(go()) == (b"{}", True)


def test_entries_expire() -> None:
    async def go() -> bytes | None:
        cache = ReadCache(ttl_s=0.05)
        cache.lead("k")
        cache.land("k", b"{}")
        assert cache.fresh("k") == b"{}"
        await asyncio.sleep(0.1)
        return cache.fresh("k")

    assert asyncio.run(go()) is None


@pytest.mark.integration
def test_concurrent_requests_share_one_read_on_the_real_database(make_client, api_env,
                                                                 loaded) -> None:
    path = "/api/imperium/agents?limit=7"
    url = api_env.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with make_client(read_cache_ttl_s=30.0) as client:
        cache: ReadCache = client.app_state["api"].read_cache
        answers: list[tuple[int, bytes]] = []

        def get() -> None:
            r = client.get(path, headers=api_env.auth("read"))
            answers.append((r.status_code, r.content))

        with psycopg.connect(url) as lock:
            # the leader's read waits on this lock until every other request has joined it
            lock.execute("LOCK TABLE agents IN ACCESS EXCLUSIVE MODE")
            threads = [threading.Thread(target=get) for _ in range(8)]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 20
            try:
                while cache.waiting < 7 and time.monotonic() < deadline:
                    time.sleep(0.01)
                joined = cache.waiting
            finally:
                lock.rollback()
        for t in threads:
            t.join(60)
    assert joined == 7, (cache.misses, joined)
    assert len(answers) == 8 and {status for status, _ in answers} == {200}
    assert len({body for _, body in answers}) == 1  # one answer, one watermark
    assert (cache.misses, cache.coalesced) == (1, 7)
