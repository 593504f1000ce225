"""The change feed in the console: per message, the changes it emitted and where each
stands with each subscriber (on the message page); for admins, ``/console/subscribers``:
each subscriber's health (disabled by a 410, backlog, oldest pending, dead letters,
last error)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from receiver.console.message import SHORT_WORDS, Look, Moment, look, moment
from receiver.console.web import app_state, current_staff, render
from receiver.records import DeliveryRecord
from receiver.services.state import AppState

DELIVERY_WORDS = {
    "pending": "waiting",
    "sending": "being sent",
    "delivered": "delivered",
    "dead": "given up (dead letter)",
}


@dataclass(frozen=True, slots=True)
class DeliveryView:
    subscriber: str
    state: str
    words: str
    attempts: int
    at: Moment | None
    """Delivered at, or the next attempt for one still waiting."""
    last_error: str | None


@dataclass(frozen=True, slots=True)
class ChangeView:
    seq: int
    change_id: str
    previous: str
    status: str
    look: Look
    error_code: str | None
    changed: Moment | None
    cause: str
    deliveries: list[DeliveryView]


def _delivery(record: DeliveryRecord) -> DeliveryView:
    at = record.delivered_at if record.state == "delivered" else record.next_attempt_at
    return DeliveryView(
        subscriber=record.subscriber,
        state=record.state,
        words=DELIVERY_WORDS.get(record.state, record.state),
        attempts=record.attempts,
        at=moment(at) if record.state in ("delivered", "pending") else None,
        last_error=record.last_error,
    )


async def message_changes(state: AppState, message_id: str) -> list[ChangeView]:
    """The message's changes, by seq, each with its deliveries."""
    changes = await state.store.message_changes(message_id)
    deliveries: dict[int, list[DeliveryView]] = {}
    for record in await state.store.message_deliveries(message_id):
        deliveries.setdefault(record.cursor, []).append(_delivery(record))
    return [
        ChangeView(
            seq=change.seq,
            change_id=change.change_id,
            previous=SHORT_WORDS[change.previous_status],
            status=SHORT_WORDS[change.status],
            look=look(change.status),
            error_code=change.error_code,
            changed=moment(change.changed_at),
            cause=f"{change.cause_source} {change.cause_event_id or ''}".strip(),
            deliveries=deliveries.get(change.cursor, []),
        )
        for change in changes
    ]


@dataclass(frozen=True, slots=True)
class SubscriberView:
    name: str
    url: str
    """Scheme, host and path only: a query string may hold a token."""
    disabled: Moment | None
    disabled_reason: str | None
    backlog: int
    oldest_pending: Moment | None
    dead: int
    last_error: str | None
    last_error_at: Moment | None


def _shown_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


async def subscribers_page(request: Request) -> Response:
    await current_staff(request, "admin")
    state = app_state(request)
    configured = state.config.settings.subscribers
    views = [
        SubscriberView(
            name=health.name,
            url=_shown_url(str(configured[health.name].url)),
            disabled=moment(health.disabled_at),
            disabled_reason=health.disabled_reason,
            backlog=health.backlog,
            oldest_pending=moment(health.oldest_pending),
            dead=health.dead,
            last_error=health.last_error,
            last_error_at=moment(health.last_error_at),
        )
        for health in await state.store.subscriber_health()
        if health.name in configured
    ]
    return render(request, "subscribers.html", {"subscribers": views})
