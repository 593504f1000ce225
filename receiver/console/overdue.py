"""The "Overdue" page, ``/console/overdue``: messages whose final report has not come
(README "Missing reports"). Per provider: how many, the oldest, and why (no report yet; the
lookup failed; looked up, and the provider still says it is not final); then the
overdue messages themselves, oldest first, with their lookups so far. A message's own
page shows each lookup (``source = 'lookup'``) and our verdict in its timeline.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from receiver.console.web import app_state, current_staff, render
from receiver.outbound.reconcile import overdue_cutoffs
from receiver.records import ReconcileWindow

SHOWN_PER_PROVIDER = 50


async def page(request: Request) -> Response:
    await current_staff(request)
    state = app_state(request)
    now = datetime.now(UTC)
    cutoffs = overdue_cutoffs(state.config.providers, now)
    counts = await state.store.overdue_counts(cutoffs)
    messages = []
    for count in counts:
        if count.overdue:
            messages += await state.store.overdue_messages(
                count.provider, cutoffs[count.provider], ReconcileWindow(), SHOWN_PER_PROVIDER
            )
    messages.sort(key=lambda message: message.updated_at)
    context = {
        "counts": counts,
        "messages": messages,
        "timeouts": {
            name: provider.config.report_timeout
            for name, provider in state.config.providers.items()
        },
        "lookups": {name: provider.looks_up() for name, provider in state.config.providers.items()},
        "shown": SHOWN_PER_PROVIDER,
        "now": now.strftime("%Y-%m-%d %H:%M UTC"),
    }
    return render(request, "overdue.html", context)
