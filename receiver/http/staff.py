"""The staff JSON API (README "HTTP API"): bearer tokens, roles, lookups, timeline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import phonenumbers
from itsdangerous import BadSignature
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import Response

from receiver.auth import hash_token, role_allows
from receiver.core.network import COUNTRY_PATTERN, NETWORK_FILTER_PATTERN, UNKNOWN
from receiver.core.phone import mask_text
from receiver.core.status import Status
from receiver.core.timestamps import Rfc3339Datetime
from receiver.errors import BadRequest, Forbidden, NotFound, Unauthorized
from receiver.outbound.reconcile import overdue_cutoffs
from receiver.providers.base import Provider
from receiver.records import MessageFilter, Position, StaffMember
from receiver.services.messages import message_json
from receiver.services.schemas import EventList, EventOut, MessageList
from receiver.services.state import AppState
from receiver.store.base import to_text


async def authenticate(request: Request, needed: str = "viewer") -> StaffMember:
    """The staff member behind the bearer token; 401 without one, 403 if under-privileged."""
    state: AppState = request.app.state.receiver
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token>")
    member = await state.store.staff_by_token_hash(hash_token(token.strip()))
    if member is None:
        raise Unauthorized("the token is unknown or revoked")
    if not role_allows(member.role, needed):
        raise Forbidden(f"role {member.role!r} may not do this; it needs {needed!r}")
    return member


def normalize_phone(value: str) -> str:
    """E.164 form of a number typed with or without spaces; ValueError if invalid."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError("must be a phone number in E.164 form, e.g. +639171234567") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError("is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class MessageFilters(BaseModel):
    """The filters of ``GET /v1/messages`` and ``GET /v1/messages.csv``; unknown
    parameters are refused."""

    model_config = ConfigDict(extra="forbid")

    provider: str | None = None
    provider_message_id: str | None = None
    to: str | None = None
    client_reference: str | None = None
    status: Status | None = None
    country: Annotated[str, Field(pattern=COUNTRY_PATTERN)] | None = None
    network: Annotated[str, Field(pattern=NETWORK_FILTER_PATTERN)] | None = None
    since: Rfc3339Datetime | None = None
    until: Rfc3339Datetime | None = None
    overdue: bool = False
    """Only messages whose final report is overdue (README "Missing reports")."""

    @field_validator("to")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        return None if value is None else normalize_phone(value)

    @field_validator("country", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) and value != UNKNOWN else value


Q = TypeVar("Q", bound=BaseModel)


class MessageQuery(MessageFilters):
    """``GET /v1/messages``: the filters and a page."""

    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = None


def parse_query(model: type[Q], request: Request) -> Q:
    """The query string as ``model``, or 400 FILTER_INVALID naming the first bad field."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "is not a known filter"
        raise BadRequest(f"{field}: {message}", code="FILTER_INVALID", field=field) from None


def message_filter(
    query: MessageFilters, providers: Mapping[str, Provider], now: datetime
) -> MessageFilter:
    """The store's filter for ``GET /v1/messages`` and its CSV: ``overdue`` becomes each
    provider's cut-off (its ``report_timeout_seconds`` before ``now``)."""
    return MessageFilter(
        **query.model_dump(exclude={"limit", "cursor", "overdue"}),
        overdue_before=overdue_cutoffs(providers, now) if query.overdue else None,
    )


def _json(model: BaseModel) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


async def get_message(request: Request) -> Response:
    member = await authenticate(request)
    state: AppState = request.app.state.receiver
    record = await state.store.get_message(request.path_params["message_id"])
    if record is None:
        raise NotFound("no message with this id")
    return _json(message_json(record, member.role))


async def list_messages(request: Request) -> Response:
    member = await authenticate(request)
    state: AppState = request.app.state.receiver
    query = parse_query(MessageQuery, request)
    after = None
    if query.cursor is not None:
        try:
            created_at, message_id = state.cursors.loads(query.cursor)
        except (BadSignature, ValueError, TypeError):
            raise BadRequest(
                "the cursor is not one this service issued", code="CURSOR_INVALID", field="cursor"
            ) from None
        after = Position(created_at=created_at, id=message_id)
    where = message_filter(query, state.config.providers, datetime.now(UTC))
    records = await state.store.find_messages(where, query.limit + 1, after)
    next_cursor = None
    if len(records) > query.limit:
        records = records[: query.limit]
        last = records[-1]
        next_cursor = state.cursors.dumps([to_text(last.created_at), last.id])
    items = [message_json(r, member.role) for r in records]
    return _json(MessageList(items=items, next_cursor=next_cursor))


async def list_events(request: Request) -> Response:
    member = await authenticate(request)
    state: AppState = request.app.state.receiver
    message_id = request.path_params["message_id"]
    if await state.store.get_message(message_id) is None:
        raise NotFound("no message with this id")
    events = await state.store.message_events(message_id)
    items = [
        EventOut.model_validate(
            replace(event, error_message=mask_text(event.error_message, member.role)),
            from_attributes=True,
        )
        for event in events
    ]
    return _json(EventList(items=items))
