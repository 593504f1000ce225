"""Type ``futuresms``: the FutureSMS Merchant API (templated SMS): sends and DLR callbacks.

Followed (read 2026-12, www.futuresms.net):

- "Authentication" (/api-basics/authentication): ``POST /api/v1/auth/login`` with
  ``username`` and ``password`` issues a token pair (``access_token``, ``refresh_token``)
  with "both expiry timestamps" (UTC); requests carry ``Authorization: Bearer``;
  ``POST /api/v1/auth/refresh`` with the latest refresh token rotates it ("do not keep
  using an old refresh token"), and refresh must be coordinated across workers.
- "Send SMS" (/messaging/send-sms): ``POST /api/v1/sms/sends`` with ``phone_number``,
  ``template_id`` (4-16), ``sender_id`` (``SID-...`` or ``AUTO``), ``var`` (at most 24,
  for a template with ``{{var}}``), ``client_order_id`` (12-128), ``dlr_address`` (at
  most 255); 202 Accepted, ``data.order_id``, ``data.order_status`` ("usually pending").
- "Idempotency" (/api-basics/idempotency): ``client_order_id`` is unique per merchant; a
  repeat is answered with a *conflict response* (``error_code: "CONFLICT"``, details
  "client_order_id already exists for this merchant"), to be treated "as a signal to
  reconcile, not as permission to generate a new identifier".
- "Track Messages" (/messaging/track-messages): ``GET /api/v1/sms/orders/{order_id}``.
- "Delivery Reports" (/messaging/delivery-reports): ``POST {dlr_address}`` with
  ``order_id``, ``client_order_id``, ``message_status`` ("normalized delivery status"),
  ``phone_number``, ``sender_value``, ``reported_at``; answer 200 with a small JSON body
  such as ``{"status": "ok"}`` once stored; at-least-once, deduplicate on ``order_id``,
  ``client_order_id`` and ``reported_at``; up to 3 attempts.
- "Response Envelope" (/api-basics/responses) and "Date and Time" (/api-basics/time):
  ``{message, details, data, meta}`` on success, ``{error_code, reason, message,
  details, path, timestamp, request_id}`` on error; UTC ISO 8601 times with ``Z``.

What the pages leave open, and the choice made, is in docs/providers/futuresms.md.

Theory of operation
-------------------
Reports carry no signature: the edge checks ``url_token`` (carried in the
``dlr_address`` we send with every order) and/or ``allowed_ips``. A report has no event
id; it is derived from ``(order_id, message_status, reported_at)``. Its
``client_order_id`` is our message id, so it completes the message even when the send's
answer never told us the ``order_id`` (``Report.message_reference``).

The sender sends each message under ``client_order_id`` = our message id, identical on
every attempt. FutureSMS never forgets it (``idempotency_lifetime = PERMANENT``), so an
attempt in doubt is settled by sending again: a CONFLICT answer means the first request
owns the order, and the message is recorded as handed over with its order id unknown
until its report names it. There is no lookup by ``client_order_id``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote

import httpx
import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from receiver.core.phone import e164
from receiver.core.reports import Outcome, Report, derived_event_id
from receiver.core.status import SMPP_RECEIPT_STATES, Status
from receiver.core.timestamps import parse_iso
from receiver.providers.base import (
    JSON,
    PERMANENT,
    Accepted,
    Answer,
    Content,
    InboundRequest,
    Provider,
    ProviderConfig,
    Rejected,
    Sender,
    SendResult,
    WebhookRequest,
    http_reason,
    payload_invalid,
)
from receiver.providers.fields import MAX_ERROR_MESSAGE, Word
from receiver.records import OutboxItem, Template

log = logging.getLogger("receiver.providers.futuresms")

LOGIN_PATH = "/api/v1/auth/login"
REFRESH_PATH = "/api/v1/auth/refresh"
SENDS_PATH = "/api/v1/sms/sends"
ORDERS_PATH = "/api/v1/sms/orders"
CONFLICT = "CONFLICT"
"""The ``error_code`` of the answer to a repeated ``client_order_id`` (Idempotency page)."""
MAX_DLR_ADDRESS = 255
MAX_VAR = 24
TEMPLATE_ID_LENGTH = (4, 16)
RENEW_MARGIN = timedelta(seconds=60)
"""Tokens are renewed this long before the expiry FutureSMS stated: its clock and ours
differ, and a request takes time to arrive."""

# FutureSMS's ``message_status`` is a "normalized delivery status" whose full list is
# not published; the one value shown (DELIVRD) is an SMPP receipt state, so the SMPP
# 3.4 states are mapped. Any other word (``pending``, a word added later) is kept in
# the timeline with status None and changes nothing.
STATUS_MAP: dict[str, Status] = dict(SMPP_RECEIPT_STATES)

# Our plain words for the console (``explain_error``). DLRs carry no error code; a
# refused send stores the answer's ``error_code``, the coarse category of FutureSMS's
# error envelope ("Response Envelope", https://www.futuresms.net/api-basics/responses),
# with its ``reason`` and ``details`` in the message. Only the categories that reject a
# message are here.
ERROR_EXPLANATIONS: dict[str, str] = {
    "VALIDATION_ERROR": "a field of the send was refused (number, template, sender id or var)",
}

# The names an expiry may have in the token response (the page says only "both expiry
# timestamps"): a time (ISO 8601, or Unix seconds) or a lifetime in seconds. Failing all
# of them, a JWT's ``exp``; failing that, the token is renewed when refused (401).
_ACCESS_EXPIRES_AT = ("access_token_expires_at", "access_expires_at", "expires_at")
_ACCESS_EXPIRES_IN = ("access_token_expires_in", "access_expires_in", "expires_in")
_REFRESH_EXPIRES_AT = ("refresh_token_expires_at", "refresh_expires_at")
_REFRESH_EXPIRES_IN = ("refresh_token_expires_in", "refresh_expires_in")


def read_time(value: str) -> datetime:
    """A FutureSMS date-time (UTC ISO 8601 with ``Z``, "Date and Time"); an explicit
    offset is honoured, and one without any is read as UTC, as every FutureSMS time is.
    ValueError if it is not a date-time, or falls outside the range we store."""
    return parse_iso(value)


class FutureSmsConfig(ProviderConfig):
    """``username``/``password``: the dedicated API user that logs in for tokens;
    ``api_base_url``: the API host (FutureSMS gives it to each merchant); ``sender``:
    the default ``sender_id`` (``SID-...``, or ``AUTO`` with auto routing). Reports are
    not signed: ``url_token`` and/or ``allowed_ips`` guard them."""

    type: Literal["futuresms"]
    username: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    password: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    send_requires: ClassVar[tuple[str, ...]] = ("api_base_url", "username", "password", "sender")
    signed_reports: ClassVar[bool] = False

    secrets_refused: ClassVar[str | None] = (
        "FutureSMS signs no reports, so there is nothing to check secrets against:"
        " use url_token and/or allowed_ips"
    )

    @model_validator(mode="after")
    def _login_not_api_key(self) -> FutureSmsConfig:
        if self.api_key is not None:
            raise ValueError(
                "api_key: is not used by futuresms: it logs in with username and password"
            )
        given = [key for key in ("username", "password") if getattr(self, key) is not None]
        missing = [key for key in self.send_requires if not getattr(self, key)]
        if given and missing:
            raise ValueError(f"{missing[0]}: is required to send ({given[0]} is set)")
        return self

    @field_validator("api_base_url")
    @classmethod
    def _host_without_version(cls, url: Any) -> Any:
        path = (url.path or "").rstrip("/") if url is not None else ""
        if path.endswith(("/api", "/api/v1")):
            raise ValueError(
                "is the API host without its version prefix (the paths /api/v1/... are"
                f" added): drop {path!r}"
            )
        return url


# --------------------------------------------------------------------------- reports


class FutureSmsDlr(BaseModel):
    """One DLR callback, as the Delivery Reports page lists its fields; ``sender_value``
    and any field added later are left to the raw request."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    order_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[!-~]+$")]
    client_order_id: Annotated[str, Field(max_length=128)] | None = None
    message_status: Word
    phone_number: Annotated[str, Field(max_length=32)] | None = None
    reported_at: datetime

    @field_validator("reported_at", mode="before")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 date-time such as 2026-03-25T10:30:05Z")
        try:
            return read_time(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None


def parse_dlr(body: bytes) -> Report:
    """The report in one DLR callback body; PayloadInvalid naming the bad field."""
    try:
        dlr = FutureSmsDlr.model_validate_json(body)
    except ValidationError as exc:
        raise payload_invalid(exc) from None
    reported_at = dlr.reported_at
    reference = dlr.client_order_id.strip() if dlr.client_order_id else None
    return Report(
        # The page's advice: deduplicate on order_id, client_order_id and reported_at.
        # client_order_id belongs to the order, so order_id stands for both; the status
        # is added so that two words reported in the same second stay two events.
        event_id=derived_event_id(dlr.order_id, dlr.message_status, reported_at.isoformat()),
        provider_message_id=dlr.order_id,
        status=STATUS_MAP.get(dlr.message_status.upper()),
        provider_status=dlr.message_status,
        occurred_at=reported_at,
        to=e164(dlr.phone_number),
        message_reference=reference or None,
    )


_ANSWER_OK = {"status": "ok"}


# --------------------------------------------------------------------------- sending


class Envelope(BaseModel):
    """A success answer: ``{message, details, data, meta}``; we read ``data``."""

    model_config = ConfigDict(extra="ignore")

    message: str | None = None
    data: dict[str, Any]


class Order(BaseModel):
    """The ``data`` of a send's 202 answer or of an order lookup."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    order_id: Annotated[str, Field(min_length=1, max_length=128)]
    client_order_id: str | None = None
    order_status: str | None = None
    message_status: str | None = None


class ErrorEnvelope(BaseModel):
    """An error answer: ``{error_code, reason, message, details, path, timestamp,
    request_id}``."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    error_code: str | None = None
    reason: str | None = None
    message: str | None = None
    details: str | None = None


def _error(response: httpx.Response) -> ErrorEnvelope:
    try:
        return ErrorEnvelope.model_validate_json(response.content)
    except ValueError:
        return ErrorEnvelope()


def _describe(error: ErrorEnvelope, response: httpx.Response) -> str:
    """``VALIDATION_ERROR (TEMPLATE_NOT_FOUND): ...``, never a request's secret."""
    words = " ".join(
        part for part in (error.error_code, f"({error.reason})" if error.reason else None) if part
    )
    text = error.details or error.message
    return f"{words}: {text}" if words and text else words or text or http_reason(response)


def _expiry(
    data: dict[str, Any],
    at_names: tuple[str, ...],
    in_names: tuple[str, ...],
    token: str,
    now: datetime,
) -> datetime | None:
    """When a token expires, by the first of its expiry fields that reads; else its JWT
    ``exp``; None when nothing says (it is then renewed when refused)."""
    for name in at_names:
        value = data.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            try:
                return read_time(value)
            except ValueError:
                continue
    for name in in_names:
        value = data.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return now + timedelta(seconds=value)
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return datetime.fromtimestamp(exp, UTC)
    return None


def _due(expires: datetime | None, now: datetime) -> bool:
    return expires is not None and now >= expires - RENEW_MARGIN


class FutureSmsSender(Sender):
    """The Merchant API: a login session, ``POST /api/v1/sms/sends`` under
    ``client_order_id`` = our message id, ``dlr_address`` pointing at us."""

    idempotency_lifetime = PERMANENT

    def __init__(self, config: FutureSmsConfig, dlr_address: str | None) -> None:
        base = str(config.api_base_url).rstrip("/")
        self._login_url = base + LOGIN_PATH
        self._refresh_url = base + REFRESH_PATH
        self._sends_url = base + SENDS_PATH
        self._orders_url = base + ORDERS_PATH
        self._credentials = {"username": config.username, "password": config.password}
        self._sender = config.sender
        self._dlr_address = dlr_address
        self._access: str | None = None
        self._access_expires: datetime | None = None
        self._refresh: str | None = None
        self._refresh_expires: datetime | None = None

    # ------------------------------------------------------------------ the session

    def auth_request(self, now: datetime) -> httpx.Request | None:
        if self._access is not None and not _due(self._access_expires, now):
            return None
        # The access token in hand (if any) stays until replaced: requests already on
        # their way may still get through with it.
        if self._refresh is not None and not _due(self._refresh_expires, now):
            # Spent the moment it leaves: whatever the answer, it is never sent again.
            token, self._refresh = self._refresh, None
            return httpx.Request(
                "POST", self._refresh_url, json={"refresh_token": token}, headers={"accept": JSON}
            )
        self._refresh = None
        return httpx.Request(
            "POST", self._login_url, json=self._credentials, headers={"accept": JSON}
        )

    def read_auth(self, response: httpx.Response, now: datetime) -> None:
        refreshing = response.request.url.path.endswith(REFRESH_PATH)
        if not response.is_success:
            if refreshing:
                return  # used, expired or revoked: the worker asks again, and we log in
            raise ValueError(_describe(_error(response), response))
        try:
            payload = json.loads(response.content)
        except ValueError:
            raise ValueError("the token answer is not JSON") from None
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict):
            data = payload if isinstance(payload, dict) else {}
        access, refresh = data.get("access_token"), data.get("refresh_token")
        if not isinstance(access, str) or not access:
            raise ValueError("the token answer has no access_token")
        self._access = access
        self._access_expires = _expiry(data, _ACCESS_EXPIRES_AT, _ACCESS_EXPIRES_IN, access, now)
        if isinstance(refresh, str) and refresh:
            self._refresh = refresh
            self._refresh_expires = _expiry(
                data, _REFRESH_EXPIRES_AT, _REFRESH_EXPIRES_IN, refresh, now
            )

    def unauthorized(self, request: httpx.Request) -> bool:
        if request.headers.get("authorization") == f"Bearer {self._access}":
            self._access = None  # expired early or revoked: refresh (or log in) once
        return True  # else another request has renewed it already: repeat with that

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._access}", "accept": JSON}

    # ------------------------------------------------------------------ requests

    def send_request(self, item: OutboxItem) -> httpx.Request:
        if item.template is None:
            raise ValueError("futuresms sends only templates; this message has a body")
        payload: dict[str, Any] = {
            "phone_number": item.to,
            "template_id": item.template.id,
            "sender_id": item.sender or self._sender,
            # Our message id (msg_ + ULID, 30 characters): identical on every attempt.
            "client_order_id": item.message_id,
        }
        var = next(iter(item.template.variables.values()), None)  # at most one
        if var is not None:
            payload["var"] = var
        if self._dlr_address is not None:
            payload["dlr_address"] = self._dlr_address
        return httpx.Request("POST", self._sends_url, json=payload, headers=self._headers())

    def lookup_request(self, item: OutboxItem) -> httpx.Request | None:
        # Orders are found only by order_id, which a message in doubt never has (had we
        # read it, it would not be in doubt): a resend under the same client_order_id
        # settles it instead (CONFLICT: FutureSMS has it).
        return None

    def order_request(self, order_id: str) -> httpx.Request:
        """``GET /api/v1/sms/orders/{order_id}``: the order's state, for a message whose
        order id is known (read the answer with ``read_found``)."""
        url = f"{self._orders_url}/{quote(order_id, safe='')}"
        return httpx.Request("GET", url, headers=self._headers())

    # ------------------------------------------------------------------ answers

    def read_send(self, response: httpx.Response) -> SendResult:
        # Idempotency page: a repeated client_order_id gets error_code CONFLICT (its HTTP
        # status is not stated; 409 is likely): the first request owns the order, so the
        # message is handed over, and its report will name the order id.
        if 400 <= response.status_code < 500 and _error(response).error_code == CONFLICT:
            return Accepted(None, CONFLICT)
        return super().read_send(response)

    def read_accepted(self, response: httpx.Response) -> Accepted:
        order = Order.model_validate(Envelope.model_validate_json(response.content).data)
        return Accepted(order.order_id, order.order_status or "pending")

    def read_rejection(self, response: httpx.Response) -> Rejected:
        error = _error(response)
        text = error.details or error.message or http_reason(response)
        if error.reason:
            text = f"{error.reason}: {text}"
        return Rejected(error.error_code, text[:MAX_ERROR_MESSAGE])

    def read_found(self, item: OutboxItem, response: httpx.Response) -> Accepted | None:
        order = Order.model_validate(Envelope.model_validate_json(response.content).data)
        if order.client_order_id not in (None, item.message_id):
            return None
        return Accepted(order.order_id, order.message_status or order.order_status or "pending")


# --------------------------------------------------------------------------- the type


class FutureSmsProvider(Provider[FutureSmsConfig]):
    kind: ClassVar[str] = "futuresms"
    error_label: ClassVar[str] = "FutureSMS"
    error_explanations: ClassVar[Mapping[str, str]] = ERROR_EXPLANATIONS
    media_types: ClassVar[frozenset[str]] = frozenset({JSON})
    send_content: ClassVar[frozenset[Content]] = frozenset({"template"})

    def verify(self, request: InboundRequest, now: float) -> None:
        # FutureSMS signs nothing: the edge has checked url_token and allowed_ips.
        return None

    def parse(self, request: InboundRequest) -> list[Report]:
        return [parse_dlr(request.body)]

    def answer(self, outcome: Outcome) -> Answer:
        """200 ``{"status": "ok"}`` as the Delivery Reports page asks, with the
        contract's counts beside it."""
        counts = {
            "received": outcome.received,
            "applied": outcome.applied,
            "duplicates": outcome.duplicates,
            "superseded": outcome.superseded,
        }
        return Answer(200, json.dumps(_ANSWER_OK | counts).encode(), JSON)

    def resign(
        self, request: WebhookRequest, *, public_base_url: str, now: float
    ) -> WebhookRequest:
        """Unchanged: nothing is signed (``replay --resign`` restores the url_token)."""
        return request

    def check_template(self, template: Template) -> None:
        low, high = TEMPLATE_ID_LENGTH
        if not low <= len(template.id) <= high:
            raise ValueError(f"id: a FutureSMS template_id has {low}-{high} characters")
        if template.language is not None:
            raise ValueError("language: FutureSMS templates have no language; leave it out")
        if len(template.variables) > 1:
            raise ValueError(
                "variables: a FutureSMS template has at most one placeholder ({{var}}),"
                " so give at most one value"
            )
        for value in template.variables.values():
            if len(value) > MAX_VAR:
                raise ValueError(
                    f"variables: FutureSMS's var is at most {MAX_VAR} characters;"
                    f" this one has {len(value)}"
                )

    def sender(self, public_base_url: str | None = None) -> Sender | None:
        if not self.config.sends:
            return None
        return FutureSmsSender(self.config, self._dlr_address(public_base_url))

    def _dlr_address(self, public_base_url: str | None) -> str | None:
        """Our webhook URL with the url_token, for each order's ``dlr_address``; None
        (FutureSMS then uses the account's merchant-level address) without a public
        base URL, or when it is longer than FutureSMS takes."""
        address = self.report_url(public_base_url)
        if address is None:
            log.warning(
                "provider %r: no public_base_url, so sends name no dlr_address; FutureSMS"
                " posts reports to the account's merchant-level DLR address",
                self.name,
            )
        elif len(address) > MAX_DLR_ADDRESS:
            log.warning(
                "provider %r: the report URL has %d characters, more than FutureSMS's"
                " %d for dlr_address, so sends name none; FutureSMS posts reports to the"
                " account's merchant-level DLR address",
                self.name,
                len(address),
                MAX_DLR_ADDRESS,
            )
            address = None
        return address


__all__ = [
    "CONFLICT",
    "STATUS_MAP",
    "FutureSmsConfig",
    "FutureSmsDlr",
    "FutureSmsProvider",
    "FutureSmsSender",
    "parse_dlr",
    "read_time",
]
