"""The shared admission state (``receiver.store.limits``) on each backend (a SQLite
file, a PostgreSQL database): rates counted in the database agree with the in-process
GCRA, and a key's claim is held, taken over once expired, and settled only by its own
request or by its send."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from test_sends import T0, new_send, render

from receiver.core.ratelimit import Rate, RateLimiter, to_ns
from receiver.errors import IdempotencyKeyReused
from receiver.records import KeyClaim
from receiver.store.sql import SqlStore

RATE = Rate(per_second=2, burst=3)


def claim(token: str, key: str = "key-1", seconds: float = 0) -> KeyClaim:
    at = T0 + timedelta(seconds=seconds)
    return KeyClaim("stf_client", key, token, at, at + timedelta(seconds=30))


async def held(store: SqlStore, key: str = "key-1", seconds: float = 0) -> bool:
    """Whether a request at ``seconds`` finds ``key`` held (one that does not, holds it)."""
    probe = claim("probe", key, seconds)
    return not (await store.admit("send:stf_probe", RATE, to_ns(1e9), probe)).claimed


async def test_a_rate_in_the_store_decides_as_the_in_process_limiter(store):
    moments = [0, 0, 0, 0, 0.2, 0.5, 0.5, 0.6, 1.1, 3.0, 3.0, 3.0, 3.0]
    clock = iter(moments)
    limiter = RateLimiter(RATE.per_second, RATE.burst, clock=lambda: next(clock))
    expected = [limiter.acquire("stf_client") for _ in moments]

    got = [await store.take_rate("send:stf_client", RATE, to_ns(1e9 + at)) for at in moments]

    assert got == expected
    assert [d.allowed for d in got].count(True) == 8
    other = await store.take_rate("send:stf_other", RATE, to_ns(1e9))  # keys apart
    assert other.allowed and other.remaining == 2


async def test_admit_counts_and_claims_in_one_transaction(store):
    first = await store.admit("send:stf_client", RATE, to_ns(1e9), claim("a"))
    second = await store.admit("send:stf_client", RATE, to_ns(1e9), claim("b"))

    assert first.decision.allowed and first.claimed
    assert second.decision.allowed and not second.claimed  # counted, but the key is held


async def test_an_expired_claim_is_taken_over_and_settled_only_by_its_holder(store):
    assert (await store.admit("send:stf_client", RATE, to_ns(1e9), claim("dead"))).claimed
    later = claim("alive", seconds=30)  # the dead process's claim ran out
    assert (await store.admit("send:stf_client", RATE, to_ns(1e9), later)).claimed

    await store.release_claim(claim("dead"))  # too late: no longer its claim
    assert await held(store, seconds=30)
    await store.release_claim(later)
    assert not await held(store, seconds=30)


async def test_a_send_settles_its_claim_and_a_refused_send_keeps_it(store):
    mine = claim("mine")
    assert (await store.admit("send:stf_client", RATE, to_ns(1e9), mine)).claimed
    await store.create_send(new_send(claim_token="mine"), render)

    other = claim("other")  # the same key, for a different request: free again
    assert (await store.admit("send:stf_client", RATE, to_ns(1e9), other)).claimed
    with pytest.raises(IdempotencyKeyReused):
        await store.create_send(replace(new_send(claim_token="other"), fingerprint="x"), render)
    assert await held(store)  # until its request gives it up (admission)


async def test_pruning_deletes_expired_claims(store):
    for key, seconds in (("old", 0), ("new", 60)):
        await store.admit("send:stf_client", RATE, to_ns(1e9), claim("t", key, seconds))
    await store.prune_idempotency_keys(T0 + timedelta(seconds=45))
    assert await held(store, "new") and not await held(store, "old")
