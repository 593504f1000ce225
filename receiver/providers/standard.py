"""Type ``standard``: our own JSON report, signed with Standard Webhooks v1.

Payload (README "HTTP API")::

    {"type": "message.status",
     "data": {"message_id": "prov-123", "status": "delivered",
              "occurred_at": "2026-11-23T09:59:58Z", "to": "+639171234567",
              "error_code": null, "error_message": null}}

``data`` may be a list (a batch); item i's event id is ``{webhook-id}:{i}``.

Sending (README "Sending"), when ``api_base_url`` and ``api_key`` are set:
``POST {api_base_url}/messages`` with JSON ``{"to", "body", "sender", "reference"}``,
``Authorization: Bearer {api_key}`` and ``Idempotency-Key``, both the reference and the
key being our message id; a 2xx answer's ``id`` is the provider's message id.
``GET {api_base_url}/messages?reference=...`` answers ``{"items": [{"id", "reference",
"status"}]}``, empty when the provider never received the message.

Lookups of overdue messages (README "Missing reports"): ``GET {api_base_url}/messages/{id}``
answers ``{"id", "reference", "status", "error_code", "error_message", "occurred_at"}``
(404: the provider does not know it); while the provider's id is not known, the lookup by
reference above, whose items may carry the same fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Annotated, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from receiver.core.network import NETWORK_PATTERN
from receiver.core.phone import E164_PATTERN
from receiver.core.reports import Report
from receiver.core.signatures import standard_webhooks
from receiver.core.signatures.freshness import parse_timestamp
from receiver.core.status import parse_status
from receiver.core.timestamps import AwareUtcDatetime, from_unix
from receiver.errors import CannotResign, PayloadInvalid
from receiver.providers.base import (
    Accepted,
    InboundRequest,
    Provider,
    ProviderConfig,
    Rejected,
    Sender,
    Tracked,
    WebhookRequest,
    http_reason,
    lookup_report,
    payload_invalid,
)
from receiver.providers.fields import MAX_ERROR_MESSAGE, Word
from receiver.records import OutboxItem

ShortText = Annotated[str, Field(min_length=1, max_length=255)]


class StandardConfig(ProviderConfig):
    type: Literal["standard"]
    send_requires: ClassVar[tuple[str, ...]] = ("api_base_url", "api_key")

    @field_validator("secrets")
    @classmethod
    def _whsec_secrets(cls, secrets: list[str]) -> list[str]:
        for index, secret in enumerate(secrets):
            try:
                standard_webhooks.decode_secret(secret)
            except ValueError as exc:
                raise ValueError(f"secrets[{index}]: {exc}") from None
        return secrets


class StandardReport(BaseModel):
    """One delivery report in a ``standard`` payload."""

    model_config = ConfigDict(extra="ignore")

    message_id: ShortText
    status: Word
    occurred_at: AwareUtcDatetime | None = None
    to: Annotated[str, Field(pattern=E164_PATTERN)] | None = None
    error_code: Annotated[str, Field(max_length=64)] | None = None
    error_message: Annotated[str, Field(max_length=MAX_ERROR_MESSAGE)] | None = None
    client_reference: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    network: Annotated[str, Field(pattern=NETWORK_PATTERN)] | None = None
    """The mobile network as ``"MCC-MNC"`` (README "Delivery health")."""


class StandardPayload(BaseModel):
    """The body of a ``standard`` webhook: one report or a batch of them."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["message.status"]
    data: Annotated[
        Annotated[StandardReport, Tag("report")]
        | Annotated[list[StandardReport], Field(min_length=1, max_length=1000), Tag("batch")],
        # Pick the branch by shape, so errors name the real field, not the other branch.
        Discriminator(lambda value: "batch" if isinstance(value, list) else "report"),
    ]


class StandardMessage(BaseModel):
    """The provider's message: its answer to a send, or an item of a lookup (which
    may also say the error and when the status was reached, README "Missing reports")."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: ShortText
    reference: str | None = None
    status: ShortText | None = None
    error_code: Annotated[str, Field(max_length=64)] | None = None
    error_message: Annotated[str, Field(max_length=MAX_ERROR_MESSAGE)] | None = None
    occurred_at: AwareUtcDatetime | None = None


class Lookup(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[StandardMessage]


class SendError(BaseModel):
    """A 4xx answer's body: ``code`` and ``message``, or problem+json's ``detail``."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    code: str | None = None
    message: str | None = None
    detail: str | None = None


class StandardSender(Sender):
    """The send API of README "Sending"."""

    def __init__(self, config: StandardConfig) -> None:
        self._messages_url = str(config.api_base_url).rstrip("/") + "/messages"
        self._headers = {"authorization": f"Bearer {config.api_key}", "accept": "application/json"}
        self._sender = config.sender

    def send_request(self, item: OutboxItem) -> httpx.Request:
        payload = {
            "to": item.to,
            "body": item.body,
            "sender": item.sender or self._sender,
            "reference": item.message_id,
        }
        headers = {**self._headers, "idempotency-key": item.message_id}
        return httpx.Request("POST", self._messages_url, json=payload, headers=headers)

    def lookup_request(self, item: OutboxItem) -> httpx.Request:
        params = {"reference": item.message_id}
        return httpx.Request("GET", self._messages_url, params=params, headers=self._headers)

    def read_accepted(self, response: httpx.Response) -> Accepted:
        return _accepted(StandardMessage.model_validate_json(response.content))

    def read_rejection(self, response: httpx.Response) -> Rejected:
        try:
            error = SendError.model_validate_json(response.content)
        except ValueError:
            error = SendError()
        text = error.message or error.detail or http_reason(response)
        return Rejected(error.code, text[:MAX_ERROR_MESSAGE])

    def read_found(self, item: OutboxItem, response: httpx.Response) -> Accepted | None:
        found = _ours(Lookup.model_validate_json(response.content).items, item.message_id)
        return None if found is None else _accepted(found)

    looks_up_status: ClassVar[bool] = True

    def status_request(self, message: Tracked) -> httpx.Request:
        """README "Missing reports": ``GET /messages/{id}``, or by our reference ("Sending")
        while the provider's id is not known."""
        if message.provider_message_id is None:
            params = {"reference": message.id}
            return httpx.Request("GET", self._messages_url, params=params, headers=self._headers)
        url = f"{self._messages_url}/{quote(message.provider_message_id, safe='')}"
        return httpx.Request("GET", url, headers=self._headers)

    def read_status(
        self, message: Tracked, response: httpx.Response, now: datetime
    ) -> Report | None:
        if message.provider_message_id is None:
            found = _ours(Lookup.model_validate_json(response.content).items, message.id)
        else:
            found = StandardMessage.model_validate_json(response.content)
        if found is None or found.status is None:
            return None
        return lookup_report(
            message,
            found.id,
            found.status,
            parse_status(found.status),
            occurred_at=found.occurred_at or now,
            error_code=found.error_code,
            error_message=found.error_message,
        )


def _ours(items: list[StandardMessage], reference: str) -> StandardMessage | None:
    """The lookup's item for our ``reference`` (an item without one is taken as ours:
    the provider filtered by it)."""
    return next((item for item in items if item.reference in (None, reference)), None)


def _accepted(message: StandardMessage) -> Accepted:
    return Accepted(message.id, message.status or "accepted")


class StandardProvider(Provider[StandardConfig]):
    kind: ClassVar[str] = "standard"
    media_types: ClassVar[frozenset[str]] = frozenset({"application/json"})
    # The spec sets no retry schedule; Svix, its reference sender, retries for about 27 h 35 min
    # (docs.svix.com/retries), and other senders publish none.
    redelivery_horizon_days: ClassVar[int] = 3

    def __init__(self, name: str, config: StandardConfig) -> None:
        super().__init__(name, config)
        self._keys = [standard_webhooks.decode_secret(s) for s in config.secrets]

    def verify(self, request: InboundRequest, now: float) -> None:
        standard_webhooks.verify(
            request.body,
            request.headers,
            self._keys,
            now=now,
            tolerance_seconds=self.config.tolerance_seconds,
        )

    def parse(self, request: InboundRequest) -> list[Report]:
        event_id = request.headers.get("webhook-id", "")
        raw_timestamp = request.headers.get("webhook-timestamp", "")
        if not event_id:
            raise PayloadInvalid("webhook-id", "header is required")
        try:
            sent_at = from_unix(parse_timestamp(raw_timestamp))
        except ValueError as exc:
            raise PayloadInvalid("webhook-timestamp", str(exc)) from None
        try:
            payload = StandardPayload.model_validate_json(request.body)
        except ValidationError as exc:
            raise payload_invalid(exc, hidden=("report", "batch")) from None
        if isinstance(payload.data, list):
            items = [(f"{event_id}:{i}", item) for i, item in enumerate(payload.data)]
        else:
            items = [(event_id, payload.data)]
        return [
            Report(
                event_id=item_id,
                provider_message_id=item.message_id,
                status=parse_status(item.status),
                provider_status=item.status,
                occurred_at=item.occurred_at or sent_at,
                to=item.to,
                error_code=item.error_code,
                error_message=item.error_message,
                client_reference=item.client_reference,
                network=item.network,
            )
            for item_id, item in items
        ]

    def sender(self, public_base_url: str | None = None) -> Sender | None:
        return StandardSender(self.config) if self.config.sends else None

    def resign(
        self, request: WebhookRequest, *, public_base_url: str, now: float
    ) -> WebhookRequest:
        """A fresh ``webhook-timestamp`` and signature; same ``webhook-id`` and body."""
        if self.config.insecure_no_signature:
            return request
        headers = _carried_headers(request.headers)
        msg_id = headers.get("webhook-id", "")
        if not msg_id:
            raise CannotResign("the captured request has no webhook-id header to sign")
        timestamp = int(now)
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = standard_webhooks.signature(
            self._keys[0], msg_id, timestamp, request.body
        )
        return replace(request, headers=headers)


_HOP_BY_HOP = frozenset({"host", "content-length", "connection", "transfer-encoding"})


def _carried_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A capture's headers, lower-cased, without hop-by-hop and length headers."""
    return {k.lower(): v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}


__all__ = ["StandardConfig", "StandardPayload", "StandardProvider", "StandardSender"]
