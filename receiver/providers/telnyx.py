"""Type ``telnyx``: Telnyx Messaging API v2 webhooks, signed with Ed25519.

Followed: Telnyx "Receiving Webhooks for Messaging"
(https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks), the
``deliveryUpdate`` callback reference
(https://developers.telnyx.com/api-reference/callbacks/delivery-update), "Webhook
Fundamentals" (events can be concurrent, duplicated, delayed or out of order), and the
``telnyx`` 4.189 SDK's models (``types/outbound_message.py``,
``types/outbound_message_payload.py``) and verifier (``lib/webhook_verification.py``).

A delivery update is one JSON event::

    {"data": {"record_type": "event", "event_type": "message.finalized",
              "id": "<event uuid>", "occurred_at": "2019-12-09T21:32:14.148+00:00",
              "payload": {"id": "<message uuid>",
                          "to": [{"phone_number": "+18665550001", "status": "delivered",
                                  "carrier": "T-MOBILE USA, INC.", "line_type": "Wireless"}],
                          "errors": [{"code": "40008", "title": "...", "detail": "..."}],
                          ...}},
     "meta": {"attempt": 1, "delivered_to": "https://..."}}

Decisions (docs/providers/telnyx.md):

- Status events are ``message.sent``, ``message.finalized`` and ``message.read``
  (the SDK's ``OutboundMessage.event_type``). Any other event (``message.received``
  for inbound texts, voice events on a shared URL, ...) is acknowledged with 200 and
  no report, so Telnyx stops sending it; its envelope must still be valid.
- Each recipient (``payload.to``, then ``payload.cc``) is one report of the message
  ``payload.id``. Its event id is ``data.id`` when the event lists one recipient, else
  ``data.id:{phone_number}`` (or ``data.id:{index}`` for an entry without a number).
- ``occurred_at`` is ``data.occurred_at`` (UTC; a naive stamp is taken as UTC, Telnyx
  stamps are UTC), else the time we received the request.
- ``payload.errors[0]`` gives ``error_code`` and ``error_message`` (title: detail) of
  every report of the event: Telnyx puts errors on the message, not on a recipient.

Lookups of overdue messages (README "Missing reports"), when ``api_key`` (an API v2 key) is
set: "Retrieve a message" (https://developers.telnyx.com/api-reference/messages/
retrieve-a-message): ``GET https://api.telnyx.com/v2/messages/{id}``, ``Authorization:
Bearer {api_key}``, answers ``{"data": {...}}`` with the payload above plus
``completed_at``/``updated_at``; only messages of the last 10 days.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from receiver.core.phone import e164
from receiver.core.reports import Report
from receiver.core.signatures import telnyx_ed25519
from receiver.core.status import Status
from receiver.core.timestamps import UtcDatetime
from receiver.errors import CannotResign
from receiver.providers.base import (
    JSON,
    ApiClient,
    InboundRequest,
    Provider,
    ProviderConfig,
    Tracked,
    WebhookRequest,
    lookup_report,
    payload_invalid,
)
from receiver.providers.fields import Word, clipped_error

STATUS_EVENTS: frozenset[str] = frozenset({"message.sent", "message.finalized", "message.read"})
"""``data.event_type`` values that carry delivery statuses; others give no report."""

STATUS_MAP: dict[str, Status] = {
    # Per-recipient ``payload.to[].status`` words (SDK 4.189 ``To.status``, plus the
    # scheduled-message words of its ``MessageCancelScheduledResponse``).
    "scheduled": Status.QUEUED,
    "queued": Status.QUEUED,
    "sending": Status.SENT,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.DELIVERED,
    "delivery_failed": Status.UNDELIVERED,
    "sending_failed": Status.FAILED,
    "cancelled": Status.FAILED,
    "expired": Status.EXPIRED,
    "delivery_unconfirmed": Status.UNKNOWN,
}
"""Telnyx's word -> ours; any other word gives ``status=None`` and is kept."""

# Our plain words for the console (``explain_error``): ``payload.errors[0].code``, the
# delivery errors 40xxx (https://developers.telnyx.com/docs/messaging/messages/error-codes).
ERROR_EXPLANATIONS: dict[str, str] = {
    "40001": "not routable: a landline or a number that cannot get SMS",
    "40002": "blocked as spam by the carrier (temporary)",
    "40003": "blocked as spam: the sending number is permanently blocked by the carrier",
    "40004": "rejected by the destination carrier for an unknown reason",
    "40005": "expired before it could be delivered",
    "40006": "the recipient's carrier is unavailable",
    "40008": "undeliverable: the carrier did not accept the message",
    "40009": "the carrier rejected the message body",
}


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class TelnyxConfig(ProviderConfig):
    """``[providers.NAME] type = "telnyx"``: Telnyx has no shared secret, so
    ``public_key`` (the account's base64 Ed25519 public key, or a list of them during
    a key change) replaces ``secrets``."""

    type: Literal["telnyx"]
    lookup_requires: ClassVar[tuple[str, ...] | None] = ("api_key",)
    public_key: Annotated[list[str], BeforeValidator(_one_or_many)] | None = None

    @field_validator("public_key")
    @classmethod
    def _ed25519_public_keys(cls, keys: list[str] | None) -> list[str] | None:
        if keys is None:
            return None
        if not keys:
            raise ValueError("must name at least one key")
        for index, key in enumerate(keys):
            try:
                telnyx_ed25519.load_public_key(key)
            except ValueError as exc:
                raise ValueError(f"[{index}] {exc}" if len(keys) > 1 else str(exc)) from None
        return [key.strip() for key in keys]

    # Overrides ProviderConfig's validator of the same name: Telnyx needs a public
    # key, not ``secrets`` (and a ``secrets`` key would be silently unused).
    @model_validator(mode="after")
    def _secrets_or_explicitly_insecure(self) -> TelnyxConfig:
        if self.secrets:
            raise ValueError(
                "secrets: telnyx signs with Ed25519 and has no shared secret; "
                "set public_key to the public key from the Telnyx portal instead"
            )
        if self.public_key is None and not self.insecure_no_signature:
            raise ValueError(
                "public_key: is required (the base64 public key from the Telnyx portal), "
                "or set insecure_no_signature = true to turn verification off"
            )
        return self


ShortText = Annotated[str, Field(min_length=1, max_length=255)]
API_BASE_URL = "https://api.telnyx.com"


class TelnyxRecipient(BaseModel):
    """One entry of ``payload.to`` (or ``payload.cc``)."""

    model_config = ConfigDict(extra="ignore")

    phone_number: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    status: Word


class TelnyxError(BaseModel):
    """One entry of ``payload.errors``; Telnyx codes are strings such as ``"40008"``."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    code: Annotated[str, Field(min_length=1, max_length=64)]
    title: str | None = None
    detail: str | None = None


class TelnyxMessage(BaseModel):
    """``data.payload`` of a status event: the message and its recipients."""

    model_config = ConfigDict(extra="ignore")

    id: ShortText
    to: Annotated[list[TelnyxRecipient], Field(min_length=1, max_length=1000)]
    cc: Annotated[list[TelnyxRecipient], Field(max_length=1000)] | None = None
    errors: list[TelnyxError] | None = None


class TelnyxEvent(BaseModel):
    """``data``: the event envelope; ``payload`` is read once the type is known."""

    model_config = ConfigDict(extra="ignore")

    event_type: Annotated[str, Field(min_length=1, max_length=128)]
    id: ShortText
    occurred_at: UtcDatetime | None = None
    payload: Any = None


class TelnyxBody(BaseModel):
    """The request body: ``{"data": {...}, "meta": {...}}`` (``meta`` is not needed)."""

    model_config = ConfigDict(extra="ignore")

    data: TelnyxEvent


def _error_fields(errors: list[TelnyxError] | None) -> tuple[str | None, str | None]:
    if not errors:
        return None, None
    first = errors[0]
    words = [part for part in (first.title, first.detail) if part]
    message = clipped_error(": ".join(words))
    return first.code, message


class TelnyxMessageRecord(TelnyxMessage):
    """The message as "Retrieve a message" answers it (``data``): the webhook's payload
    plus when it reached its state."""

    completed_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class TelnyxRetrieved(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: TelnyxMessageRecord


class TelnyxStatusLookup(ApiClient):
    """``GET /v2/messages/{id}`` with the API key as a bearer token (docs/providers/
    telnyx.md, "Lookups"). Telnyx keeps a message there for 10 days."""

    looks_up_status: ClassVar[bool] = True

    def __init__(self, config: TelnyxConfig) -> None:
        self._base = str(config.api_base_url or API_BASE_URL).rstrip("/")
        self._headers = {"authorization": f"Bearer {config.api_key}", "accept": JSON}

    def status_request(self, message: Tracked) -> httpx.Request | None:
        if message.provider_message_id is None:
            return None
        url = f"{self._base}/v2/messages/{quote(message.provider_message_id, safe='')}"
        return httpx.Request("GET", url, headers=self._headers)

    def read_status(self, message: Tracked, response: httpx.Response, now: datetime) -> Report:
        record = TelnyxRetrieved.model_validate_json(response.content).data
        recipients = record.to + (record.cc or [])
        ours = next((r for r in recipients if e164(r.phone_number) == message.to), recipients[0])
        error_code, error_message = _error_fields(record.errors)
        return lookup_report(
            message,
            record.id,
            ours.status,
            STATUS_MAP.get(ours.status),
            occurred_at=record.completed_at or record.updated_at or now,
            error_code=error_code,
            error_message=error_message,
        )


class TelnyxProvider(Provider[TelnyxConfig]):
    kind: ClassVar[str] = "telnyx"
    error_label: ClassVar[str] = "Telnyx"
    error_explanations: ClassVar[Mapping[str, str]] = ERROR_EXPLANATIONS
    media_types: ClassVar[frozenset[str]] = frozenset({JSON})

    def __init__(self, name: str, config: TelnyxConfig) -> None:
        super().__init__(name, config)
        self._keys: list[Ed25519PublicKey] = [
            telnyx_ed25519.load_public_key(key) for key in config.public_key or []
        ]

    def verify(self, request: InboundRequest, now: float) -> None:
        telnyx_ed25519.verify(
            request.body,
            request.headers,
            self._keys,
            now=now,
            tolerance_seconds=self.config.tolerance_seconds,
        )

    def parse(self, request: InboundRequest) -> list[Report]:
        try:
            event = TelnyxBody.model_validate_json(request.body).data
        except ValidationError as exc:
            raise payload_invalid(exc) from None
        if event.event_type not in STATUS_EVENTS:
            return []
        try:
            message = TelnyxMessage.model_validate(event.payload)
        except ValidationError as exc:
            raise payload_invalid(exc, prefix="data.payload") from None
        occurred_at = event.occurred_at or request.received_at
        error_code, error_message = _error_fields(message.errors)
        recipients = message.to + (message.cc or [])
        reports = []
        for index, recipient in enumerate(recipients):
            if len(recipients) == 1:
                event_id = event.id
            else:
                event_id = f"{event.id}:{recipient.phone_number or index}"
            reports.append(
                Report(
                    event_id=event_id,
                    provider_message_id=message.id,
                    status=STATUS_MAP.get(recipient.status),
                    provider_status=recipient.status,
                    occurred_at=occurred_at,
                    to=e164(recipient.phone_number),
                    error_code=error_code,
                    error_message=error_message,
                )
            )
        return reports

    def status_client(self) -> ApiClient | None:
        return TelnyxStatusLookup(self.config) if self.config.api_key else None

    def resign(
        self, request: WebhookRequest, *, public_base_url: str, now: float
    ) -> WebhookRequest:
        """Impossible: Telnyx signs with its Ed25519 private key; we hold the public key."""
        if self.config.insecure_no_signature:
            return request
        raise CannotResign(
            f"provider {self.name!r} (telnyx) cannot be re-signed: Telnyx signs with its "
            "Ed25519 private key and receiver holds only the public key; replay without "
            "--resign within tolerance_seconds of capture, or set insecure_no_signature"
        )


__all__ = [
    "STATUS_EVENTS",
    "STATUS_MAP",
    "TelnyxBody",
    "TelnyxConfig",
    "TelnyxMessage",
    "TelnyxProvider",
]
