"""Type ``txtly``: Txtly (docs.txtly.com.au), an Australian email and SMS API.

Followed (2026-12; the stored copies of the pages named here, docs/providers/txtly.md
lists what each one says and what none of them does):

- Sending: "SMS Messages" (https://docs.txtly.com.au/api-reference/sms):
  ``POST {api_base_url}/v1/sms`` with JSON ``to`` (E.164), ``body``, ``senderId`` (the
  UUID of an active sender identity), ``Authorization: Bearer tx_...``
  ("Authentication") and the optional ``Idempotency-Key`` header: "If a message with
  the same key exists, the existing message is returned". The answer is the message:
  ``id`` (a UUID, the provider message id we record) and ``status`` (``sent``).
- Idempotency ("Idempotency", seed page 001): a key of at most 256 characters is kept
  24 hours; after that "a new request with the same key will be treated as a new
  operation". So ``idempotency_lifetime`` is 24 h: a send in doubt is settled by sending
  again under the same key (our message id) only until an hour before then; after that
  the worker holds the message for a person (``receiver outbox``), never resends it.
- No lookup: no page documents a way to find an SMS by anything we know (our key, our
  reference); the resend under the key is the lookup.
- Errors ("Errors"): ``{status_code, name, message[, errors]}``; ``name`` is the error
  code we keep. The base ``Sender.read_send`` reads the statuses as Txtly uses them:
  400 ``validation_error`` and 422 ``unprocessable_entity`` reject the message; 401
  ``authentication_error``, 403 ``authorization_error``, 404 and 429
  ``rate_limit_exceeded`` wait and retry (a 429's ``Retry-After`` pauses the
  provider); 409 ``conflict`` (documented only as "conflicts with existing data") and
  500 ``internal_error`` leave the message in doubt.
- Rate limits ("Rate Limits"): every answer carries ``X-RateLimit-Limit``,
  ``-Remaining`` and ``-Reset`` (a Unix time); the worker holds every request to the
  provider while a window is used up (``receiver.outbound.retry``).
- Reports: Txtly's webhooks ("Webhook Events", https://docs.txtly.com.au/webhooks-guide)
  carry email, contact and broadcast events; **no SMS delivery event is documented**.
  We accept the documented envelope ``{"id": "evt_...", "type", "created_at", "data"}``
  for any ``sms.*`` type, should Txtly add them, and acknowledge every other type with
  no report. ``id`` is the event id ("Use for deduplication"). The ``data`` fields are
  our reading by analogy (docs/providers/txtly.md): ``sms_id`` (as email events carry
  ``email_id``) or ``id`` (the SMS resource), ``status`` (else the word after ``sms.``),
  ``to``, ``error_code``, ``error_message``.
- Authentication of reports: with ``secrets`` (the webhook's ``whsec_`` signing secret)
  the ``txtly-signature`` header is verified (``receiver.core.signatures.txtly``, a
  scheme Txtly does not spell out: unverified, strict). Without ``secrets``, the
  ``url_token`` and/or ``allowed_ips`` that the webhook edge checks guard the reports;
  with none of the three, every report is refused, and the provider only sends.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from receiver.core.phone import e164
from receiver.core.reports import Report
from receiver.core.signatures import txtly as txtly_signature
from receiver.core.status import Status
from receiver.core.timestamps import parse_iso
from receiver.errors import PayloadInvalid, SignatureError
from receiver.providers.base import (
    JSON,
    SEND_KEYS,
    Accepted,
    InboundRequest,
    Provider,
    ProviderConfig,
    Rejected,
    Sender,
    WebhookRequest,
    http_reason,
    payload_invalid,
    resign_headers,
)
from receiver.providers.fields import MAX_ERROR_MESSAGE, Word, clipped_error
from receiver.records import OutboxItem

API_BASE_URL = "https://api.txtly.com.au"
SEND_PATH = "/v1/sms"
IDEMPOTENCY_LIFETIME = timedelta(hours=24)
SMS_EVENT_PREFIX = "sms."

STATUS_MAP: dict[str, Status] = {
    # ``sent`` is the status of the send answer: handed to AWS SNS for the carriers.
    "queued": Status.QUEUED,
    "pending": Status.QUEUED,
    "sent": Status.SENT,
    "delivery_delayed": Status.BUFFERED,  # as email.delivery_delayed: "will continue retrying"
    "delivered": Status.DELIVERED,
    "bounced": Status.UNDELIVERED,  # as email.bounced
    "undelivered": Status.UNDELIVERED,
    "expired": Status.EXPIRED,
    "rejected": Status.REJECTED,
    "failed": Status.FAILED,
}
"""Txtly's word -> ours. Txtly publishes no SMS event vocabulary: these are its send
answer's ``sent``, its email events' words and the common SMS words. Any other word is
kept in the timeline with status None and changes nothing."""

# Our plain words for the console (``explain_error``): the ``name`` of an API error
# answer, when a send is refused ("Errors", https://docs.txtly.com.au/errors). Txtly
# publishes no delivery error codes.
ERROR_EXPLANATIONS: dict[str, str] = {
    "validation_error": "Txtly refused the request: a field is missing or invalid",
    "authentication_error": "Txtly refused the API key: missing or invalid",
    "authorization_error": "the API key may not do this (its permission level or domain)",
    "not_found": "Txtly does not know the resource the request named",
    "conflict": "the request conflicts with data Txtly already holds",
    "unprocessable_entity": "Txtly could not act on it: well-formed, but the data is invalid",
    "rate_limit_exceeded": "too many requests for the plan's rate limit",
    "internal_error": "an internal error at Txtly",
}

_API_KEY = re.compile(r"tx_[A-Za-z0-9_]{8,}")  # "API keys start with the tx_ prefix"
ShortText = Annotated[str, Field(min_length=1, max_length=255)]


class TxtlyConfig(ProviderConfig):
    """``[providers.NAME] type = "txtly"``. ``api_key`` (``tx_live_...``) and ``sender``
    (the sender identity's UUID) send; ``secrets`` (optional) are the webhook's
    ``whsec_`` signing secrets; without them ``url_token``/``allowed_ips`` guard the
    reports. ``api_base_url`` is the host, without ``/v1``."""

    type: Literal["txtly"]
    send_requires: ClassVar[tuple[str, ...]] = ("api_key", "sender")
    signed_reports: ClassVar[bool] = False  # signed when secrets are given, not otherwise

    @field_validator("secrets")
    @classmethod
    def _signing_secrets(cls, secrets: list[str]) -> list[str]:
        for index, secret in enumerate(secrets):
            try:
                txtly_signature.check_secret(secret)
            except ValueError as exc:
                raise ValueError(f"secrets[{index}]: {exc}") from None
        return secrets

    @field_validator("api_key")
    @classmethod
    def _txtly_key(cls, key: str | None) -> str | None:
        if key is not None and not _API_KEY.fullmatch(key):
            raise ValueError("must be a Txtly API key (tx_live_... or tx_test_...)")
        return key

    @field_validator("sender")
    @classmethod
    def _sender_identity(cls, sender: str | None) -> str | None:
        if sender is None:
            return None
        try:
            uuid.UUID(sender)
        except ValueError:
            raise ValueError(
                "must be the id (a UUID) of a Txtly SMS sender identity, as GET"
                " /v1/sms/senders lists it, not its name or sender id"
            ) from None
        return sender

    @field_validator("api_base_url")
    @classmethod
    def _host_only(cls, url: Any) -> Any:
        if url is not None and str(url).rstrip("/").endswith("/v1"):
            raise ValueError(f"is the host without /v1 (sends go to api_base_url{SEND_PATH})")
        return url

    # Overrides ProviderConfig's validator of the same name: a Txtly provider that sends
    # needs nothing for reports (README "Beyond the contract"); it then refuses every report
    # (``TxtlyProvider.verify``) until secrets, url_token or allowed_ips are set.
    @model_validator(mode="after")
    def _secrets_or_explicitly_insecure(self) -> TxtlyConfig:
        guarded = self.secrets or self.url_token or self.allowed_ips
        sending = any(getattr(self, key) is not None for key in SEND_KEYS)  # if half: named
        if guarded or self.insecure_no_signature or sending:
            return self
        raise ValueError(
            "secrets: set the webhook's signing secret (whsec_...), or url_token and/or"
            " allowed_ips, to take reports; or api_key and sender to send"
            " (or insecure_no_signature = true to accept reports from anyone)"
        )


# --------------------------------------------------------------------------- reports


class TxtlyEvent(BaseModel):
    """The envelope of every Txtly webhook delivery."""

    model_config = ConfigDict(extra="ignore")

    id: ShortText
    type: Word
    created_at: ShortText
    data: dict[str, Any]


class TxtlySmsData(BaseModel):
    """The ``data`` of an ``sms.*`` event, as we read it (Txtly documents none)."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    sms_id: ShortText | None = None
    id: ShortText | None = None
    status: Word | None = None
    to: Annotated[str, Field(max_length=64)] | None = None
    error_code: Annotated[str, Field(max_length=64)] | None = None
    error_message: str | None = None

    @model_validator(mode="after")
    def _names_the_message(self) -> TxtlySmsData:
        if self.sms_id is None and self.id is None:
            raise ValueError("sms_id: is required (or id)")
        return self

    @property
    def message_id(self) -> str:
        message_id = self.sms_id or self.id
        assert message_id is not None  # checked above
        return message_id


def read_timestamp(value: str) -> datetime:
    """An ISO 8601 time as Txtly writes them (``2026-03-21T14:30:00Z``), in UTC; one
    without a zone is UTC (every Txtly example is). ValueError if it is not one, or
    falls outside the range we store."""
    return parse_iso(value)


# --------------------------------------------------------------------------- sending


class TxtlySms(BaseModel):
    """An SMS as the API answers it; only what we read."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: ShortText
    status: Word = "sent"


class TxtlyError(BaseModel):
    """An error answer: ``{status_code, name, message[, errors]}``."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    name: Word | None = None
    message: str | None = None
    errors: dict[str, list[str] | str] | None = None

    def text(self) -> str | None:
        """``message``, then each field's complaints (``to: ...; body: ...``)."""
        details = [
            f"{field}: {'; '.join(problem) if isinstance(problem, list) else problem}"
            for field, problem in (self.errors or {}).items()
        ]
        parts = [part for part in (self.message, ", ".join(details)) if part]
        return " - ".join(parts) or None


def idempotency_key(item: OutboxItem) -> str:
    """Our message id, the same on every attempt: 30 characters (``msg_`` + ULID), well
    within Txtly's 256."""
    return item.message_id


class TxtlySender(Sender):
    """``POST /v1/sms`` under an ``Idempotency-Key`` that is our message id."""

    idempotency_lifetime: ClassVar[timedelta | None] = IDEMPOTENCY_LIFETIME

    def __init__(self, config: TxtlyConfig) -> None:
        base = str(config.api_base_url or API_BASE_URL).rstrip("/")
        self._url = base + SEND_PATH
        self._headers = {"authorization": f"Bearer {config.api_key}", "accept": JSON}
        self._sender = config.sender

    def send_request(self, item: OutboxItem) -> httpx.Request:
        payload = {"to": item.to, "body": item.body, "senderId": item.sender or self._sender}
        headers = {**self._headers, "idempotency-key": idempotency_key(item)}
        return httpx.Request("POST", self._url, json=payload, headers=headers)

    def lookup_request(self, item: OutboxItem) -> None:
        return None  # no documented way to find an SMS by our key or reference

    def read_accepted(self, response: httpx.Response) -> Accepted:
        sms = TxtlySms.model_validate_json(response.content)
        return Accepted(sms.id, sms.status)

    def read_rejection(self, response: httpx.Response) -> Rejected:
        try:
            error = TxtlyError.model_validate_json(response.content)
        except ValueError:
            error = TxtlyError()
        text = error.text() or http_reason(response)
        return Rejected(error.name, text[:MAX_ERROR_MESSAGE])

    def read_found(self, item: OutboxItem, response: httpx.Response) -> Accepted | None:
        raise NotImplementedError("txtly has no lookup")


class TxtlyProvider(Provider[TxtlyConfig]):
    kind: ClassVar[str] = "txtly"
    error_label: ClassVar[str] = "Txtly"
    error_explanations: ClassVar[Mapping[str, str]] = ERROR_EXPLANATIONS
    media_types: ClassVar[frozenset[str]] = frozenset({JSON})

    def check_sender(self, sender: str) -> None:
        try:
            uuid.UUID(sender)
        except ValueError:
            raise ValueError("must be the UUID of a verified Txtly sender identity") from None

    def verify(self, request: InboundRequest, now: float) -> None:
        # No timestamp is signed (``now`` unused): a replay carries an event id already
        # processed, so it changes nothing.
        config = self.config
        if config.secrets:
            txtly_signature.verify(request.body, request.headers, config.secrets)
        elif not (config.url_token or config.allowed_ips):
            raise SignatureError(
                f"provider {self.name!r} has no signing secret, url_token or allowed_ips"
                " to check reports with, so it takes none",
                code="SIGNATURE_MISSING",
            )

    def parse(self, request: InboundRequest) -> list[Report]:
        try:
            event = TxtlyEvent.model_validate_json(request.body)
        except ValidationError as exc:
            raise payload_invalid(exc) from None
        try:
            occurred_at = read_timestamp(event.created_at)
        except ValueError:
            raise PayloadInvalid("created_at", "is not an ISO 8601 time") from None
        if not event.type.startswith(SMS_EVENT_PREFIX):
            return []  # email, contact and broadcast events: acknowledged, nothing to file
        try:
            data = TxtlySmsData.model_validate(event.data)
        except ValidationError as exc:
            raise payload_invalid(exc, prefix="data") from None
        word = data.status or event.type.removeprefix(SMS_EVENT_PREFIX)
        error_message = clipped_error(data.error_message)
        return [
            Report(
                event_id=event.id,
                provider_message_id=data.message_id,
                status=STATUS_MAP.get(word.lower()),
                provider_status=word,
                occurred_at=occurred_at,
                to=e164(data.to),
                error_code=data.error_code,
                error_message=error_message,
            )
        ]

    def sender(self, public_base_url: str | None = None) -> Sender | None:
        return TxtlySender(self.config) if self.config.sends else None

    def resign(
        self, request: WebhookRequest, *, public_base_url: str, now: float
    ) -> WebhookRequest:
        """``txtly-signature`` made afresh with the first secret (only the body is
        signed, so a new URL or time changes nothing else). Without secrets the
        request goes as it is (``replay --resign`` restores any ``url_token``)."""
        if self.config.insecure_no_signature or not self.config.secrets:
            return request
        headers = resign_headers(request.headers, txtly_signature.HEADER)
        headers[txtly_signature.HEADER] = txtly_signature.signature(
            self.config.secrets[0], request.body
        )
        return replace(request, headers=headers)


__all__ = [
    "IDEMPOTENCY_LIFETIME",
    "STATUS_MAP",
    "TxtlyConfig",
    "TxtlyEvent",
    "TxtlyProvider",
    "TxtlySender",
    "TxtlySmsData",
    "read_timestamp",
]
