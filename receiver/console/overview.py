"""The overview page, ``/console/`` (the console's home): what a support lead checks
first when customers complain.

1. Counts by current status per provider, for the last hour and the last 24 hours: one
   table per window, providers down, statuses across (in rank order), with totals.
2. The most frequent failure reasons of the last 24 hours (top 10): provider, status,
   error code with its explanation (``Provider.explain_error``, else the provider's
   own message), and a link to the search for that provider and status.

Windows are by ``updated_at``: when the message record last changed (a new report or
one of our send steps), on our own clock. A provider's timestamps can be skewed or late,
and ``status_changed_at`` is theirs; ``updated_at`` also catches a message whose new
report did not change its status. The page says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from receiver.console.message import SHORT_WORDS, Look, code_words, look, provider_kind
from receiver.console.web import PREFIX, app_state, current_staff, render, when_text
from receiver.core.phone import mask_text
from receiver.core.status import FAILURE_ORDER, RANK, Status
from receiver.providers import explain_error
from receiver.records import FailureReason, StatusCount
from receiver.services.state import AppState

WINDOWS = (
    ("hour", "Last hour", timedelta(hours=1)),
    ("day", "Last 24 hours", timedelta(hours=24)),
)
REASONS_WINDOW = timedelta(hours=24)
TOP_REASONS = 10

STATUS_ORDER: tuple[Status, ...] = tuple(
    sorted(Status, key=lambda s: (RANK[s], -FAILURE_ORDER.get(s, 0)))
)
"""Columns: queued, sent, buffered, unknown, undelivered, expired, rejected, failed,
delivered (the failures in the merge rule's tie-break order)."""


@dataclass(frozen=True, slots=True)
class Column:
    status: Status | None
    words: str
    look: Look


@dataclass(frozen=True, slots=True)
class CountRow:
    provider: str
    cells: tuple[int, ...]
    total: int


@dataclass(frozen=True, slots=True)
class CountTable:
    key: str
    title: str
    since: str
    columns: tuple[Column, ...]
    rows: tuple[CountRow, ...]
    totals: tuple[int, ...]
    total: int


def count_table(
    key: str, title: str, since: datetime, counts: list[StatusCount], providers: list[str]
) -> CountTable:
    """Providers (every configured one, and any other with messages) x statuses.

    The "no status" column (messages whose reports all used unknown words) appears
    only when some message is in it.
    """
    statuses: list[Status | None] = list(STATUS_ORDER)
    if any(c.status is None for c in counts):
        statuses.append(None)
    columns = tuple(Column(s, SHORT_WORDS[s], look(s)) for s in statuses)
    by_key = {(c.provider, c.status): c.count for c in counts}
    names = sorted(set(providers) | {c.provider for c in counts})
    rows = []
    for name in names:
        cells = tuple(by_key.get((name, s), 0) for s in statuses)
        rows.append(CountRow(name, cells, sum(cells)))
    totals = tuple(sum(row.cells[i] for row in rows) for i in range(len(statuses)))
    return CountTable(
        key=key,
        title=title,
        since=when_text(since),
        columns=columns,
        rows=tuple(rows),
        totals=totals,
        total=sum(totals),
    )


@dataclass(frozen=True, slots=True)
class ReasonRow:
    provider: str
    status: str
    look: Look
    code: str | None
    explanation: str
    count: int
    search_url: str


def reason_row(state: AppState, reason: FailureReason) -> ReasonRow:
    kind = provider_kind(state, reason.provider)
    if reason.error_code is None:
        text = reason.error_message or "no error code given"
    else:
        text = (
            explain_error(kind or "", reason.error_code) or reason.error_message or "not explained"
        )
    query = urlencode({"provider": reason.provider, "status": reason.status.value})
    return ReasonRow(
        provider=reason.provider,
        status=SHORT_WORDS[reason.status],
        look=look(reason.status),
        code=code_words(kind, reason.error_code),
        explanation=text,
        count=reason.count,
        search_url=f"{PREFIX}/messages?{query}",
    )


async def page(request: Request) -> Response:
    staff = await current_staff(request)
    state = app_state(request)
    now = datetime.now(UTC)
    providers = list(state.config.providers)
    tables = []
    for key, title, span in WINDOWS:
        since = now - span
        counts = await state.store.status_counts(since)
        tables.append(count_table(key, title, since, counts, providers))
    reasons = await state.store.failure_reasons(now - REASONS_WINDOW, TOP_REASONS)
    context = {
        "tables": tables,
        "reasons": [
            reason_row(state, replace(r, error_message=mask_text(r.error_message, staff.role)))
            for r in reasons
        ],
        "now": when_text(now),
        "top": TOP_REASONS,
    }
    return render(request, "overview.html", context)
