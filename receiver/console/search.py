"""The search page, ``GET /console/messages``: one box that works out what was typed,
explicit filters, newest first, paginated with the staff API's signed cursors.

What the box understands, in order:

1. ``msg_...``: our message id; it goes straight to the message page.
2. Something shaped like a phone number ("+63 917 123 4567", "0917-123-4567",
   "(415) 555-0100"), read with ``console_default_region`` when it has no country
   code, unless a message has exactly that text as its provider message id.
3. Anything else: a provider message id if one matches, else a client reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from itsdangerous import BadSignature
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from receiver.console.phones import parse_phone
from receiver.console.web import PREFIX, app_state, current_staff, render
from receiver.core.network import COUNTRY_PATTERN, UNKNOWN, network_code
from receiver.core.phone import mask_phone
from receiver.core.status import Status, parse_status
from receiver.core.timestamps import parse_iso
from receiver.records import MessageFilter, MessageRecord, Position
from receiver.services.messages import csv_response
from receiver.store.base import Store, to_text

SEARCH_PATH = PREFIX + "/messages"
PAGE_SIZE = 25
_PHONE_SHAPED = re.compile(r"\+?[0-9][0-9 ().\-/]{5,30}")
_FIELDS = (
    "q",
    "to",
    "provider_message_id",
    "client_reference",
    "provider",
    "status",
    "country",
    "network",
)
_COUNTRY = re.compile(COUNTRY_PATTERN)
_TIMES = ("since", "until")


@dataclass
class Search:
    """One search as typed (``form``, echoed back) and as understood (``where``)."""

    form: dict[str, str]
    where: dict[str, Any] = field(default_factory=dict)
    understood: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    go_to: str | None = None


def _time(text: str, name: str, search: Search) -> datetime | None:
    """A ``datetime-local`` value (or an ISO date-time), read as UTC when it has no
    offset."""
    try:
        return parse_iso(text)
    except ValueError as exc:
        search.errors.append(f"{name.capitalize()}: {text!r} {exc}.")
        return None


async def _exists(store: Store, *, provider_message_id: str) -> bool:
    where = MessageFilter(provider_message_id=provider_message_id)
    return bool(await store.find_messages(where, 1, None))


async def _understand_box(search: Search, text: str, store: Store, region: str | None) -> None:
    if text.startswith("msg_"):
        if await store.get_message(text) is not None:
            search.go_to = f"{SEARCH_PATH}/{text}"
        else:
            search.errors.append(f"No message has the id {text}.")
        return
    shaped = _PHONE_SHAPED.fullmatch(text) is not None
    phone = parse_phone(text, region) if shaped else None
    if phone is not None and not await _exists(store, provider_message_id=text):
        search.where["to"] = phone
        search.understood.append("phone number {phone}")  # masked when shown
        return
    if await _exists(store, provider_message_id=text):
        search.where["provider_message_id"] = text
        search.understood.append("provider message id")
    else:
        search.where["client_reference"] = text
        search.understood.append("client reference (no provider message id matched)")
    if shaped and phone is None:
        hint = "add its +country code" if region is None else "check the digits"
        search.understood.append(f"not read as a phone number: {hint}")


async def read_search(request: Request) -> Search:
    state = app_state(request)
    params = request.query_params
    form = {name: params.get(name, "").strip() for name in (*_FIELDS, *_TIMES)}
    search = Search(form=form)
    region = state.config.settings.console_default_region
    if form["q"]:
        await _understand_box(search, form["q"], state.store, region)
    if form["to"]:
        phone = parse_phone(form["to"], region)
        if phone is None:
            hint = "" if region else " with its +country code"
            search.errors.append(f"Phone number: {form['to']!r} is not one; type it{hint}.")
        else:
            search.where["to"] = phone
    for name in ("provider_message_id", "client_reference", "provider"):
        if form[name]:
            search.where[name] = form[name]
    if form["status"]:
        status = parse_status(form["status"])
        if status is None:
            search.errors.append(f"Status: {form['status']!r} is not a status.")
        search.where["status"] = status
    _read_place(search)
    for name in _TIMES:
        if form[name]:
            search.where[name] = _time(form[name], name, search)
    return search


def _read_place(search: Search) -> None:
    """The country (``PH``, ``ph``) and network (``515-02``, ``51502``) filters; either
    may be ``unknown`` (none known)."""
    country, network = search.form["country"], search.form["network"]
    if country:
        value = country if country == UNKNOWN else country.upper()
        if _COUNTRY.fullmatch(value):
            search.where["country"] = value
        else:
            search.errors.append(f"Country: {country!r} is not a two-letter code such as PH.")
    if network:
        code = UNKNOWN if network == UNKNOWN else network_code(network)
        if code is None:
            search.errors.append(f"Network: {network!r} is not an MCC-MNC such as 515-02.")
        search.where["network"] = code


async def search_csv(request: Request) -> Response:
    """``GET /console/messages.csv``: the search's every result as CSV (the numbers as
    the member may see them), for the weekly report."""
    staff = await current_staff(request)
    search = await read_search(request)
    if search.errors or search.go_to is not None:
        return RedirectResponse(SEARCH_PATH + "?" + urlencode(search.form), status_code=303)
    return await csv_response(app_state(request).store, MessageFilter(**search.where), staff.role)


def _cursor_position(request: Request) -> Position | None:
    cursor = request.query_params.get("cursor")
    if not cursor:
        return None
    created_at, message_id = app_state(request).cursors.loads(cursor)
    return Position(created_at=str(created_at), id=str(message_id))


async def search_page(request: Request) -> Response:
    staff = await current_staff(request)
    state = app_state(request)
    search = await read_search(request)
    if search.go_to is not None:
        return RedirectResponse(search.go_to, status_code=303)
    records: list[MessageRecord] = []
    next_url = None
    try:
        after = _cursor_position(request)
    except (BadSignature, ValueError, TypeError):
        search.errors.append("This page link is broken or stale: start the search again.")
        after = None
    if not search.errors:
        where = MessageFilter(**search.where)
        records = await state.store.find_messages(where, PAGE_SIZE + 1, after)
        if len(records) > PAGE_SIZE:
            records = records[:PAGE_SIZE]
            last = records[-1]
            cursor = state.cursors.dumps([to_text(last.created_at), last.id])
            kept = {name: value for name, value in search.form.items() if value}
            next_url = SEARCH_PATH + "?" + urlencode({**kept, "cursor": cursor})
    understood = [
        text.format(phone=mask_phone(search.where.get("to"), staff.role))
        for text in search.understood
    ]
    explicit = any(search.form[name] for name in _FIELDS[1:] + _TIMES)
    first_url = (
        SEARCH_PATH + "?" + urlencode({k: v for k, v in search.form.items() if v})
        if after is not None
        else None
    )
    context = {
        "form": search.form,
        "messages": records,
        "understood": understood,
        "errors": search.errors,
        "next_url": next_url,
        "first_url": first_url,
        "explicit": explicit,
        "providers": sorted(state.config.providers),
        "statuses": [s.value for s in Status],
        "region": state.config.settings.console_default_region,
        "searched": any(search.form.values()),
        "csv_url": SEARCH_PATH + ".csv?" + urlencode({k: v for k, v in search.form.items() if v}),
    }
    return render(request, "search.html", context, 400 if search.errors else 200)
