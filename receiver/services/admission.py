"""What a send must pass before it reaches the store: its client's rate and its
Idempotency-Key not being in flight.

Each role that may send has a rate (GCRA, ``receiver.core.ratelimit``) counted per
client, the staff member behind the token. The state lives in the database
(``receiver.store.limits``), so every process on one database counts a client's sends
together. An Idempotency-Key is claimed in the same transaction as the count; while a
request holds it, another request with the same key, in any process, gets 409 rather
than waiting for the first one's answer. The transaction that commits the message and
the key's answer settles the claim; a request that fails gives it up; a claim whose
process died runs out after ``CLAIM_SECONDS``. Even a claim that ran out under a slow
request is safe: the store commits the message and the key's answer in one
transaction, so the later request gets the stored answer (a replay).

Time is the wall clock (the processes may be on several hosts): NTP's skew of a few
milliseconds moves a client's rate by as much.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from receiver.config import SendRateLimits
from receiver.core.ratelimit import Rate, to_ns
from receiver.errors import IdempotencyKeyInUse, RateLimited, StoreUnavailable
from receiver.records import KeyClaim, StaffMember
from receiver.store.base import Store

POLICY = "send"
"""The policy's name in the RateLimit header fields."""

CLAIM_SECONDS = 30.0
"""How long a claim on an Idempotency-Key outlives a process that died holding it."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """A counted send: its RateLimit header fields and its claim on its key, if any."""

    rate_fields: dict[str, str]
    claim: KeyClaim | None
    in_use: bool = False
    """Another request holds the key."""

    def check_key(self) -> None:
        """IdempotencyKeyInUse if another request holds the key."""
        if self.in_use:
            raise IdempotencyKeyInUse(
                "a request with this Idempotency-Key is being processed; retry it shortly"
                " to get its answer"
            )


class Admission:
    """Per-client rates and the Idempotency-Keys in flight, kept in the store."""

    def __init__(
        self, store: Store, limits: SendRateLimits, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._rates = {role: Rate(r.per_second, r.burst) for role, r in dict(limits).items()}
        self._clock = clock

    async def count(self, member: StaffMember) -> dict[str, str]:
        """Count one send of ``member``: its RateLimit header fields, or RateLimited."""
        ticket = await self._admit(member, None)
        return ticket.rate_fields

    @asynccontextmanager
    async def admitted(self, member: StaffMember, key: str | None) -> AsyncIterator[Ticket]:
        """Count one send of ``member`` (RateLimited if over its rate) and claim ``key``
        for the block; the claim is given up if the block fails. The store's
        ``create_send`` settles it when the send commits (``Ticket.claim.token``)."""
        ticket = await self._admit(member, key)
        try:
            yield ticket
        except BaseException:
            if ticket.claim is not None and not ticket.in_use:
                with suppress(StoreUnavailable):  # it runs out by itself
                    await self._store.release_claim(ticket.claim)
            raise

    async def _admit(self, member: StaffMember, key: str | None) -> Ticket:
        rate = self._rates[member.role]
        now = self._clock()
        claim = None
        if key is not None:
            at = datetime.fromtimestamp(now, UTC)
            expires_at = at + timedelta(seconds=CLAIM_SECONDS)
            claim = KeyClaim(member.id, key, secrets.token_hex(16), at, expires_at)
        admitted = await self._store.admit(f"send:{member.id}", rate, to_ns(now), claim)
        fields = rate.header_fields(POLICY, admitted.decision)
        if not admitted.decision.allowed:
            raise RateLimited(
                f"over this client's rate of {rate.per_second:g} sends per second"
                f" (bursts of {rate.burst}); retry after {fields['Retry-After']} s",
                rate_headers=fields,
            )
        return Ticket(fields, claim, in_use=claim is not None and not admitted.claimed)
