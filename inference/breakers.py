"""Circuit breakers per route alias (aiobreaker), and the fallback chain they guard.

:class:`RouteBreakers` keeps one ``aiobreaker.CircuitBreaker`` per alias: after
``fail_max`` consecutive failures (:class:`RouteFailure`: a retryable error answer —
``route_unavailable``, ``deadline_exceeded``, ``engine_busy`` — or no answer in time) the
breaker opens and calls for that alias fail at once with :class:`RouteOpen` for
``reset_timeout_s`` seconds; then one trial call is let through (half-open): success closes
it, failure opens it again (aiobreaker's state machine, after Nygard's *Release It!*). An
admin closes any breaker at once with :meth:`RouteBreakers.reset`.

:func:`fallback_chain` is the order a front door tries aliases in: the alias asked for, its
configured cloud fallbacks (depth first, each once), then ``local`` — cloud → cloud → local.

aiobreaker's own caveats, as used here: its lock is a ``threading.RLock`` held across the
awaited call, which does not exclude coroutines of one event loop (each breaker is only used
from one loop, so its counters stay consistent), and half-open lets every concurrent call
through, not one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, timedelta
from typing import Any, TypeVar

from aiobreaker import CircuitBreaker, CircuitBreakerError, CircuitBreakerState

from inference.errors import RouteUnavailable
from inference.router import LOCAL_ALIAS

__all__ = ["RouteBreakers", "RouteFailure", "RouteOpen", "fallback_chain"]

_T = TypeVar("_T")

_STATE_NAMES = {CircuitBreakerState.CLOSED: "closed", CircuitBreakerState.OPEN: "open",
                CircuitBreakerState.HALF_OPEN: "half_open"}


class RouteFailure(RouteUnavailable):
    """One call on a route failed in a way that counts against its breaker; ``outcome`` is
    what the caller got (an error response record, or None when nothing came back)."""

    def __init__(self, message: str, outcome: Any = None) -> None:
        super().__init__(message)
        self.outcome = outcome


class RouteOpen(RouteUnavailable):
    """The route's breaker is open: the call was not attempted."""


def fallback_chain(alias: str, fallbacks: Mapping[str, Sequence[str]],
                   usable: Sequence[str]) -> list[str]:
    """Aliases to try for ``alias``: itself (when ``usable`` or local), its fallbacks depth
    first, each once, then ``local`` last. ``fallbacks``: alias → configured fallback
    aliases; ``usable``: cloud aliases with a deployment (others are skipped)."""
    chain: list[str] = []
    seen: set[str] = set()

    def walk(name: str) -> None:
        if name in seen or name == LOCAL_ALIAS:
            return
        seen.add(name)
        if name in usable:
            chain.append(name)
        for nxt in fallbacks.get(name, ()):
            walk(nxt)

    walk(alias)
    return [*chain, LOCAL_ALIAS]


class RouteBreakers:
    """Breakers by alias, created on first use.

    Args:
        fail_max: consecutive failures that open a breaker.
        reset_timeout_s: seconds an open breaker refuses calls before a trial call.
    """

    def __init__(self, *, fail_max: int = 3, reset_timeout_s: float = 30.0) -> None:
        if fail_max < 1 or reset_timeout_s <= 0:
            raise ValueError("fail_max must be ≥ 1 and reset_timeout_s > 0")
        self.fail_max = fail_max
        self.reset_timeout_s = reset_timeout_s
        self._breakers: dict[str, CircuitBreaker] = {}
        self.opened: dict[str, int] = {}
        """How many times each alias's breaker opened (metrics)."""

    def _get(self, alias: str) -> CircuitBreaker:
        breaker = self._breakers.get(alias)
        if breaker is None:
            breaker = CircuitBreaker(fail_max=self.fail_max, name=alias,
                                     timeout_duration=timedelta(seconds=self.reset_timeout_s))
            self._breakers[alias] = breaker
        return breaker

    def state_of(self, alias: str) -> str:
        """``closed``, ``open`` or ``half_open`` (an unused alias is closed)."""
        breaker = self._breakers.get(alias)
        return "closed" if breaker is None else _STATE_NAMES[breaker.current_state]

    async def call(self, alias: str, attempt: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``attempt`` through ``alias``'s breaker.

        Raises :class:`RouteOpen` when the breaker refuses the call, and :class:`RouteFailure`
        (the attempt's own, also when this failure opened the breaker) when it failed.
        Other exceptions propagate and count as failures too (aiobreaker counts every
        exception).
        """
        breaker = self._get(alias)
        try:
            result: _T = await breaker.call_async(attempt)
            return result
        except CircuitBreakerError as exc:
            cause = exc.__cause__
            if cause is None:  # refused: the attempt did not run
                raise RouteOpen(f"route {alias!r}: circuit open ({exc.message})") from None
            self.opened[alias] = self.opened.get(alias, 0) + 1  # this failure tripped it
            raise cause from None

    def reset(self, alias: str | None = None) -> list[str]:
        """Close ``alias``'s breaker (every breaker when None); returns the aliases reset."""
        names = list(self._breakers) if alias is None else [alias]
        for name in names:
            self._get(name).close()
        return names

    def snapshot(self, aliases: Sequence[str] = ()) -> list[dict[str, Any]]:
        """State of every known alias (and of ``aliases``, used or not): ``{alias, state,
        failures, fail_max, opened_times, reopens_at}`` (``reopens_at``: ISO 8601 UTC when
        open, else None)."""
        out = []
        for name in dict.fromkeys([*aliases, *self._breakers]):
            breaker = self._breakers.get(name)
            state = self.state_of(name)
            reopens = None
            if breaker is not None and state == "open":
                opened_at = breaker._state_storage.opened_at  # aiobreaker: naive UTC
                if opened_at is not None:
                    reopens = (opened_at.replace(tzinfo=UTC) + breaker.timeout_duration
                               ).isoformat()
            out.append({"alias": name, "state": state,
                        "failures": 0 if breaker is None else int(breaker.fail_counter),
                        "fail_max": self.fail_max, "opened_times": self.opened.get(name, 0),
                        "reopens_at": reopens})
        return out

