"""The Health page, ``/console/health``: delivery rate over time per provider (a chart
drawn on the server as SVG: no script, so the strict CSP stays), report latency
percentiles per provider, and every country and network, worst first. Every number
links to the message search that finds the messages it counts.

The figures are those of ``GET /v1/stats/delivery`` (``receiver.core.delivery``), read
from the store's aggregates, for messages created in the chosen period (whole hours,
UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from receiver.console.search import SEARCH_PATH
from receiver.console.web import app_state, current_staff, render, when_text
from receiver.core.delivery import Bucket, summarize
from receiver.core.network import UNKNOWN
from receiver.core.status import FINAL, Status

PERIODS: dict[str, tuple[str, timedelta, Bucket]] = {
    "24h": ("Last 24 hours", timedelta(days=1), "1h"),
    "7d": ("Last 7 days", timedelta(days=7), "1d"),
    "30d": ("Last 30 days", timedelta(days=30), "1d"),
}
DEFAULT_PERIOD = "24h"
SERIES = 6
"""Colours of the chart (``series-0`` .. ``series-5`` in console.css), reused beyond."""
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 10, 26
FAILURES = [s.value for s in FINAL if s is not Status.DELIVERED]
PENDING = [s.value for s in Status if s not in FINAL]


@dataclass(frozen=True)
class Window:
    key: str
    title: str
    since: datetime
    until: datetime
    bucket: Bucket

    def search(self, **filters: str | None) -> str:
        """The console search for the messages of this window (and ``filters``)."""
        params = {
            "since": self.since.strftime("%Y-%m-%dT%H:%M:%S"),
            "until": self.until.strftime("%Y-%m-%dT%H:%M:%S"),
            **{name: value for name, value in filters.items() if value},
        }
        return SEARCH_PATH + "?" + urlencode(params)


def window(key: str, now: datetime) -> Window:
    title, span, bucket = PERIODS[key]
    until = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if bucket == "1d":
        until = until.replace(hour=0) + timedelta(days=1)
    return Window(key, title, until - span, until, bucket)


@dataclass
class Series:
    provider: str
    colour: int
    lines: list[str] = field(default_factory=list)
    """SVG polyline points, one per run of buckets that have a rate."""
    points: list[dict[str, Any]] = field(default_factory=list)


def chart(rows: list[dict[str, Any]], win: Window, providers: list[str]) -> dict[str, Any]:
    """The delivery-rate chart's geometry: one series per provider."""
    step = timedelta(hours=1) if win.bucket == "1h" else timedelta(days=1)
    starts = []
    moment = win.since
    while moment < win.until:
        starts.append(moment)
        moment += step
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    gap = plot_w / max(len(starts) - 1, 1)
    by_key = {(row["provider"], row["bucket_start"]): row for row in rows}
    series = []
    for colour, provider in enumerate(providers):
        line: list[str] = []
        one = Series(provider, colour % SERIES)
        for index, start in enumerate(starts):
            row = by_key.get((provider, start))
            rate = row["delivery_rate"] if row else None
            if rate is None:
                if line:
                    one.lines.append(" ".join(line))
                line = []
                continue
            x, y = LEFT + index * gap, TOP + (1 - rate) * plot_h
            line.append(f"{x:.1f},{y:.1f}")
            finished = row["messages"] - row["pending"] if row else 0
            one.points.append(
                {
                    "x": f"{x:.1f}",
                    "y": f"{y:.1f}",
                    "title": f"{provider} {when_text(start)}: {rate:.0%} of {finished} finished",
                    "url": Window(win.key, win.title, start, start + step, win.bucket).search(
                        provider=provider
                    ),
                }
            )
        if line:
            one.lines.append(" ".join(line))
        series.append(one)
    label = "%H:%M" if win.bucket == "1h" else "%m-%d"
    last = len(starts) - 1
    ticks = {0: "start", last // 2: "middle", last: "end"} if starts else {}
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "series": series,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "grid": [{"y": f"{TOP + (1 - f) * plot_h:.1f}", "label": f"{f:.0%}"} for f in (0, 0.5, 1)],
        "ticks": [
            {"x": f"{LEFT + i * gap:.1f}", "label": starts[i].strftime(label), "anchor": anchor}
            for i, anchor in sorted(ticks.items())
        ],
        "baseline": f"{HEIGHT - BOTTOM + 16}",
    }


def _links(row: dict[str, Any], statuses: list[str], win: Window, **keys: str | None) -> list[Any]:
    """``[(count, status, search url)]`` of the row's messages in ``statuses``."""
    return [
        (row["by_status"][status], status, win.search(status=status, **keys))
        for status in statuses
        if row["by_status"].get(status)
    ]


def _place_row(row: dict[str, Any], win: Window) -> dict[str, Any]:
    keys = {"country": row["country"] or UNKNOWN, "network": row["network"] or UNKNOWN}
    return {
        **row,
        "all_url": win.search(**keys),
        "delivered": _links(row, ["delivered"], win, **keys),
        "failures": _links(row, FAILURES, win, **keys),
        "pending_links": _links(row, PENDING, win, **keys),
    }


def _worst_first(row: dict[str, Any]) -> tuple[int, float, int]:
    rate = row["delivery_rate"]
    return (rate is None, rate if rate is not None else 0.0, -row["messages"])


async def page(request: Request) -> Response:
    await current_staff(request)
    state = app_state(request)
    key = request.query_params.get("period", DEFAULT_PERIOD)
    if key not in PERIODS:
        key = DEFAULT_PERIOD
    win = window(key, datetime.now(UTC))
    store = state.store

    async def rows(group_by: tuple[str, ...], bucket: Bucket | None) -> list[dict[str, Any]]:
        cells = await store.delivery_cells(win.since, win.until, group_by, bucket)
        return summarize(cells, group_by, bucket)

    over_time = await rows(("provider",), win.bucket)
    for row in over_time:
        row["bucket_start"] = datetime.fromisoformat(row["bucket_start"])
    per_provider = await rows(("provider",), None)
    providers = sorted(set(state.config.providers) | {r["provider"] for r in per_provider})
    places = sorted(await rows(("country", "network"), None), key=_worst_first)
    context = {
        "win": win,
        "periods": [(k, title) for k, (title, _, _) in PERIODS.items()],
        "since": when_text(win.since),
        "until": when_text(win.until),
        "chart": chart(over_time, win, providers),
        "latency": [
            {**row, "url": win.search(provider=row["provider"], status="delivered")}
            for row in per_provider
        ],
        "providers_all": {
            row["provider"]: win.search(provider=row["provider"]) for row in per_provider
        },
        "places": [_place_row(row, win) for row in places],
    }
    return render(request, "health.html", context)
