"""What a send must pass in this process before it reaches the store.

Each role that may send has a GCRA limiter (``receiver.core.ratelimit``) keyed by
client, the staff member behind the token. The Idempotency-Keys whose first request is
inside the send handler right now are held in a set, so that another request with the
same key meanwhile gets 409 rather than waiting for the first one's answer.

Both live in this process's memory. With several processes each has its own: a
client's rate is counted per process, and a key in flight in another process is not
seen here. That second case is still safe: the store commits the message and the key's
answer in one transaction, so the database serializes the two requests and the later
one gets the stored answer (a replay) instead of a second message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from receiver.config import SendRateLimits
from receiver.core.ratelimit import RateLimiter
from receiver.errors import IdempotencyKeyInUse, RateLimited
from receiver.records import StaffMember

POLICY = "send"
"""The policy's name in the RateLimit header fields."""


class Admission:
    """Per-client rates and the Idempotency-Keys in flight, for one process."""

    def __init__(self, limits: SendRateLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self._limiters = {
            role: RateLimiter(rate.per_second, rate.burst, clock)
            for role, rate in dict(limits).items()
        }
        self._in_flight: set[tuple[str, str]] = set()

    def count(self, member: StaffMember) -> dict[str, str]:
        """Count one send of ``member``: its RateLimit header fields, or RateLimited."""
        limiter = self._limiters[member.role]
        decision = limiter.acquire(member.id)
        fields = limiter.header_fields(POLICY, decision)
        if not decision.allowed:
            raise RateLimited(
                f"over this client's rate of {limiter.per_second:g} sends per second"
                f" (bursts of {limiter.burst}); retry after {fields['Retry-After']} s",
                rate_headers=fields,
            )
        return fields

    @contextmanager
    def holding(self, client_id: str, key: str | None) -> Iterator[None]:
        """Mark ``key`` of ``client_id`` in flight for the block (nothing for no key);
        IdempotencyKeyInUse if a request with it is already in flight."""
        if key is None:
            yield
            return
        held = (client_id, key)
        if held in self._in_flight:
            raise IdempotencyKeyInUse(
                "a request with this Idempotency-Key is being processed; retry it shortly"
                " to get its answer"
            )
        self._in_flight.add(held)
        try:
            yield
        finally:
            self._in_flight.discard(held)
