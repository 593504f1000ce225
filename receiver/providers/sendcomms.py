"""Type ``sendcomms``: SendComms SMS webhooks, and sending through its SMS API.

Followed (2026-12): the docs site (https://docs.sendcomms.com, source
``angeloasante/sendcoms-docs`` at 214e2a1): "Rate Limits & Idempotency"
(``/docs/rate-limits``), "Send SMS" (``/docs/api/sms``), "Error Handling"
(``/docs/errors``), "Webhooks" (``/docs/api/email/webhooks``); and the API server
itself (``angeloasante/sendcomms-main`` at 74c3dee): ``app/api/v1/sms/send/route.ts``,
``lib/idempotency/index.ts``, ``lib/rate-limit/*``, ``lib/api-helpers.ts``
``sendWebhook``. docs/providers/sendcomms.md has the details and every choice.

Reports: SendComms POSTs JSON ``{"event", "data": {...}, "transaction_id",
"timestamp"}`` signed with ``X-SendComms-Signature`` (``receiver.core.signatures.
sendcomms``). The SMS events are ``sms.sent`` and ``sms.failed`` (sent by the send
route at submission) and ``sms.delivered`` (documented; no producer in the server
yet). One webhook URL per account gets every service's events, so email, data and
airtime events are acknowledged and skipped. No event id is sent: it is derived from
(``transaction_id``, ``event``), as each event happens once per transaction.

Sending: ``POST {api_base_url}/api/v1/sms/send`` with ``Authorization: Bearer``, JSON
``{"to", "message", "from", "reference", "idempotency_key"}``; reference and key are our
message id. The answer's ``data.transaction_id`` is the provider message id. SendComms
answers a repeated key for 24 h with the original answer (``X-Idempotent-Replay:
true``, ``_idempotent.replayed``): the same transaction, read like the first answer.
There is no SMS lookup with an API key, so a send in doubt is settled by sending again
under the same key (``idempotency_lifetime``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator

from receiver.core.phone import e164
from receiver.core.reports import Report, derived_event_id
from receiver.core.signatures import sendcomms as sendcomms_signature
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
    Unknown,
    WebhookRequest,
    http_reason,
    payload_invalid,
    resign_headers,
)
from receiver.providers.fields import MAX_ERROR_MESSAGE, Word, clipped_error
from receiver.records import OutboxItem

API_BASE_URL = "https://api.sendcomms.com"
SEND_PATH = "/api/v1/sms/send"
IDEMPOTENCY_LIFETIME = timedelta(hours=24)
"""How long SendComms caches a successful answer under its ``idempotency_key``."""
MIN_SECRET_LENGTH = 16

# The event -> ours. Other sms.* words are kept with status None; other services'
# events (email.*, data.*, airtime.*) are not SMS reports at all and are skipped.
STATUS_MAP: dict[str, Status] = {
    "sms.sent": Status.SENT,
    "sms.delivered": Status.DELIVERED,
    # Sent at submission when the upstream carrier refused the message: the provider
    # failed to send it (a carrier's non-delivery would be undelivered, same rank).
    "sms.failed": Status.FAILED,
}

# Our plain words for the console (``explain_error``). The webhooks carry no error code
# (``data.error`` is text), so a code is the ``error.code`` of a refused send (400), from
# SendComms' "Error Handling" page (https://docs.sendcomms.com/docs/errors).
ERROR_EXPLANATIONS: dict[str, str] = {
    # The client errors a send can be refused with (400).
    "INVALID_PHONE_NUMBER": "the 'to' number is not in E.164 form",
    "MESSAGE_TOO_LONG": "the message is over 1600 characters (10 segments)",
    "MISSING_FIELD": "the send lacked a required field ('to' or 'message')",
    "SMS_SEND_FAILED": "the sender id is not verified for the account, or the recipient opted out",
}
SMS_EVENT_PREFIX = "sms."

Text = Annotated[str, Field(max_length=MAX_ERROR_MESSAGE * 4)]
TransactionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]

_TIMESTAMP = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]{1,9}))?"
    r"(?P<offset>Z|[+-][0-9]{2}:[0-9]{2})?"
)


def parse_sendcomms_time(raw: str) -> datetime:
    """A webhook ``timestamp`` as aware UTC: JavaScript's ``toISOString()``
    (``2026-01-01T10:30:00.123Z``, what the server sends) or the docs' example without
    the fraction; one without an offset is UTC. ValueError otherwise."""
    match = _TIMESTAMP.fullmatch(raw.strip())
    if match is None:
        raise ValueError("must be an ISO 8601 date-time such as 2026-01-01T10:30:00.000Z")
    text = match["date"]
    if match["fraction"]:
        text += "." + match["fraction"][:6].ljust(6, "0")
    offset = match["offset"] or "Z"
    text += "+00:00" if offset == "Z" else offset
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("is not a valid date and time") from None
    return as_utc(moment)  # ValueError outside the storable range


class SendCommsConfig(ProviderConfig):
    """``secrets``: the webhook signing secret(s) as written (the HMAC key is the
    string's bytes); ``api_key`` sends, through ``api_base_url`` (default
    ``https://api.sendcomms.com``, the host without ``/api/v1``)."""

    type: Literal["sendcomms"]
    send_requires: ClassVar[tuple[str, ...]] = ("api_key",)

    @field_validator("secrets")
    @classmethod
    def _webhook_secrets(cls, secrets: list[str]) -> list[str]:
        for index, secret in enumerate(secrets):
            if secret != secret.strip():
                # The key is the string as written: a pasted newline fails every signature.
                raise ValueError(f"secrets[{index}]: must not start or end with whitespace")
            if len(secret) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"secrets[{index}]: must be the webhook secret (at least"
                    f" {MIN_SECRET_LENGTH} characters), not a placeholder"
                )
        return secrets

    @field_validator("api_base_url")
    @classmethod
    def _host_without_version(cls, url: HttpUrl | None) -> HttpUrl | None:
        if url is not None and "/api/v1" in (url.path or ""):
            raise ValueError(
                "is the host without /api/v1 (e.g. https://api.sendcomms.com):"
                f" sends go to {{api_base_url}}{SEND_PATH}"
            )
        return url


class SendCommsData(BaseModel):
    """The ``data`` of an SMS event; only what we read (the rest stays in the raw body).

    The send route's ``sms.sent``/``sms.failed`` carry ``transaction_id``, ``type``
    ("sms"), ``status``, ``to``, ``segments``, ``message_id`` (the upstream carrier's
    id), ``country`` (a name), ``region``, ``cost`` and, on failure, ``error`` (text);
    keys whose value is undefined are left out (``JSON.stringify``)."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)

    status: Word | None = None
    to: Annotated[str, Field(max_length=64)] | None = None
    error: Text | None = None
    reference: Annotated[str, Field(max_length=255)] | None = None


class SendCommsWebhook(BaseModel):
    """One webhook body: ``{"event", "data", "transaction_id", "timestamp"}``."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)

    event: Word
    transaction_id: TransactionId
    timestamp: Annotated[str, Field(max_length=64)] | None = None
    data: SendCommsData = Field(default_factory=SendCommsData)
    reference: Annotated[str, Field(max_length=255)] | None = None


class SentSms(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    transaction_id: TransactionId
    status: Word = "sent"


class SendAnswer(BaseModel):
    """A 200 answer to a send, first or replayed (then ``_idempotent`` is added)."""

    model_config = ConfigDict(extra="ignore")

    success: Literal[True]
    data: SentSms


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    code: Word | None = None
    message: str | None = None
    retry_after: int | None = Field(default=None, ge=0, alias="retryAfter")


class ErrorAnswer(BaseModel):
    """``{"success": false, "error": {"code", "message", "details"?, ...}}``."""

    model_config = ConfigDict(extra="ignore")

    error: ErrorDetail = Field(default_factory=ErrorDetail)


def _error_of(response: httpx.Response) -> ErrorDetail:
    try:
        return ErrorAnswer.model_validate_json(response.content).error
    except ValueError:
        return ErrorDetail()


def _described(response: httpx.Response, error: ErrorDetail) -> str:
    """``HTTP 409 Conflict REQUEST_IN_PROGRESS: Request is being processed...``"""
    words = [http_reason(response)]
    if error.code:
        words.append(error.code + (":" if error.message else ""))
    if error.message:
        words.append(error.message[:MAX_ERROR_MESSAGE])
    return " ".join(words)


class SendCommsSender(Sender):
    """``POST /api/v1/sms/send`` with our message id as ``idempotency_key``."""

    idempotency_lifetime: ClassVar[timedelta | None] = IDEMPOTENCY_LIFETIME

    def __init__(self, config: SendCommsConfig) -> None:
        base = str(config.api_base_url or API_BASE_URL).rstrip("/")
        self._send_url = base + SEND_PATH
        self._headers = {"authorization": f"Bearer {config.api_key}", "accept": JSON}
        self._sender = config.sender

    def send_request(self, item: OutboxItem) -> httpx.Request:
        payload = {
            "to": item.to,
            "message": item.body,
            "reference": item.message_id,
            # The same on every attempt: a repeat within 24 h is answered with the
            # original transaction, so a resend after a lost answer sends nothing new.
            "idempotency_key": item.message_id,
        }
        if sender := item.sender or self._sender:
            payload["from"] = sender  # else SendComms' default sender, "Sendcomms"
        return httpx.Request("POST", self._send_url, json=payload, headers=self._headers)

    def lookup_request(self, item: OutboxItem) -> httpx.Request | None:
        # No SMS status endpoint takes an API key (/api/v1/sms/logs needs a dashboard
        # session, and nothing finds a message by reference or key).
        return None

    def read_found(self, item: OutboxItem, response: httpx.Response) -> Accepted | None:
        raise NotImplementedError("SendComms has no SMS lookup: lookup_request is None")

    def read_accepted(self, response: httpx.Response) -> Accepted:
        # A replay (X-Idempotent-Replay: true, "_idempotent": {"replayed": true}) wraps
        # the original data: the same transaction_id, read the same way.
        data = SendAnswer.model_validate_json(response.content).data
        return Accepted(data.transaction_id, data.status)

    def read_rejection(self, response: httpx.Response) -> Rejected:
        error = _error_of(response)
        text = error.message or http_reason(response)
        return Rejected(error.code, text[:MAX_ERROR_MESSAGE])

    def read_send(self, response: httpx.Response) -> SendResult:
        status = response.status_code
        if status == 409:
            # Errors page: 409 "Request already in progress (idempotency)"; the server
            # answers REQUEST_IN_PROGRESS after waiting 1 s for the first request under
            # our key. Never a rejection: that request may still succeed. Ask again.
            error = _error_of(response)
            return Unknown(_described(response, error), response.headers.get("retry-after"))
        if status == 429:
            # Rate-limits page: "Use the Retry-After header"; the body's retryAfter (the
            # same seconds) stands in for it if a proxy dropped the header.
            error = _error_of(response)
            retry_after = response.headers.get("retry-after")
            if retry_after is None and error.retry_after is not None:
                retry_after = str(error.retry_after)
            return Deferred(_described(response, error), retry_after)
        if status == 402:
            # INSUFFICIENT_BALANCE is about the account, not the message: topping it up
            # lets the message go, so it waits (until give_up_seconds) rather than fail.
            return Deferred(_described(response, _error_of(response)))
        return super().read_send(response)


class SendCommsProvider(Provider[SendCommsConfig]):
    kind: ClassVar[str] = "sendcomms"
    error_label: ClassVar[str] = "SendComms"
    error_explanations: ClassVar[Mapping[str, str]] = ERROR_EXPLANATIONS
    media_types: ClassVar[frozenset[str]] = frozenset({JSON})

    def verify(self, request: InboundRequest, now: float) -> None:
        # No timestamp header is signed (``now`` unused); see the signature module.
        sendcomms_signature.verify(request.body, request.headers, self.config.secrets)

    def parse(self, request: InboundRequest) -> list[Report]:
        try:
            webhook = SendCommsWebhook.model_validate_json(request.body)
        except ValidationError as exc:
            raise payload_invalid(exc) from None
        if not webhook.event.lower().startswith(SMS_EVENT_PREFIX):
            return []  # an email, data or airtime event: the account has one webhook URL
        occurred_at = request.received_at
        if webhook.timestamp is not None:
            try:
                occurred_at = parse_sendcomms_time(webhook.timestamp)
            except ValueError as exc:
                raise PayloadInvalid("timestamp", str(exc)) from None
        data = webhook.data
        error = clipped_error(data.error)
        return [
            Report(
                # The timestamp is when the webhook was built, not when the status
                # changed: a redelivery could carry a new one, so it is not in the id.
                event_id=derived_event_id(webhook.transaction_id, webhook.event),
                provider_message_id=webhook.transaction_id,
                status=STATUS_MAP.get(webhook.event.lower()),
                provider_status=webhook.event,
                occurred_at=occurred_at,
                to=e164(data.to),
                error_message=error,
                message_reference=data.reference or webhook.reference,
            )
        ]

    def resign(
        self, request: WebhookRequest, *, public_base_url: str, now: float
    ) -> WebhookRequest:
        """X-SendComms-Signature over the same body with the first secret. The body's
        ``timestamp`` is content, so it stays as it was (nothing checks its age)."""
        if self.config.insecure_no_signature:
            return request
        headers = resign_headers(request.headers, sendcomms_signature.SIGNATURE_HEADER)
        headers[sendcomms_signature.SIGNATURE_HEADER] = sendcomms_signature.signature(
            self.config.secrets[0], request.body
        )
        return replace(request, headers=headers)

    def sender(self, public_base_url: str | None = None) -> Sender | None:
        return SendCommsSender(self.config) if self.config.sends else None


__all__ = [
    "API_BASE_URL",
    "SEND_PATH",
    "STATUS_MAP",
    "SendCommsConfig",
    "SendCommsProvider",
    "SendCommsSender",
    "SendCommsWebhook",
    "parse_sendcomms_time",
]
