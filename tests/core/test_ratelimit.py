"""GCRA and the RateLimit header fields, on a fake clock."""

from __future__ import annotations

import pytest

from receiver.core.ratelimit import RateLimiter


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_full_burst_passes_at_once_and_the_next_request_waits_one_interval(clock):
    limiter = RateLimiter(per_second=10, burst=20, clock=clock)
    remaining = [limiter.acquire("client").remaining for _ in range(20)]
    assert remaining == list(range(19, -1, -1))

    refused = limiter.acquire("client")
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.retry_after == pytest.approx(0.1)
    assert refused.reset_after == pytest.approx(2.0)

    clock.advance(0.1)
    assert limiter.acquire("client").allowed
    assert not limiter.acquire("client").allowed


def test_a_refused_request_does_not_push_the_wait_further(clock):
    limiter = RateLimiter(per_second=1, burst=1, clock=clock)
    assert limiter.acquire("client").allowed
    for _ in range(5):
        assert limiter.acquire("client").retry_after == pytest.approx(1.0)
    clock.advance(1.0)
    assert limiter.acquire("client").allowed


def test_the_sustained_rate_is_held_after_the_burst(clock):
    limiter = RateLimiter(per_second=4, burst=2, clock=clock)
    allowed = 0
    for _ in range(400):  # 10 seconds in steps of 25 ms
        allowed += limiter.acquire("client").allowed
        clock.advance(0.025)
    assert allowed == 2 + 40 - 1  # the burst, then 4 per second (the first slot overlaps)


def test_idle_time_refills_the_burst_but_never_beyond_it(clock):
    limiter = RateLimiter(per_second=2, burst=3, clock=clock)
    for _ in range(3):
        limiter.acquire("client")
    clock.advance(3600)
    decisions = [limiter.acquire("client") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]


def test_each_key_has_its_own_bucket(clock):
    limiter = RateLimiter(per_second=1, burst=1, clock=clock)
    assert limiter.acquire("alice").allowed
    assert not limiter.acquire("alice").allowed
    assert limiter.acquire("bob").allowed


def test_fractional_rates_and_intervals_that_do_not_divide_evenly(clock):
    limiter = RateLimiter(per_second=3, burst=3, clock=clock)
    assert all(limiter.acquire("client").allowed for _ in range(3))
    refused = limiter.acquire("client")
    assert refused.retry_after == pytest.approx(1 / 3)

    slow = RateLimiter(per_second=0.5, burst=1, clock=clock)
    assert slow.acquire("client").allowed
    assert slow.acquire("client").retry_after == pytest.approx(2.0)


def test_header_fields_follow_the_ratelimit_headers_draft(clock):
    limiter = RateLimiter(per_second=10, burst=20, clock=clock)
    fields = limiter.header_fields("send", limiter.acquire("client"))
    assert fields == {"RateLimit-Policy": '"send";q=20;w=2', "RateLimit": '"send";r=19;t=1'}

    for _ in range(19):
        limiter.acquire("client")
    fields = limiter.header_fields("send", limiter.acquire("client"))
    assert fields == {
        "RateLimit-Policy": '"send";q=20;w=2',
        "RateLimit": '"send";r=0;t=2',
        "Retry-After": "1",  # 0.1 s, rounded up to whole seconds
    }


def test_the_window_is_rounded_up_to_whole_seconds(clock):
    limiter = RateLimiter(per_second=2, burst=5, clock=clock)
    fields = limiter.header_fields("send", limiter.acquire("client"))
    assert fields["RateLimit-Policy"] == '"send";q=5;w=3'
    assert fields["RateLimit"] == '"send";r=4;t=1'


# -- max_keys: the state of keys a client chooses stays bounded ------------------------------


def test_a_full_table_refuses_a_new_key_until_the_least_recent_is_forgotten(clock):
    limiter = RateLimiter(per_second=1, burst=2, clock=clock, max_keys=3)
    for key in ("a", "b", "c"):
        assert limiter.acquire(key).allowed  # each bucket is full again 1 s later
    refused = limiter.acquire("d")
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(1.0)  # when "a" is forgotten
    clock.advance(1.0)
    assert limiter.acquire("d").allowed  # "a" made room
    assert len(limiter._tat) == 3


def test_a_key_that_sends_again_is_not_the_one_pushed_out(clock):
    limiter = RateLimiter(per_second=1, burst=5, clock=clock, max_keys=2)
    assert limiter.acquire("old").allowed
    clock.advance(0.5)
    assert limiter.acquire("new").allowed
    clock.advance(0.5)
    for _ in range(3):  # "old" sends again: now the most recent key
        assert limiter.acquire("old").allowed
    clock.advance(1.0)  # "new" is forgotten, "old" is not (2 s of its burst still used)
    assert limiter.acquire("third").allowed
    assert set(limiter._tat) == {"old", "third"}
    assert [limiter.acquire("old").allowed for _ in range(4)] == [True, True, True, False]


def test_the_table_never_outgrows_max_keys_however_many_keys_send(clock):
    limiter = RateLimiter(per_second=1 / 3, burst=20, clock=clock, max_keys=100)
    allowed = 0
    for i in range(10_000):
        allowed += limiter.acquire(f"10.0.{i // 256}.{i % 256}").allowed
        clock.advance(0.01)
        assert len(limiter._tat) <= 100
    # 100 keys at a time, each remembered for one interval (3 s): over 100 s about
    # 100 + 100 * 100 / 3 new keys fit, and the other two thirds are refused.
    assert abs(allowed - (100 + 100 * 100 / 3)) < 100


def test_without_max_keys_nothing_is_refused_for_room(clock):
    limiter = RateLimiter(per_second=1, burst=1, clock=clock)
    assert all(limiter.acquire(str(i)).allowed for i in range(1000))
