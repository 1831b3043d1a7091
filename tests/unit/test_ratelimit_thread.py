"""The API's rate limiter answers on the event loop's thread: no thread-pool round trip per
request (limits 5.8's asyncio memory storage made one for each key of nearly every hit) and no
thread started (its synchronous memory storage started an expiry timer every ~10 ms of hits),
with the answers of limits' own moving window."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from limits.storage import MemoryStorage

from api.errors import ApiError
from api.ratelimit import RateLimiter, WindowStorage


class _CountingExecutor(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_checks_never_go_to_the_loops_executor() -> None:
    async def go() -> int:
        executor = _CountingExecutor()
        asyncio.get_running_loop().set_default_executor(executor)
        limiter = RateLimiter("1000/second", "1000/second")
        try:
            for _ in range(50):
                await limiter.check_ip("10.0.0.1")
                await limiter.check_key("key-1")
                await asyncio.sleep(0)  # anything the storage scheduled runs now
            await asyncio.sleep(0.05)
        finally:
            limiter.close()
        return executor.submitted

    assert asyncio.run(go()) == 0


def test_the_window_still_limits_and_says_when_to_retry() -> None:
    async def go() -> ApiError:
        limiter = RateLimiter("3/minute", "")
        try:
            for _ in range(3):
                await limiter.check_key("key-1")
            await limiter.check_ip("10.0.0.1")  # no IP limit: never refused
            with pytest.raises(ApiError) as caught:
                await limiter.check_key("key-1")
            await limiter.check_key("key-2")  # another key has its own window
            return caught.value
        finally:
            limiter.close()

    err = asyncio.run(go())
    assert err.status == 429
    assert 1 <= int(err.headers["Retry-After"]) <= 60


def test_checks_start_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []
    real_start = threading.Thread.start

    def counting_start(self: threading.Thread) -> None:
        started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", counting_start)

    async def go() -> None:
        limiter = RateLimiter("1000/second", "1000/second")
        try:
            for _ in range(20):
                await limiter.check_ip("10.0.0.1")
                await limiter.check_key("key-1")
                await asyncio.sleep(0.002)  # past limits' 10 ms expiry timer, more than once
        finally:
            limiter.close()

    asyncio.run(go())
    assert started == []  # limits' MemoryStorage started one every ~10 ms of hits


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_window_storage_answers_as_limits_memory_storage(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(time, "time", clock)
    ours, theirs = WindowStorage(), MemoryStorage()
    theirs.timer.cancel()  # its expiry pass only trims expired hits: answers do not need it
    monkeypatch.setattr(theirs, "_MemoryStorage__schedule_expiry", lambda: None)
    rng = random.Random(7)
    keys = [("a", 3, 2), ("b", 5, 1), ("c", 1, 3)]  # (key, limit, period s)
    answers = []
    for _ in range(2_000):
        # random steps: no hit is ever exactly one period old, the one instant where limits'
        # own methods disagree with each other (>= in acquire_entry, > in get_moving_window)
        clock.now += rng.choice([0.0, 0.01, 0.1, 0.4, 1.5]) * (1 + rng.random() / 100)
        key, limit, period = rng.choice(keys)
        amount = rng.choice([1, 1, 1, 2])
        got = ours.acquire_entry(key, limit, period, amount)
        want = theirs.acquire_entry(key, limit, period, amount)
        assert got == want
        answers.append(got)
        assert ours.get_moving_window(key, limit, period)[1] == \
            theirs.get_moving_window(key, limit, period)[1]
    assert 0.2 < sum(answers) / len(answers) < 0.9  # both outcomes well exercised


def test_window_storage_drops_idle_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(time, "time", clock)
    storage = WindowStorage(sweep_s=1.0)
    for i in range(100):
        assert storage.acquire_entry(f"ip-{i}", 10, 2)
    clock.now += 3.0  # every window has expired and a sweep is due
    assert storage.acquire_entry("ip-new", 10, 2)
    assert storage.reset() == 1  # only the new key was still held
