"""Backoff with full jitter and ``Retry-After``: pure functions, no clock or network."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from receiver.outbound.retry import backoff_delay, retry_after_delay

NOW = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (9, 256.0), (10, 300.0), (10_000, 300.0)],
)
def test_backoff_is_full_jitter_under_a_doubling_capped_ceiling(attempt, ceiling):
    rng = random.Random(7)
    delays = [backoff_delay(attempt, 1.0, 300.0, rng) for _ in range(2000)]
    assert all(0.0 <= d <= ceiling for d in delays)
    assert max(delays) > 0.9 * ceiling  # spread over the whole range, not clustered
    assert min(delays) < 0.1 * ceiling


@pytest.mark.parametrize(
    ("value", "delay"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        ("Mon, 23 Nov 2026 10:00:30 -0000", 30.0),  # RFC 5322 "no zone information": UTC
        (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),  # past: at once
        ("soon", None),
        ("-5", None),
        ("1.5", None),  # delta-seconds are whole numbers
        ("", None),
        (None, None),
    ],
)
def test_retry_after_takes_delta_seconds_or_an_http_date(value, delay):
    assert retry_after_delay(value, NOW) == delay
