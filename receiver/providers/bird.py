"""Type ``bird``: MessageBird (now Bird) SMS API status reports, signed with a JWT.

What MessageBird sends (SMS API, "Handle a status report"; Bird's "Receiving Delivery
Reports (DLRs)" and "I am missing my delivery reports" pages): for every message sent with
a ``reference``, each status change of each recipient is reported with a **GET** request
to the account's status report URL (or the message's ``reportUrl``), the report in the
query string::

    GET /webhooks/bird?id=e8077d803532c0b5937c639b60216938&reference=YourReference123
        &recipient=31612345678&status=delivered
        &statusDatetime=2016-05-03T08%3A58%3A10%2B00%3A00

plus, on current accounts, ``statusReason``, ``statusErrorCode``, ``price[amount]``,
``price[currency]``, ``mccmnc``, ``ported``, ``messageLength``, ``messagePartCount`` and
similar metadata, which we leave in the stored raw request. The same fields in a
``application/x-www-form-urlencoded`` POST body are accepted too (not documented by
MessageBird for SMS reports, but the signature scheme covers bodies).

Status words (the SMS API's recipient statuses): ``scheduled``, ``sent``, ``buffered``,
``delivered``, ``expired``, ``delivery_failed``; any other word is kept with status None.

Reports carry no event id: it is derived from (``id``, ``recipient``, ``status``,
``statusDatetime``), so a redelivery of the same report is recognised.

Authenticity: ``MessageBird-Signature-JWT`` (``receiver.core.signatures.messagebird_jwt``),
checked against the public URL (``public_base_url`` + raw path + raw query).

The newer Bird platform's Notifications API webhooks (``messagebird-signature`` +
``messagebird-request-timestamp`` HMAC headers, JSON channel events) are a different
format and are not handled by this type.

Lookups of overdue messages (README "Missing reports"), with ``api_key`` (a live access
key): the SMS API's "View a message" (https://developers.messagebird.com/api/sms-messaging/
#view-a-message): ``GET https://rest.messagebird.com/messages/{id}``, ``Authorization:
AccessKey {api_key}``, answers the Message object whose ``recipients.items`` give each
recipient's ``status``, ``statusDatetime``, ``statusReason`` and ``statusErrorCode``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Annotated, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from receiver.core.error_codes import GSM_MAP
from receiver.core.network import network_code
from receiver.core.phone import e164
from receiver.core.reports import Report, derived_event_id
from receiver.core.signatures import messagebird_jwt
from receiver.core.status import Status
from receiver.core.timestamps import AwareUtcDatetime, parse_rfc3339
from receiver.providers.base import (
    FORM,
    ApiClient,
    InboundRequest,
    Provider,
    ProviderConfig,
    Tracked,
    WebhookRequest,
    lookup_report,
    payload_invalid,
    resign_headers,
    single_values,
)
from receiver.providers.fields import MAX_ERROR_MESSAGE, Word

STATUS_MAP: dict[str, Status] = {
    "scheduled": Status.QUEUED,
    "sent": Status.SENT,
    "buffered": Status.BUFFERED,
    "delivered": Status.DELIVERED,
    "expired": Status.EXPIRED,
    "delivery_failed": Status.UNDELIVERED,
}
"""MessageBird's recipient status word -> ours; any other word maps to None."""

_PROGRESS: frozenset[Status] = frozenset(
    {Status.QUEUED, Status.SENT, Status.BUFFERED, Status.DELIVERED}
)
_FIELDS = frozenset(
    {"id", "recipient", "status", "statusDatetime", "statusReason", "statusErrorCode"}
)
# An unencoded "+" in "+00:00" arrives as a space once the query is decoded.
_SPACE_FOR_PLUS = re.compile(r"(T[0-9:.]+) ([0-9]{2}:[0-9]{2})$")


class BirdConfig(ProviderConfig):
    """``[providers.NAME] type = "bird"``: ``secrets`` are MessageBird signing keys."""

    type: Literal["bird"]
    lookup_requires: ClassVar[tuple[str, ...] | None] = ("api_key",)

    @field_validator("secrets")
    @classmethod
    def _signing_keys(cls, secrets: list[str]) -> list[str]:
        for index, secret in enumerate(secrets):
            try:
                messagebird_jwt.check_key(secret)
            except ValueError as exc:
                raise ValueError(f"secrets[{index}]: {exc}") from None
        return secrets


class BirdStatusReport(BaseModel):
    """One status report, from the query (or form) parameters MessageBird sends."""

    model_config = ConfigDict(extra="ignore")

    id: Annotated[str, Field(min_length=1, max_length=255)]
    recipient: Annotated[str, Field(pattern=r"^\+?[0-9]{1,20}$")]
    status: Word
    reference: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    status_datetime: AwareUtcDatetime | None = Field(default=None, alias="statusDatetime")
    status_reason: Annotated[str, Field(max_length=MAX_ERROR_MESSAGE)] | None = Field(
        default=None, alias="statusReason"
    )
    status_error_code: Annotated[str, Field(max_length=64)] | None = Field(
        default=None, alias="statusErrorCode"
    )

    @field_validator("status_reason", "status_error_code", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("status_datetime", mode="before")
    @classmethod
    def _rfc3339(cls, value: object) -> object:
        if not isinstance(value, str) or not value.strip():
            return None if isinstance(value, str) else value
        return parse_rfc3339(_SPACE_FOR_PLUS.sub(r"\1+\2", value.strip()))


API_BASE_URL = "https://rest.messagebird.com"


class BirdRecipient(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    recipient: Annotated[str, Field(min_length=1, max_length=64)]
    status: Word
    statusDatetime: AwareUtcDatetime | None = None
    statusReason: str | None = None
    statusErrorCode: Annotated[str, Field(max_length=64)] | None = None


class BirdRecipients(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[BirdRecipient] = []


class BirdMessage(BaseModel):
    """The Message object "View a message" answers; only what we read."""

    model_config = ConfigDict(extra="ignore")

    id: Annotated[str, Field(min_length=1, max_length=255)]
    recipients: BirdRecipients


class BirdStatusLookup(ApiClient):
    """``GET /messages/{id}`` with ``Authorization: AccessKey {api_key}``
    (docs/providers/bird.md, "Lookups")."""

    looks_up_status: ClassVar[bool] = True

    def __init__(self, config: BirdConfig) -> None:
        self._messages_url = str(config.api_base_url or API_BASE_URL).rstrip("/") + "/messages"
        self._headers = {
            "authorization": f"AccessKey {config.api_key}",
            "accept": "application/json",
        }

    def status_request(self, message: Tracked) -> httpx.Request | None:
        if message.provider_message_id is None:
            return None
        url = f"{self._messages_url}/{quote(message.provider_message_id, safe='')}"
        return httpx.Request("GET", url, headers=self._headers)

    def read_status(
        self, message: Tracked, response: httpx.Response, now: datetime
    ) -> Report | None:
        found = BirdMessage.model_validate_json(response.content)
        recipients = found.recipients.items
        ours = next((r for r in recipients if e164(r.recipient) == message.to), None)
        ours = ours or (recipients[0] if recipients else None)
        if ours is None:
            return None
        return lookup_report(
            message,
            found.id,
            ours.status,
            STATUS_MAP.get(ours.status),
            occurred_at=ours.statusDatetime or now,
            error_code=ours.statusErrorCode,
            error_message=ours.statusReason,
        )


class BirdProvider(Provider[BirdConfig]):
    kind: ClassVar[str] = "bird"
    error_label: ClassVar[str] = "MessageBird"
    error_explanations: ClassVar[Mapping[str, str]] = GSM_MAP
    media_types: ClassVar[frozenset[str]] = frozenset({FORM})
    methods: ClassVar[frozenset[str]] = frozenset({"GET", "POST"})
    # Bird retries a failed notification for 8 hours (docs.bird.com/api/notifications-api/retries).
    redelivery_horizon_days: ClassVar[int] = 1

    def verify(self, request: InboundRequest, now: float) -> None:
        messagebird_jwt.verify(
            request.headers.get(messagebird_jwt.HEADER, ""),
            url=request.url,
            body=request.body,
            keys=self.config.secrets,
            now=now,
            tolerance_seconds=self.config.tolerance_seconds,
        )

    def parse(self, request: InboundRequest) -> list[Report]:
        values = single_values(request.params(), _FIELDS)
        try:
            report = BirdStatusReport.model_validate(values)
        except ValidationError as exc:
            raise payload_invalid(exc, whole="query") from None
        status = STATUS_MAP.get(report.status)
        occurred_at = report.status_datetime or request.received_at
        stamp = report.status_datetime.isoformat() if report.status_datetime else ""
        recipient = report.recipient.removeprefix("+")
        # MessageBird sends a reason for every status ("successfully delivered"); it is an
        # error only when the report is not progress towards delivery.
        failed = status not in _PROGRESS
        return [
            Report(
                event_id=derived_event_id(report.id, recipient, report.status, stamp),
                provider_message_id=report.id,
                status=status,
                provider_status=report.status,
                occurred_at=occurred_at,
                to=e164(report.recipient),
                error_code=report.status_error_code if failed else None,
                error_message=report.status_reason if failed else None,
                client_reference=report.reference,
                network=network_code(values.get("mccmnc")),
            )
        ]

    def status_client(self) -> ApiClient | None:
        return BirdStatusLookup(self.config) if self.config.api_key else None

    def resign(
        self, request: WebhookRequest, *, public_base_url: str, now: float
    ) -> WebhookRequest:
        """A fresh MessageBird-Signature-JWT (``nbf`` = now) for the new URL and body."""
        if self.config.insecure_no_signature:
            return request
        headers = resign_headers(request.headers, messagebird_jwt.HEADER)
        headers[messagebird_jwt.HEADER] = messagebird_jwt.sign(
            self.config.secrets[0],
            url=public_base_url.rstrip("/") + request.path,
            body=request.body,
            now=now,
        )
        return replace(request, headers=headers)


__all__ = ["STATUS_MAP", "BirdConfig", "BirdProvider", "BirdStatusReport", "e164"]
