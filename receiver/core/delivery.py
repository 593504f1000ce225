"""Delivery health figures (README "Delivery health") from the store's aggregates: pure
functions, no I/O.

The store counts messages by period of ``created_at``, provider, country, network and
current status (``delivery_hourly`` / ``delivery_daily`` in schema.sql), and the
delivered ones by latency bucket (``latency_hourly`` / ``latency_daily``: one row per
group with a column per bucket). ``summarize`` turns those counts into the rows of
``GET /v1/stats/delivery``.

Latency percentiles come from a histogram with fixed bucket bounds (``LATENCY_BOUNDS``):
a percentile is reported as the upper bound of the bucket it falls in, so it is never
below the true value and at most one bucket above it: at most 1 s up to 6 s, at most 25 %
above 10 s (the bounds grow by a quarter to a third), and anything beyond a week is
reported as a week.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from receiver.core.status import FINAL, Status

GROUP_KEYS = ("provider", "country", "network")
Bucket = Literal["1h", "1d"]
PERCENTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99}
LATENCY_BOUNDS: tuple[float, ...] = (
    1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250,
    300, 400, 500, 600, 800, 1000, 1200, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 8000,
    10000, 12000, 15000, 20000, 25000, 30000, 40000, 50000, 60000, 86400, 172800, 604800,
)  # fmt: skip
"""The upper bounds (seconds) of the latency histogram's 49 buckets (columns l0 .. l48
of ``latency_hourly`` / ``latency_daily``); a new bound needs a new schema section."""


def latency_bucket(seconds: float) -> int:
    """The histogram bucket of a latency: the first whose bound is not below it (after
    rounding to the millisecond); beyond the last bound, the last one."""
    return min(bisect_left(LATENCY_BOUNDS, round(seconds, 3)), len(LATENCY_BOUNDS) - 1)


@dataclass(frozen=True, slots=True)
class Cell:
    """Messages with one combination of the aggregate's keys. ``bucket`` is the period
    text (``2026-12-05T14`` or ``2026-12-05``; empty without a bucket), a key not grouped
    by is empty, and an unknown country, network or status is empty too."""

    bucket: str
    provider: str
    country: str
    network: str
    status: str
    messages: int


@dataclass(frozen=True, slots=True)
class LatencyCell:
    """The delivered messages of one combination of keys (as in ``Cell``) by latency
    bucket: ``counts[i]`` in bucket ``i`` of ``LATENCY_BOUNDS``."""

    bucket: str
    provider: str
    country: str
    network: str
    counts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DeliveryCells:
    """What the store's aggregates hold for one question."""

    statuses: list[Cell]
    latencies: list[LatencyCell]


@dataclass(slots=True)
class _Row:
    messages: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    latency: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BOUNDS))


def bucket_start(period: str) -> datetime:
    """The start of an aggregate period (``2026-12-05T14`` or ``2026-12-05``)."""
    if len(period) == len("2026-12-05"):
        return datetime.fromisoformat(period).replace(tzinfo=UTC)
    return datetime.fromisoformat(period + ":00").replace(tzinfo=UTC)


def percentile(histogram: Sequence[int], q: float) -> float | None:
    """The upper bound of the bucket holding the ``q`` quantile (nearest rank) of a
    histogram over ``LATENCY_BOUNDS``, or None for an empty one."""
    total = sum(histogram)
    if total <= 0:
        return None
    rank = max(1, -(-total * q // 1))  # ceil(total * q), at least the first
    seen = 0
    for bucket, count in enumerate(histogram):
        seen += count
        if seen >= rank:
            return LATENCY_BOUNDS[bucket]
    return LATENCY_BOUNDS[-1]


def summarize(
    cells: DeliveryCells, group_by: Sequence[str], bucket: Bucket | None
) -> list[dict[str, Any]]:
    """The rows of ``GET /v1/stats/delivery``, ordered by bucket, then by group keys."""
    rows: dict[tuple[str, ...], _Row] = {}
    for cell in cells.statuses:
        if cell.messages <= 0:
            continue
        key = (cell.bucket, *(getattr(cell, name) for name in group_by))
        row = rows.setdefault(key, _Row())
        row.messages += cell.messages
        if cell.status:
            row.by_status[cell.status] = row.by_status.get(cell.status, 0) + cell.messages
    for latency in cells.latencies:
        key = (latency.bucket, *(getattr(latency, name) for name in group_by))
        if key in rows:  # a group whose messages are all gone (retention) has no row
            histogram = rows[key].latency
            for index, count in enumerate(latency.counts):
                histogram[index] += count
    return [_row_json(key, row, group_by, bucket) for key, row in sorted(rows.items())]


def _row_json(
    key: tuple[str, ...], row: _Row, group_by: Sequence[str], bucket: Bucket | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if bucket is not None:
        out["bucket_start"] = bucket_start(key[0]).isoformat().replace("+00:00", "Z")
    for name, value in zip(group_by, key[1:], strict=True):
        out[name] = value or None
    delivered = row.by_status.get(Status.DELIVERED, 0)
    failures = sum(n for s, n in row.by_status.items() if s in FINAL and s != Status.DELIVERED)
    final = sum(n for s, n in row.by_status.items() if s in FINAL)
    out["messages"] = row.messages
    out["by_status"] = dict(sorted(row.by_status.items()))
    out["pending"] = row.messages - final
    finished = delivered + failures
    out["delivery_rate"] = round(delivered / finished, 6) if finished else None
    out["latency_seconds"] = {name: percentile(row.latency, q) for name, q in PERCENTILES.items()}
    return out


@dataclass(frozen=True, slots=True)
class Span:
    """A part of a stats window read from one aggregate: ``daily`` or hourly, periods
    ``start`` <= period < ``end`` (period texts)."""

    daily: bool
    start: str
    end: str


def _hour(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


def spans(since: datetime, until: datetime, bucket: Bucket | None) -> list[Span]:
    """Cover [since, until) (whole hours) with the fewest aggregate rows: whole UTC days
    from the daily aggregate unless the rows are per hour, the hours at either end from
    the hourly one."""
    if bucket == "1h":
        return [Span(False, _hour(since), _hour(until))]
    first_day = (since + timedelta(hours=23)).replace(hour=0)
    last_day = until.replace(hour=0)
    if first_day >= last_day:
        return [Span(False, _hour(since), _hour(until))]
    parts = [Span(True, first_day.strftime("%Y-%m-%d"), last_day.strftime("%Y-%m-%d"))]
    if since < first_day:
        parts.append(Span(False, _hour(since), _hour(first_day)))
    if last_day < until:
        parts.append(Span(False, _hour(last_day), _hour(until)))
    return parts
