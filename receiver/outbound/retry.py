"""When to try a send again: exponential backoff with full jitter, and ``Retry-After``.
Sans-IO: the caller passes the random source and the clock."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_MAX_DOUBLINGS = 60  # 2**60 times any base is past every cap; keeps the float finite


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...): "full
    jitter", uniform between 0 and ``min(cap, base * 2 ** (attempt - 1))`` (AWS
    Architecture Blog, "Exponential Backoff And Jitter", 2015). The randomness spreads
    the retries of many messages that failed together, e.g. when a provider was down."""
    ceiling = min(cap, base * 2.0 ** min(max(attempt - 1, 0), _MAX_DOUBLINGS))
    return rng.uniform(0.0, ceiling)


def retry_after_delay(value: str | None, now: datetime) -> float | None:
    """The seconds a ``Retry-After`` header asks us to wait (RFC 9110 section 10.2.3):
    delta-seconds or an HTTP-date, never negative; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC, though the sender would not commit to it
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


_EPOCH_SECONDS = 1_000_000_000
"""A reset time this large is a Unix time (2001 onwards), smaller ones are seconds."""


def exhausted_window_delay(headers: Mapping[str, str], now: datetime) -> float | None:
    """The seconds until the provider's rate window resets, when its answer says none of
    the window is left (``X-RateLimit-Remaining: 0``), so that we wait *before* a 429.

    ``X-RateLimit-Reset`` is a Unix time at Txtly and SendComms, seconds at others: a
    value past 10^9 is read as a Unix time. None when requests remain or it is unsaid."""
    remaining = headers.get("x-ratelimit-remaining", "").strip()
    reset = headers.get("x-ratelimit-reset", "").strip()
    if remaining != "0" or not reset.isdigit():
        return None
    seconds = int(reset)
    if seconds >= _EPOCH_SECONDS:
        return max(0.0, seconds - now.timestamp())
    return float(seconds)


__all__ = ["backoff_delay", "exhausted_window_delay", "retry_after_delay"]
