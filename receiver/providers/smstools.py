"""Type ``smstools``: Smstools (smstools.be / smstools.com / sms-tools.it), the SMS Gateway
API at ``api.smsgatewayapi.com`` and its ``delivery_report`` webhooks.

Followed (2026-12; docs/providers/smstools.md has the details and every choice):

- "Webhooks" (https://www.smstools.be/en/webhooks, the example payload on
  https://www.sms-tools.it/it/webhooks): Smstools POSTs a JSON **array** of events
  ``{"webhook_id", "webhook_type", "username", "timezone", "message": {...}}``; a
  ``delivery_report`` event's ``message`` has ``messageid``, ``datetime``,
  ``datetime_utc``, ``receiver``, ``reference`` (ours), ``delivery_code``,
  ``delivery_status``, ``delivery_status_datetime``, ``delivery_code_detail`` and
  ``delivery_code_detail_description``. "Sometimes there can be 2 webhooks: first a
  'submitted' status and later a 'delivered' or 'not delivered' status." Other event
  types (``read_report``, ``inbox_message``, contact and account events) give no report.
- The delivery codes on that page: 0 SUBMITTED, 1 DELIVERED, 2 NOT DELIVERED,
  3 BUFFERED, 4 REJECTED, 5 REJECTED (extended info in the detail code), 9 UNKNOWN.
- No signature is documented: reports are guarded by ``url_token`` and/or
  ``allowed_ips`` at the webhook edge (README "Beyond the contract"), so ``verify`` has nothing
  left to check and ``secrets`` are refused.
- "Send Message" (https://smstools.com/en/sms-gateway-api/send_message):
  ``POST https://api.smsgatewayapi.com/v1/message/send`` with the headers
  ``X-Client-Id`` and ``X-Client-Secret``, JSON ``{"message", "to", "sender",
  "reference"}``, answer ``{"messageid": "..."}``; "Handling errors"
  (https://www.sms-tools.co.uk/en/sms-gateway-api/handling_errors): a 4xx with
  ``{"error": "104", "errorMsg": "Invalid credentials"}``.

Decisions:

- The event id is derived from (messageid, delivery_code, delivery_code_detail,
  delivery_status_datetime), not taken from ``webhook_id``: the page does not say
  whether ``webhook_id`` names the event or the configured webhook (the API manages
  webhooks by an id too), and the derived id is right either way.
- ``occurred_at`` is ``delivery_status_datetime`` read in the event's ``timezone``
  (an IANA name, with ``zoneinfo``), else ``datetime_utc`` (the message's time), else
  the arrival time (``status_time``).
- ``error_code`` is ``delivery_code_detail`` when given, else the delivery code itself
  for a code that is not progress (2, 4, 5, 9, or one we do not know).
- The API takes no idempotency key and offers no lookup by our reference (its message
  history lists no reference and no message id), so a send in doubt is held for a
  person (``receiver outbox``), never resent blindly. The reference we send is our
  message id, which every report echoes back: a held message is completed by its
  first report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from receiver.core.phone import e164
from receiver.core.reports import Report, derived_event_id
from receiver.core.status import Status
from receiver.core.timestamps import as_utc
from receiver.errors import PayloadInvalid
from receiver.providers.base import (
    JSON,
    Accepted,
    Deferred,
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
from receiver.records import OutboxItem

API_BASE_URL = "https://api.smsgatewayapi.com"
SEND_PATH = "/v1/message/send"
DELIVERY_REPORT = "delivery_report"

# Smstools' delivery code -> ours ("Delivery report codes", smstools.be/en/webhooks).
# Another code is kept in the timeline with status None and changes nothing.
STATUS_MAP: dict[str, Status] = {
    "0": Status.SENT,  # SUBMITTED: "delivered with the operator", no report from it yet
    "1": Status.DELIVERED,
    "2": Status.UNDELIVERED,  # NOT DELIVERED: out of range, network problems, abroad
    "3": Status.BUFFERED,  # "delivered with the operator but not ... with the receiver"
    "4": Status.REJECTED,  # "refused by the operator"
    "5": Status.REJECTED,  # the reason is in the detail code
    "9": Status.UNKNOWN,  # "no delivery reports available for this message"
}
PROGRESS_CODES = frozenset({"0", "1", "3"})
"""Delivery codes that are no error: kept as ``error_code`` only with a detail code."""

RETRY_ERRORS: dict[str, str] = {
    # API errors ("Handling errors") about our account or Smstools, not the message:
    # fixing the config or waiting lets it go out, as for a 401 or a 429.
    "104": "invalid credentials (client_id / api_key)",
    "105": "Smstools has server issues and asks to try again later",
    "108": "not enough credits on the account",
    "116": "access disabled after a long time without use",
    "200": "this address is not allowed to use the API",
}

# Our plain words, for the console (``explain_error``) and for a refused send's answer
# without a message: a report's ``delivery_code_detail`` (10 and up), else its delivery
# code (0-9) when that is no progress ("Delivery report codes" and "Delivery report
# detail codes", https://www.smstools.be/en/webhooks: only the detail codes 10 and 11
# could be read; the report's own ``delivery_code_detail_description`` is stored with the
# others), or the ``error`` of a refused send (102-140, "Handling errors",
# https://www.sms-tools.co.uk/en/sms-gateway-api/handling_errors).
ERROR_EXPLANATIONS: dict[str, str] = {
    # Delivery codes, when no detail code says more.
    "0": "submitted to the operator, which sent no delivery report",
    "1": "delivered",
    "2": "not delivered: out of the network's range, a network problem, or abroad",
    "3": "buffered: the operator has it but could not reach the handset yet",
    "4": "refused by the operator",
    "5": "refused by the operator (the detail code says why)",
    "9": "no delivery report is available for this message",
    # Delivery report detail codes.
    "10": "the receiver's number is invalid or unknown",
    "11": "the receiver is temporarily out of the network's range",
    # Errors of a refused send.
    "102": "no message text was given",
    "103": "the phone number is missing or invalid",
    "106": "the destination number is missing or invalid",
    "109": "the sender name is empty",
    "110": "a sender number must start with +",
    "111": "invalid sender: at most 11 characters, or 14 digits",
    "112": "the message text is required",
    "114": "the request was empty",
    "118": "the message is too long for Smstools",
    "121": "the scheduled date is invalid or in the past",
    "131": "the number is on the account's opt-out list: the person asked for no messages",
    "137": "the 24-hour window is closed: send a template message instead",
    "138": "Smstools cannot send it because of a misconfiguration; contact their support",
    "139": "parameters are missing or invalid",
    "140": "the WhatsApp Business account is invalid or missing",
}

_MESSAGE_ID = r"^[A-Za-z0-9_-]{1,64}$"
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?")
_ZERO_DATE = "0000-00-00"
# Sender ids as Smstools takes them ("Send Message"): a number of at most 14 characters,
# or a name of at most 11 without special characters.
_SENDER = re.compile(r"\+?[0-9]{1,14}|[A-Za-z0-9 ]{1,11}")


def _absent_is_none(value: Any) -> Any:
    # Smstools fills absent fields with "" (and a PHP backend may write a zero date).
    if isinstance(value, str) and (not value.strip() or value.startswith(_ZERO_DATE)):
        return None
    return value


class SmstoolsConfig(ProviderConfig):
    """``client_id`` and ``api_key`` (the API client secret): Smstools' "API
    authentication" keys, both needed to send. Reports are not signed: ``url_token``
    and/or ``allowed_ips`` guard them, and ``secrets`` are refused."""

    type: Literal["smstools"]
    # SMPP delivery receipts often come hours late (the SMSC retries a busy handset).
    report_timeout_default: ClassVar[float] = 7200.0
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,128}$")] | None = None
    send_requires: ClassVar[tuple[str, ...]] = ("client_id", "api_key")
    signed_reports: ClassVar[bool] = False

    secrets_refused: ClassVar[str | None] = (
        "Smstools signs no reports, so no secret can check them: set url_token"
        " (and allowed_ips if you know Smstools' addresses) instead"
    )

    @field_validator("sender")
    @classmethod
    def _smstools_sender(cls, sender: str | None) -> str | None:
        if sender is not None and not _SENDER.fullmatch(sender):
            raise ValueError(
                "Smstools takes a number of at most 14 digits or a name of at most 11"
                " letters, digits and spaces"
            )
        return sender

    @model_validator(mode="after")
    def _both_credentials(self) -> SmstoolsConfig:
        if self.client_id is not None and not self.api_key:
            raise ValueError(
                "api_key: is required to send (client_id is set): the API client secret"
            )
        return self


Text = Annotated[str, Field(max_length=MAX_ERROR_MESSAGE)]


class SmstoolsEvent(BaseModel):
    """One event of a webhook request: what every type has."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    webhook_type: Word
    timezone: Annotated[str, Field(max_length=64)] | None = None
    message: dict[str, Any] | None = None

    _blank = field_validator("timezone", mode="before")(_absent_is_none)


class SmstoolsDeliveryReport(BaseModel):
    """The ``message`` of a ``delivery_report`` event; only what we read."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    messageid: Annotated[str, Field(pattern=_MESSAGE_ID)]
    delivery_code: Annotated[str, Field(pattern=r"^[0-9]{1,4}$")]
    delivery_status: Word | None = None
    delivery_status_datetime: Word | None = None
    datetime_utc: Word | None = None
    receiver: Annotated[str, Field(max_length=64)] | None = None
    reference: Annotated[str, Field(max_length=255)] | None = None
    delivery_code_detail: Annotated[str, Field(max_length=32)] | None = None
    delivery_code_detail_description: Text | None = None

    _blank = field_validator(
        "delivery_status",
        "delivery_status_datetime",
        "datetime_utc",
        "receiver",
        "reference",
        "delivery_code_detail",
        "delivery_code_detail_description",
        mode="before",
    )(_absent_is_none)

    @field_validator("delivery_status_datetime", "datetime_utc")
    @classmethod
    def _a_time(cls, value: str | None) -> str | None:
        if value is not None and not _TIME.fullmatch(value):
            raise ValueError("must look like 2026-01-01 00:00:00")
        return value


def parse_smstools_time(raw: str, zone: tzinfo) -> datetime:
    """A Smstools time (``YYYY-MM-DD HH:MM:SS``, naive) read in ``zone``, as aware UTC.

    A wall time that occurs twice (the hour the clocks go back) is taken as the first
    (``fold=0``); ValueError for one that is no date at all."""
    try:
        naive = datetime.fromisoformat(raw.replace(" ", "T", 1))
    except ValueError:
        raise ValueError("is not a valid date and time") from None
    return as_utc(naive.replace(tzinfo=zone))  # ValueError outside the storable range


def _zone(name: str | None, field: str) -> tzinfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PayloadInvalid(field, "is not an IANA time zone name") from None


def status_time(
    report: SmstoolsDeliveryReport, zone: tzinfo | None, received_at: datetime, where: str
) -> datetime:
    """When the status happened: ``delivery_status_datetime`` in the account's time
    zone, else ``datetime_utc`` (the message's own time), else the arrival time."""
    try:
        if report.delivery_status_datetime is not None and zone is not None:
            return parse_smstools_time(report.delivery_status_datetime, zone)
    except ValueError as exc:
        raise PayloadInvalid(f"{where}.delivery_status_datetime", str(exc)) from None
    try:
        if report.datetime_utc is not None:
            return parse_smstools_time(report.datetime_utc, UTC)
    except ValueError as exc:
        raise PayloadInvalid(f"{where}.datetime_utc", str(exc)) from None
    return received_at


_BODY: TypeAdapter[list[Any] | dict[str, Any]] = TypeAdapter(list[Any] | dict[str, Any])


def _events(body: bytes) -> list[Any]:
    try:
        payload = _BODY.validate_json(body)
    except ValidationError:
        raise PayloadInvalid("body", "must be a JSON array of Smstools webhook events") from None
    # The page shows an array; a lone event object is read as an array of one.
    return payload if isinstance(payload, list) else [payload]


class SmstoolsProvider(Provider[SmstoolsConfig]):
    kind: ClassVar[str] = "smstools"
    error_label: ClassVar[str] = "Smstools"
    error_explanations: ClassVar[Mapping[str, str]] = ERROR_EXPLANATIONS
    media_types: ClassVar[frozenset[str]] = frozenset({JSON})

    def verify(self, request: InboundRequest, now: float) -> None:
        # Smstools signs nothing: the edge already checked url_token and allowed_ips.
        return None

    def parse(self, request: InboundRequest) -> list[Report]:
        reports = []
        for index, item in enumerate(_events(request.body)):
            where = f"[{index}]"
            try:
                event = SmstoolsEvent.model_validate(item)
            except ValidationError as exc:
                raise payload_invalid(exc, prefix=where, whole=where) from None
            if event.webhook_type != DELIVERY_REPORT:
                continue  # read reports, inbound messages, account events: no status
            if event.message is None:
                raise PayloadInvalid(f"{where}.message", "is required")
            try:
                report = SmstoolsDeliveryReport.model_validate(event.message)
            except ValidationError as exc:
                raise payload_invalid(exc, prefix=f"{where}.message") from None
            zone = _zone(event.timezone, f"{where}.timezone")
            occurred_at = status_time(report, zone, request.received_at, f"{where}.message")
            reports.append(_report(report, occurred_at))
        return reports

    def resign(
        self, request: WebhookRequest, *, public_base_url: str, now: float
    ) -> WebhookRequest:
        """Unchanged: nothing is signed (``replay --resign`` restores the url_token)."""
        return request

    def sender(self, public_base_url: str | None = None) -> Sender | None:
        if not self.config.sends:
            return None
        return SmstoolsSender(self.config)


def _report(report: SmstoolsDeliveryReport, occurred_at: datetime) -> Report:
    code = report.delivery_code.lstrip("0") or "0"
    detail = report.delivery_code_detail
    error_code = detail if detail is not None else (None if code in PROGRESS_CODES else code)
    return Report(
        event_id=derived_event_id(report.messageid, code, detail, report.delivery_status_datetime),
        provider_message_id=report.messageid,
        status=STATUS_MAP.get(code),
        provider_status=report.delivery_status or code,
        occurred_at=occurred_at,
        to=e164(report.receiver),
        error_code=error_code,
        error_message=report.delivery_code_detail_description,
        client_reference=report.reference,
        message_reference=report.reference,
    )


# --------------------------------------------------------------------------- sending


class SmstoolsAnswer(BaseModel):
    """A 2xx answer to a send: ``messageid`` (one receiver), or ``messageids``."""

    model_config = ConfigDict(extra="ignore")

    messageid: Annotated[str, Field(pattern=_MESSAGE_ID)] | None = None
    messageids: list[Annotated[str, Field(pattern=_MESSAGE_ID)]] = Field(default_factory=list)

    def only_id(self) -> str:
        """The one message id; ValueError when the answer names none or several."""
        ids = [self.messageid] if self.messageid else self.messageids
        if len(ids) != 1:
            raise ValueError(f"expected one message id, got {len(ids)}")
        return ids[0]


class SmstoolsError(BaseModel):
    """An error answer: ``{"error": "104", "errorMsg": "Invalid credentials"}``, or
    ``{"error": "error parsing json"}`` (a text instead of a code)."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    error: Annotated[str, Field(max_length=MAX_ERROR_MESSAGE)] | None = None
    errorMsg: Annotated[str, Field(max_length=MAX_ERROR_MESSAGE)] | None = None

    @property
    def code(self) -> str | None:
        return self.error.strip() if self.error and self.error.strip().isdigit() else None

    @property
    def text(self) -> str | None:
        if self.errorMsg:
            return self.errorMsg
        if self.error and self.code is None:
            return self.error
        return ERROR_EXPLANATIONS.get(self.code or "")


def _error_of(response: httpx.Response) -> SmstoolsError:
    try:
        return SmstoolsError.model_validate_json(response.content)
    except ValueError:
        return SmstoolsError()


class SmstoolsSender(Sender):
    """``POST /v1/message/send`` with the API client id and secret in headers.

    ``idempotency_lifetime`` stays None and ``lookup_request`` None: the API has
    neither, so a send in doubt is held for a person."""

    def __init__(self, config: SmstoolsConfig) -> None:
        base = str(config.api_base_url or API_BASE_URL).rstrip("/")
        self._send_url = base + SEND_PATH
        assert config.client_id is not None and config.api_key is not None  # send_requires
        self._headers = {
            "x-client-id": config.client_id,
            "x-client-secret": config.api_key,
            "accept": JSON,
        }
        self._sender = config.sender

    def send_request(self, item: OutboxItem) -> httpx.Request:
        fields = {
            "message": item.body,
            "to": item.to.removeprefix("+"),  # "international format (eg: 324xx, 316xx)"
            "sender": item.sender or self._sender,
            "reference": item.message_id,  # 30 characters; Smstools keeps up to 75 (255)
        }
        payload = {key: value for key, value in fields.items() if value is not None}
        return httpx.Request("POST", self._send_url, json=payload, headers=self._headers)

    def lookup_request(self, item: OutboxItem) -> httpx.Request | None:
        return None

    def read_send(self, response: httpx.Response) -> SendResult:
        """As the base reads HTTP, except that a 4xx naming one of ``RETRY_ERRORS`` is
        about our account or Smstools' servers (whatever its status), not the message."""
        if 400 <= response.status_code < 500:
            error = _error_of(response)
            if error.code in RETRY_ERRORS:
                reason = f"{http_reason(response)}: Smstools error {error.code}"
                reason += f" ({error.text or RETRY_ERRORS[error.code]})"
                return Deferred(reason, response.headers.get("retry-after"))
        return super().read_send(response)

    def read_accepted(self, response: httpx.Response) -> Accepted:
        answer = SmstoolsAnswer.model_validate_json(response.content)
        return Accepted(answer.only_id(), "accepted")

    def read_rejection(self, response: httpx.Response) -> Rejected:
        error = _error_of(response)
        text = error.text or http_reason(response)
        return Rejected(error.code, text[:MAX_ERROR_MESSAGE])

    def read_found(self, item: OutboxItem, response: httpx.Response) -> Accepted | None:
        raise NotImplementedError("the Smstools API cannot look a message up")


__all__ = [
    "API_BASE_URL",
    "RETRY_ERRORS",
    "STATUS_MAP",
    "SmstoolsConfig",
    "SmstoolsDeliveryReport",
    "SmstoolsProvider",
    "SmstoolsSender",
    "parse_smstools_time",
    "status_time",
]
