"""The message page, ``/console/messages/{id}``: what happened to one message.

From top to bottom: the current status in words, colour and a symbol ("Delivered to
handset 2026-11-23 10:03:00 UTC", "Undelivered ...: carrier filtered the message ...
(Twilio 30007)"); the message's facts (the recipient masked for viewers); the whole
timeline, one row per report or send step, with the provider's own word, the error
code explained (``Provider.explain_error``), when it occurred and when we received
it, whether it changed the status, and how often the provider redelivered it.

Admins also see the stored raw requests that carried the message's reports and a
"Reprocess" button per report. The button posts to
``/console/messages/{id}/reprocess`` (CSRF-checked, admin only: anyone else gets
403), which runs ``receiver.services.reprocess.reprocess_stored_event``, the same
function as ``POST /v1/events/{provider}/{event_id}/reprocess``, and redirects back here
with the counts as a one-time notice kept in the session (``flash``). Viewers and senders never
see raw requests: they hold phone numbers in full.

Times are shown in UTC, as on every console page (``web.when_text``), inside
``<time datetime>`` elements.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from receiver.auth import role_allows
from receiver.console.web import (
    PREFIX,
    app_state,
    checked_form,
    current_staff,
    error_page,
    render,
    when_text,
)
from receiver.core.phone import mask_text
from receiver.core.status import FINAL, Status
from receiver.errors import ReceiverError
from receiver.providers import error_label, explain_error
from receiver.records import CarriedRequest, EventRecord, MessageRecord
from receiver.services.reprocess import reprocess_stored_event
from receiver.services.state import AppState

FLASH_KEY = "flash"
"""The session key of the one-time notice shown after a reprocess."""


@dataclass(frozen=True, slots=True)
class Look:
    """How a status is shown: a CSS tone, a symbol (never colour alone) and words."""

    tone: str
    symbol: str
    words: str


LOOKS: dict[Status | None, Look] = {
    Status.DELIVERED: Look("tone-good", "\u2713", "Delivered to handset"),
    Status.SENT: Look("tone-wait", "\u2192", "Sent to carrier"),
    Status.QUEUED: Look("tone-wait", "\u2026", "Queued"),
    Status.BUFFERED: Look("tone-wait", "\u2026", "Held by the carrier (handset not reachable yet)"),
    Status.UNKNOWN: Look("tone-unknown", "?", "Outcome unknown"),
    Status.UNDELIVERED: Look("tone-bad", "\u2717", "Undelivered"),
    Status.EXPIRED: Look("tone-bad", "\u2717", "Expired"),
    Status.REJECTED: Look("tone-bad", "\u2717", "Rejected"),
    Status.FAILED: Look("tone-bad", "\u2717", "Failed"),
    None: Look("tone-unknown", "?", "No status yet"),
}
"""Delivered green, failures red, on the way amber, not known grey."""

SHORT_WORDS: dict[Status | None, str] = {
    Status.DELIVERED: "delivered",
    Status.SENT: "sent",
    Status.QUEUED: "queued",
    Status.BUFFERED: "buffered",
    Status.UNKNOWN: "unknown",
    Status.UNDELIVERED: "undelivered",
    Status.EXPIRED: "expired",
    Status.REJECTED: "rejected",
    Status.FAILED: "failed",
    None: "no status",
}
"""A status in a table cell (the timeline, the overview)."""


def look(status: Status | None) -> Look:
    return LOOKS[status]


@dataclass(frozen=True, slots=True)
class Moment:
    """A point in time for ``<time datetime="{{ iso }}">{{ text }}</time>``."""

    iso: str
    text: str


def moment(value: datetime | None) -> Moment | None:
    if value is None:
        return None
    utc = value.astimezone(UTC)
    return Moment(utc.isoformat().replace("+00:00", "Z"), when_text(utc))


def provider_kind(state: AppState, name: str) -> str | None:
    """The configured type of provider ``name`` (None if it is no longer configured)."""
    provider = state.config.providers.get(name)
    return provider.kind if provider is not None else None


def code_words(kind: str | None, code: str | None) -> str | None:
    """``Twilio 30007``; ``code 42`` for a provider type without a name of its own."""
    if code is None:
        return None
    return f"{error_label(kind or '')} {code}"


@dataclass(frozen=True, slots=True)
class Banner:
    """The status line at the top of the page."""

    look: Look
    at: Moment | None
    reason: str | None
    """For a failure: the explained code, else the provider's message."""
    code: str | None
    """``Twilio 30007``."""


def banner(record: MessageRecord, kind: str | None) -> Banner:
    reason = None
    if record.status in FINAL and record.status is not Status.DELIVERED:
        reason = explain_error(kind or "", record.error_code) or record.error_message
    code = code_words(kind, record.error_code) if record.status is not Status.DELIVERED else None
    return Banner(look(record.status), moment(record.status_changed_at), reason, code)


@dataclass(frozen=True, slots=True)
class Row:
    """One timeline row."""

    event_id: str
    source: str
    """``provider report`` or ``our send step``."""
    status: str
    look: Look
    provider_status: str
    code: str | None
    explanation: str | None
    error_message: str | None
    occurred: Moment | None
    received: Moment | None
    outcome: str
    outcome_words: str
    deliveries: int
    deliveries_words: str
    reprocessed: Moment | None
    can_reprocess: bool
    raw_deleted: bool
    """A provider report whose stored request retention or erasure deleted."""


def outcome_words(event: EventRecord) -> str:
    """Why a report did or did not change the message, in words."""
    if event.outcome == "applied":
        return "changed the status when it arrived"
    if event.status is None:
        return "the provider's word maps to no status, so it changed nothing; kept for the record"
    return "arrived after a later status; kept for the record"


def deliveries_words(deliveries: int) -> str:
    if deliveries <= 1:
        return "received once"
    again = deliveries - 1
    return f"received {deliveries} times (redelivered {again} time{'s' if again > 1 else ''})"


SOURCE_WORDS = {
    "webhook": "provider report",
    "outbound": "our send step",
    "lookup": "looked up at the provider",
    "receiver": "our verdict: no final report",
}


def timeline(
    events: list[EventRecord], kind: str | None, reprocessable: frozenset[str]
) -> list[Row]:
    rows = []
    for event in events:
        explanation = explain_error(kind or "", event.error_code)
        rows.append(
            Row(
                event_id=event.event_id,
                source=SOURCE_WORDS.get(event.source, event.source),
                status=SHORT_WORDS[event.status],
                look=look(event.status),
                provider_status=event.provider_status,
                code=code_words(kind, event.error_code),
                explanation=explanation,
                error_message=event.error_message if event.error_message != explanation else None,
                occurred=moment(event.occurred_at),
                received=moment(event.received_at),
                outcome=event.outcome,
                outcome_words=outcome_words(event),
                deliveries=event.deliveries,
                deliveries_words=deliveries_words(event.deliveries),
                reprocessed=moment(event.reprocessed_at),
                can_reprocess=event.event_id in reprocessable,
                raw_deleted=event.raw_deleted,
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class RawView:
    """A stored raw request as an admin sees it (escaped by the template)."""

    method: str
    path: str
    received: Moment | None
    event_ids: tuple[str, ...]
    headers: str
    body: str
    body_note: str | None


def pretty_body(body: bytes) -> tuple[str, str | None]:
    """The body as text (indented if JSON) and a note on how it is shown, if any."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("utf-8", "replace"), "not UTF-8: shown with replacement characters"
    try:
        parsed = json.loads(text)
    except ValueError:
        return text, None
    if isinstance(parsed, dict | list):
        return json.dumps(parsed, indent=2, ensure_ascii=False), "JSON, indented for reading"
    return text, None


def raw_view(carried: CarriedRequest) -> RawView:
    body, note = pretty_body(carried.raw.body)
    return RawView(
        method=carried.raw.method,
        path=carried.raw.path,
        received=moment(carried.raw.received_at),
        event_ids=carried.event_ids,
        headers=json.dumps(dict(carried.raw.headers), indent=2, ensure_ascii=False),
        body=body,
        body_note=note,
    )


def message_path(message_id: str) -> str:
    return f"{PREFIX}/messages/{quote(message_id, safe='')}"


async def page(request: Request) -> Response:
    from receiver.console import feed  # it builds on this module's looks and moments

    staff = await current_staff(request)
    state = app_state(request)
    message_id = request.path_params["message_id"]
    record = await state.store.get_message(message_id)
    if record is None:
        return error_page(request, 404, "Not found", "No message with this id.")
    kind = provider_kind(state, record.provider)
    events = await state.store.message_events(record.id)
    # A viewer sees no full number anywhere, provider text included (README "HTTP API").
    record = replace(record, error_message=mask_text(record.error_message, staff.role))
    events = [replace(e, error_message=mask_text(e.error_message, staff.role)) for e in events]
    is_admin = role_allows(staff.role, "admin")
    raw: list[CarriedRequest] = []
    if is_admin:
        raw = await state.store.raw_requests_for_message(record.id)
    reprocessable = frozenset(e for carried in raw for e in carried.event_ids)
    flash = request.session.pop(FLASH_KEY, None) if is_admin else None
    context: dict[str, Any] = {
        "message": record,
        "kind": kind,
        "banner": banner(record, kind),
        "facts_times": {
            "created": moment(record.created_at),
            "updated": moment(record.updated_at),
            "changed": moment(record.status_changed_at),
        },
        "rows": timeline(events, kind, reprocessable),
        "is_admin": is_admin,
        "raw": [raw_view(carried) for carried in raw],
        "raw_deleted": any(event.raw_deleted for event in events),
        "flash": flash if isinstance(flash, dict) else None,
        "reprocess_action": message_path(record.id) + "/reprocess",
        "changes": await feed.message_changes(state, record.id),
    }
    return render(request, "message.html", context)


def _result_notice(event_id: str, counts: dict[str, Any]) -> dict[str, Any]:
    parts = ", ".join(
        f"{counts[name]} {name}" for name in ("applied", "superseded", "corrected", "unchanged")
    )
    reports = counts["reports"]
    text = (
        f"Reprocessed the stored request of {event_id}: the current parser finds "
        f"{reports} report{'' if reports == 1 else 's'} in it ({parts})."
    )
    if counts["missing"]:
        text += f" It no longer finds {event_id} itself; that event was left as it was."
    return {"ok": True, "text": text, "counts": counts}


async def reprocess(request: Request) -> Response:
    """POST: reprocess one of the message's reports, then back to the message page."""
    await current_staff(request, "admin")
    form = await checked_form(request)
    state = app_state(request)
    message_id = request.path_params["message_id"]
    record = await state.store.get_message(message_id)
    if record is None:
        return error_page(request, 404, "Not found", "No message with this id.")
    event_id = str(form.get("event_id") or "")
    events = await state.store.message_events(record.id)
    if not any(e.event_id == event_id and e.source == "webhook" for e in events):
        notice: dict[str, Any] = {
            "ok": False,
            "text": f"This message has no provider report {event_id!r} to reprocess.",
        }
    else:
        # The parser sees public_base_url when set, else the address we were reached at
        # (the site root: request.base_url would include the /console mount).
        site = str(request.url.replace(path="/", query="", fragment=""))
        try:
            result = await reprocess_stored_event(state, record.provider, event_id, site)
        except ReceiverError as exc:
            notice = {"ok": False, "text": f"Reprocess of {event_id} refused: {exc.detail}"}
        else:
            notice = _result_notice(event_id, result.model_dump())
    request.session[FLASH_KEY] = notice
    return RedirectResponse(message_path(record.id), status_code=303)
