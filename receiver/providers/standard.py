"""Type ``standard``: our own JSON report, signed with Standard Webhooks v1.

Payload (contract section 3)::

    {"type": "message.status",
     "data": {"message_id": "prov-123", "status": "delivered",
              "occurred_at": "2026-11-23T09:59:58Z", "to": "+639171234567",
              "error_code": null, "error_message": null}}

``data`` may be a list (a batch); item i's event id is ``{webhook-id}:{i}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from receiver.core.phone import E164_PATTERN
from receiver.core.reports import Report
from receiver.core.signatures import standard_webhooks
from receiver.core.signatures.freshness import parse_timestamp
from receiver.core.status import parse_status
from receiver.errors import CannotResign, PayloadInvalid
from receiver.providers.base import (
    InboundRequest,
    Provider,
    ProviderConfig,
    WebhookRequest,
    payload_invalid,
)

ShortText = Annotated[str, Field(min_length=1, max_length=255)]


class StandardConfig(ProviderConfig):
    type: Literal["standard"]

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
    status: Annotated[str, Field(min_length=1, max_length=64)]
    occurred_at: AwareDatetime | None = None
    to: Annotated[str, Field(pattern=E164_PATTERN)] | None = None
    error_code: Annotated[str, Field(max_length=64)] | None = None
    error_message: Annotated[str, Field(max_length=1000)] | None = None
    client_reference: Annotated[str, Field(min_length=1, max_length=128)] | None = None


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


class StandardProvider(Provider):
    kind: ClassVar[str] = "standard"
    config_model: ClassVar[type[ProviderConfig]] = StandardConfig
    media_types: ClassVar[frozenset[str]] = frozenset({"application/json"})

    def __init__(self, name: str, config: ProviderConfig) -> None:
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
            sent_at = datetime.fromtimestamp(parse_timestamp(raw_timestamp), UTC)
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
                occurred_at=(item.occurred_at or sent_at).astimezone(UTC),
                to=item.to,
                error_code=item.error_code,
                error_message=item.error_message,
                client_reference=item.client_reference,
            )
            for item_id, item in items
        ]

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


__all__ = ["StandardConfig", "StandardPayload", "StandardProvider"]
