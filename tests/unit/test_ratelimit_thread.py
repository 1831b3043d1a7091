"""The API's rate limiter answers on the event loop's thread: no thread-pool round trip per
request (limits 5.8's asyncio memory storage made one for each key of nearly every hit)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from api.errors import ApiError
from api.ratelimit import RateLimiter


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
