"""Per-client rate limits: GCRA, and the IETF RateLimit header fields. Sans-IO.

Theory of operation
-------------------
GCRA (the generic cell rate algorithm, ITU-T I.371) keeps one number per client: the
theoretical arrival time (TAT), when the client's bucket would be empty again if it
sent at exactly the sustained rate. A request moves TAT one emission interval
(``1 / per_second``) later; it is allowed while TAT stays within ``burst`` intervals of
now, so ``burst`` requests may come back to back and then one per interval. A refused
request changes nothing, and the wait until one more would pass is exact. Time is
counted in integer nanoseconds, so ``burst`` requests at one instant always fit.

A key whose TAT has passed is in the same state as a key never seen, so it may be
forgotten. With ``max_keys`` (for keys a client chooses, such as its address) the keys
are kept in the order they last sent; a new key may push out the least recent one only
once that one is forgotten, and is refused otherwise, so the state never outgrows
``max_keys`` entries however many keys send.

The header fields follow draft-ietf-httpapi-ratelimit-headers-10 (Structured Fields):
``RateLimit-Policy: "send";q=20;w=2`` (a quota of ``burst`` per the window that
refills it) and ``RateLimit: "send";r=<remaining>;t=<seconds until the whole quota is
back>``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    """The verdict on one request: whether its key's rate allows it, and the figures its
    answer's header fields report."""

    allowed: bool
    remaining: int
    """Requests that may still come at once."""
    retry_after: float
    """Seconds until one more request would be allowed (0 when this one was)."""
    reset_after: float
    """Seconds until the whole burst is available again."""


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_second`` sustained with bursts of ``burst``: GCRA's decision on one request
    of a key, given the key's theoretical arrival time, wherever that is kept."""

    per_second: float
    burst: int

    @property
    def interval(self) -> int:
        """Nanoseconds one request moves the TAT."""
        return round(_NS / self.per_second)

    def decide(self, tat: int | None, now: int) -> tuple[RateLimitDecision, int]:
        """The verdict on one request at ``now`` (ns) of a key whose TAT is ``tat`` (None:
        never seen), and the key's TAT after it (unchanged when refused)."""
        interval = self.interval
        tolerance = self.burst * interval
        before = now if tat is None else tat
        after = max(before, now) + interval
        if after - now > tolerance:
            retry_after = (after - now - tolerance) / _NS
            return RateLimitDecision(False, 0, retry_after, (after - interval - now) / _NS), before
        remaining = (tolerance - (after - now)) // interval
        return RateLimitDecision(True, remaining, 0.0, (after - now) / _NS), after

    def header_fields(self, policy: str, decision: RateLimitDecision) -> dict[str, str]:
        """``RateLimit-Policy`` and ``RateLimit`` for an answer under ``decision``, plus
        ``Retry-After`` (whole seconds, rounded up) when it refused the request."""
        window = math.ceil(self.burst / self.per_second)
        fields = {
            "RateLimit-Policy": f'"{policy}";q={self.burst};w={window}',
            "RateLimit": f'"{policy}";r={decision.remaining};t={math.ceil(decision.reset_after)}',
        }
        if not decision.allowed:
            fields["Retry-After"] = str(max(1, math.ceil(decision.retry_after)))
        return fields


def to_ns(seconds: float) -> int:
    """``seconds`` in integer nanoseconds, as ``Rate.decide`` counts time."""
    return round(seconds * _NS)


class RateLimiter:
    """GCRA over keys (client ids), ``per_second`` sustained with bursts of ``burst``.

    State is one integer per key that has sent, kept in this process only; at most
    ``max_keys`` of them when that is set (see the module docstring). State shared by
    several processes lives in the store instead (``receiver.store.limits``)."""

    def __init__(
        self,
        per_second: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int | None = None,
    ) -> None:
        self.rate = Rate(per_second, burst)
        self.per_second = per_second
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._tat: dict[str, int] = {}

    def acquire(self, key: str) -> RateLimitDecision:
        """Count one request of ``key`` if its rate allows it; say so either way."""
        now = to_ns(self._clock())
        decision, tat = self.rate.decide(self._tat.get(key), now)
        if not decision.allowed:
            return decision
        if (
            self._max_keys is not None
            and self._tat.pop(key, None) is None  # re-inserted below: now the most recent
            and len(self._tat) >= self._max_keys
        ):
            oldest = next(iter(self._tat))
            if self._tat[oldest] > now:  # not forgotten yet: no room for a new key
                wait = (self._tat[oldest] - now) / _NS
                return RateLimitDecision(False, 0, wait, wait)
            del self._tat[oldest]
        self._tat[key] = tat
        return decision

    def header_fields(self, policy: str, decision: RateLimitDecision) -> dict[str, str]:
        """``RateLimit-Policy`` and ``RateLimit`` for an answer under ``decision``, plus
        ``Retry-After`` (whole seconds, rounded up) when it refused the request."""
        return self.rate.header_fields(policy, decision)
