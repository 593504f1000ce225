"""Delivery health over HTTP (README "Delivery health"): ``GET /v1/stats/delivery`` from the
store's aggregates, and ``GET /v1/messages.csv``, a search streamed as CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.requests import Request
from starlette.responses import Response

from receiver.core.delivery import GROUP_KEYS, Bucket, summarize
from receiver.core.timestamps import Rfc3339Datetime
from receiver.http.staff import MessageFilters, authenticate, message_filter, parse_query
from receiver.services.messages import csv_response
from receiver.services.state import AppState

MAX_WINDOW = timedelta(days=400)
DEFAULT_WINDOW = timedelta(days=1)


def _whole_hour(value: datetime | None) -> datetime | None:
    if value is not None and (value.minute, value.second, value.microsecond) != (0, 0, 0):
        raise ValueError("must be on a whole hour (the figures are kept per hour)")
    return None if value is None else value.astimezone(UTC)


class StatsQuery(BaseModel):
    """The parameters of ``GET /v1/stats/delivery``."""

    model_config = ConfigDict(extra="forbid")

    since: Rfc3339Datetime | None = None
    until: Rfc3339Datetime | None = None
    group_by: str | None = Field(default=None, description="provider,country,network")
    bucket: Bucket | None = None

    _hours = field_validator("since", "until")(_whole_hour)

    @field_validator("group_by")
    @classmethod
    def _keys(cls, value: str | None) -> str | None:
        if value is None:
            return None
        keys = value.split(",")
        unknown = [key for key in keys if key not in GROUP_KEYS]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not one of {', '.join(GROUP_KEYS)}")
        return ",".join(key for key in GROUP_KEYS if key in keys)

    @model_validator(mode="after")
    def _window(self) -> StatsQuery:
        if self.until is None:
            now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            self.until = now + timedelta(hours=1)
        if self.since is None:
            self.since = self.until - DEFAULT_WINDOW
        if self.since >= self.until:
            raise ValueError("since must be before until")
        if self.until - self.since > MAX_WINDOW:
            raise ValueError(f"the window may span at most {MAX_WINDOW.days} days")
        return self

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.group_by.split(",")) if self.group_by else ()


async def delivery_stats(request: Request) -> Response:
    """``GET /v1/stats/delivery`` (viewer and up)."""
    await authenticate(request)
    state: AppState = request.app.state.receiver
    query = parse_query(StatsQuery, request)
    assert query.since is not None and query.until is not None  # set by _window
    cells = await state.store.delivery_cells(query.since, query.until, query.keys, query.bucket)
    rows = summarize(cells, query.keys, query.bucket)
    body = StatsOut.model_validate({"rows": rows}).model_dump_json(exclude_unset=True)
    return Response(body, media_type="application/json")


class LatencyOut(BaseModel):
    p50: float | None
    p90: float | None
    p99: float | None


class StatsRow(BaseModel):
    """One bucket and group. ``bucket_start`` is there with ``bucket``, and each key of
    ``group_by`` (null: unknown); latency percentiles are their histogram bucket's upper
    bound (at most 1 s above the true value up to 6 s, at most 25 % above from 10 s)."""

    bucket_start: datetime | None = None
    provider: str | None = None
    country: str | None = None
    network: str | None = None
    messages: int
    by_status: dict[str, int] = Field(description="Messages by current status.")
    pending: int = Field(description="Messages whose status is not final (or not known yet).")
    delivery_rate: float | None = Field(
        description="delivered / (delivered + failures); null when none finished."
    )
    latency_seconds: LatencyOut = Field(
        description="From the hand-over to the provider (or the first `sent` report) to the"
        " `delivered` report's occurred_at; null without such a message."
    )


class StatsOut(BaseModel):
    """The answer of ``GET /v1/stats/delivery``."""

    rows: list[StatsRow]


async def messages_csv(request: Request) -> Response:
    """``GET /v1/messages.csv``: the filters of ``GET /v1/messages``, all pages, as CSV."""
    member = await authenticate(request)
    state: AppState = request.app.state.receiver
    query = parse_query(MessageFilters, request)
    where = message_filter(query, state.config.providers, datetime.now(UTC))
    return await csv_response(state.store, where, member.role)
