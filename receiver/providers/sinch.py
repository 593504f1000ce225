"""Type ``sinch``: Sinch SMS REST API delivery-report callbacks (POST JSON).

Sources (2026-11): the SMS API reference, "Webhooks" (callbacks, retries: 5xx and 429
are retried from 5 s, doubling, for about 23 h; other 4xx are not) and "Delivery
reports" (status words, status codes); the official Python SDK ``sinch`` 2.3 models
``RecipientDeliveryReport`` / ``BatchDeliveryReport`` and ``SmsSinchEvent``; the
Java SDK's ``DeliveryReportErrorCode`` for the code names. Signing: see
``receiver.core.signatures.sinch``.

Two report shapes arrive at the callback URL:

``recipient_delivery_report_sms`` (``delivery_report: per_recipient`` or
``per_recipient_final``), one message::

    {"type": "recipient_delivery_report_sms", "batch_id": "01W4FFL35P4NC4K35SMSBATCH9",
     "recipient": "12017777777", "code": 0, "status": "Delivered",
     "at": "2024-06-06T08:17:19.210Z", "operator_status_at": "2024-06-06T08:17:00Z",
     "client_reference": "client-ref"}

``delivery_report_sms`` (``delivery_report: summary`` or ``full``), a batch summary;
only ``full`` lists the recipients::

    {"type": "delivery_report_sms", "batch_id": "01W4FFL35P4NC4K35SMSBATCH8",
     "statuses": [{"code": 0, "status": "Delivered", "count": 2,
                   "recipients": ["12017777777", "33612345678"]}],
     "total_message_count": 2, "client_reference": "client-ref"}

The ``_mms`` variants have the same shape and are accepted too.

Decisions
---------
* Sinch identifies the *batch*, and a batch may have many recipients, so one message is
  ``{batch_id}:{recipient}`` with the recipient in E.164 (``+`` added when Sinch sends
  bare digits): see ``provider_message_id``. A sender that sends through Sinch must key
  its message the same way.
* A summary's ``recipients`` give one report each; a summary without recipients says
  nothing about any one message and gives no report (the answer is still 200, so Sinch
  does not retry it).
* No event id is sent: it is derived from (batch_id, recipient, status, code, at); a
  summary has no ``at``, so its reports' ids use an empty one.
* ``occurred_at`` is ``at`` (when Sinch created the report; always present, millisecond
  precision, one clock for every report of a batch); ``operator_status_at`` is optional
  and often only minute-precise, so it is not used. A summary has no timestamp: its
  reports occur at ``received_at``.
* ``code`` is kept in ``error_code`` for every report (Sinch's detailed status code:
  0 delivered, 400 queued, 401 dispatched, 402-418 failures, or an SMPP code);
  ``error_message`` names the documented failure codes.
* Status words are matched case-insensitively: the docs, callbacks and the Node and
  .NET SDKs write ``Delivered``, the Python SDK's types write ``DELIVERED``. The word is
  kept as sent.
* Lookups of overdue messages (README "Missing reports"), with ``service_plan_id`` and
  ``api_key`` (the plan's API token): "Retrieve a recipient delivery report"
  (https://developers.sinch.com/docs/sms/api-reference/sms/tag/Delivery-reports/):
  ``GET https://us.sms.api.sinch.com/xms/v1/{service_plan_id}/batches/{batch_id}/
  delivery_report/{recipient_msisdn}`` (``api_base_url`` names another region) answers
  one ``recipient_delivery_report_sms`` as above.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from secrets import token_hex
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote

import httpx
import pydantic_core
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from receiver.core.network import network_code
from receiver.core.phone import e164
from receiver.core.reports import Report, derived_event_id
from receiver.core.signatures import basic_auth
from receiver.core.signatures import sinch as sinch_signature
from receiver.core.status import Status
from receiver.core.timestamps import UtcDatetime
from receiver.errors import PayloadInvalid
from receiver.providers.base import (
    JSON,
    ApiClient,
    InboundRequest,
    Provider,
    ProviderConfig,
    Tracked,
    WebhookRequest,
    looked_up,
    payload_invalid,
    resign_headers,
)
from receiver.providers.fields import Word

STATUS_MAP: dict[str, Status] = {
    "Queued": Status.QUEUED,
    "Dispatched": Status.SENT,
    "Delivered": Status.DELIVERED,
    "Failed": Status.UNDELIVERED,
    "Expired": Status.EXPIRED,
    "Rejected": Status.REJECTED,
    "Aborted": Status.FAILED,
    "Cancelled": Status.FAILED,
    "Deleted": Status.FAILED,
    "Unknown": Status.UNKNOWN,
}
_STATUS_BY_FOLDED = {word.casefold(): status for word, status in STATUS_MAP.items()}

# Sinch's documented delivery report codes that describe a failure (0, 400 and 401 are
# Delivered, Queued and Dispatched). Other codes (SMPP ones) keep error_message empty.
ERROR_MESSAGES: dict[int, str] = {
    402: "Message unroutable",
    403: "Internal error",
    404: "Temporary delivery failure",
    405: "Unmatched parameter",
    406: "Internal expiry",
    407: "Cancelled",
    408: "Internal reject",
    410: "Unmatched default originator",
    411: "Exceeded parts limit",
    412: "Unprovisioned region",
    413: "Blocked",
    414: "Bad media",
    415: "Delivery report rejected",
    416: "Delivery report not supported",
    417: "Delivery report unreachable",
    418: "Delivery report unrecognized",
}

# Our plain words for the console (``explain_error``): the delivery report ``code`` (0
# delivered, 400 queued, 401 dispatched, 402-418 failures: Sinch SMS REST API delivery
# report codes, named as in the Java SDK's ``DeliveryReportErrorCode``). Other values
# are SMPP codes of the carrier.
ERROR_EXPLANATIONS: dict[str, str] = {
    "0": "delivered",
    "400": "queued at Sinch, to be dispatched at the account's rate",
    "401": "dispatched to the carrier's SMS-C",
    "402": "the SMS-C rejected it as unroutable; a retry would fail the same way",
    "403": "an unexpected error at Sinch",
    "404": "a temporary delivery failure; it can be retried",
    "405": "a parameter in the message body has no value for this recipient",
    "406": "expired before reaching the SMS-C (its expiry time may have been very short)",
    "407": "cancelled by the sender before reaching the SMS-C",
    "408": "the SMS-C rejected it; a retry would fail the same way",
    "410": "no default sender is configured for this recipient",
    "411": "more message parts than the configured maximum",
    "412": "the account is not provisioned for the recipient's region",
    "413": "the Sinch account is blocked (possibly out of credit)",
    "414": "MMS: the media URL was unreachable or answered badly",
    "415": "MMS: rejected by the MMS gateway or the mobile network",
    "416": "MMS: not supported by the recipient's MMS-C",
    "417": "MMS: the destination network or the subscriber cannot be reached",
    "418": "MMS: the handset did not recognise the message content",
}

RECIPIENT_TYPES = ("recipient_delivery_report_sms", "recipient_delivery_report_mms")
BATCH_TYPES = ("delivery_report_sms", "delivery_report_mms")


def map_status(word: str) -> Status | None:
    """Our status for a Sinch status word (any case), or None for an unknown word."""
    return _STATUS_BY_FOLDED.get(word.casefold())


def provider_message_id(batch_id: str, recipient: str) -> str:
    """Our provider message id for one recipient of a Sinch batch: ``batch_id:+E164``."""
    return f"{batch_id}:{e164(recipient) or recipient}"


class SinchConfig(ProviderConfig):
    """``[providers.NAME] type = "sinch"``; ``auth`` says how Sinch authenticates.

    ``auth = "hmac"``: ``secrets`` are the callback signing secrets (signing is enabled
    on the account by Sinch). ``auth = "basic"``: ``secrets`` are ``"user:password"``
    strings provisioned on the callback URL.
    """

    type: Literal["sinch"]
    auth: Literal["hmac", "basic"]
    service_plan_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,64}$")] | None = None
    """With ``api_key`` (the plan's API token): lookups of overdue messages."""
    lookup_requires: ClassVar[tuple[str, ...] | None] = ("service_plan_id", "api_key")

    # Checked on ``auth`` (validated after ``secrets``), so an error's input is the auth
    # word, never a secret; the message names the secret's index for the config loader.
    @field_validator("auth")
    @classmethod
    def _secrets_fit_auth(cls, auth: str, info: ValidationInfo) -> str:
        for index, secret in enumerate(info.data.get("secrets", [])):
            if auth == "basic":
                try:
                    basic_auth.check_credential(secret)
                except ValueError as exc:
                    raise ValueError(f'secrets[{index}]: {exc} with auth = "basic"') from None
            elif not secret.strip():
                raise ValueError(f'secrets[{index}]: must not be empty with auth = "hmac"')
        return auth


def _iso_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 date-time string")
    return value


# Sinch writes UTC with "Z"; the official SDK reads a time without offset as UTC too.
SinchTime = Annotated[UtcDatetime, BeforeValidator(_iso_string)]
BatchId = Annotated[StrictStr, Field(min_length=1, max_length=128)]
Recipient = Annotated[StrictStr, Field(min_length=1, max_length=64)]
StrictWord = Annotated[Word, Strict()]


class _Model(BaseModel):
    # Fields we do not use (applied_originator, encoding, operator, counts, ...) are
    # not validated, so a change in them never costs a report; the raw body is stored.
    model_config = ConfigDict(extra="ignore", frozen=True)


ClientReference = Annotated[str, Field(min_length=1, max_length=128)]


class RecipientDeliveryReport(_Model):
    """``recipient_delivery_report_sms``: one recipient's status."""

    type: Literal["recipient_delivery_report_sms", "recipient_delivery_report_mms"]
    batch_id: BatchId
    recipient: Recipient
    code: StrictInt
    status: StrictWord
    at: SinchTime
    operator_status_at: SinchTime | None = None
    client_reference: ClientReference | None = None
    operator: Any = None
    """The MCC+MNC that delivered it, when Sinch enabled it for the account; read
    leniently (``receiver.core.network.network_code``)."""


class StatusGroup(_Model):
    """One entry of a summary's ``statuses``: recipients sharing a status and code."""

    code: StrictInt
    status: StrictWord
    recipients: list[Recipient] | None = None


class BatchDeliveryReport(_Model):
    """``delivery_report_sms``: a batch summary, with recipients for type ``full``."""

    type: Literal["delivery_report_sms", "delivery_report_mms"]
    batch_id: BatchId
    statuses: list[StatusGroup]
    client_reference: ClientReference | None = None


def _load(body: bytes) -> RecipientDeliveryReport | BatchDeliveryReport:
    try:
        data = pydantic_core.from_json(body)
    except ValueError:
        raise PayloadInvalid("body", "is not valid JSON") from None
    if not isinstance(data, dict):
        raise PayloadInvalid("body", "must be a JSON object")
    kind = data.get("type")
    model: type[RecipientDeliveryReport | BatchDeliveryReport]
    if kind in RECIPIENT_TYPES:
        model = RecipientDeliveryReport
    elif kind in BATCH_TYPES:
        model = BatchDeliveryReport
    elif kind is None:
        raise PayloadInvalid("type", "is required")
    else:
        expected = ", ".join(RECIPIENT_TYPES + BATCH_TYPES)
        raise PayloadInvalid("type", f"must be a delivery report type ({expected})")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise payload_invalid(exc) from None


def _report(
    batch_id: str,
    recipient: str,
    status: str,
    code: int,
    at: datetime | None,
    fallback: datetime,
    client_reference: str | None,
) -> Report:
    to = e164(recipient)
    return Report(
        event_id=derived_event_id(
            batch_id, to or recipient, status, str(code), at.isoformat() if at else None
        ),
        provider_message_id=provider_message_id(batch_id, recipient),
        status=map_status(status),
        provider_status=status,
        occurred_at=at or fallback,
        to=to,
        error_code=str(code),
        error_message=ERROR_MESSAGES.get(code),
        client_reference=client_reference,
    )


API_BASE_URL = "https://us.sms.api.sinch.com"


class SinchStatusLookup(ApiClient):
    """ "Retrieve a recipient delivery report": ``GET /xms/v1/{service_plan_id}/batches/
    {batch_id}/delivery_report/{recipient_msisdn}`` with the API token as a bearer token
    (docs/providers/sinch.md, "Lookups"). Its answer is a recipient report as above."""

    looks_up_status: ClassVar[bool] = True

    def __init__(self, config: SinchConfig) -> None:
        base = str(config.api_base_url or API_BASE_URL).rstrip("/")
        self._batches_url = f"{base}/xms/v1/{config.service_plan_id}/batches"
        self._headers = {"authorization": f"Bearer {config.api_key}", "accept": JSON}

    def status_request(self, message: Tracked) -> httpx.Request | None:
        batch_id, separator, recipient = (message.provider_message_id or "").rpartition(":")
        if not separator or not batch_id:
            return None
        msisdn = recipient.removeprefix("+")
        url = f"{self._batches_url}/{quote(batch_id, safe='')}/delivery_report/{quote(msisdn)}"
        return httpx.Request("GET", url, headers=self._headers)

    def read_status(self, message: Tracked, response: httpx.Response, now: datetime) -> Report:
        found = RecipientDeliveryReport.model_validate_json(response.content)
        report = _report(
            found.batch_id, found.recipient, found.status, found.code, found.at, now, None
        )
        return looked_up(message, report)


class SinchProvider(Provider[SinchConfig]):
    kind: ClassVar[str] = "sinch"
    error_label: ClassVar[str] = "Sinch"
    error_explanations: ClassVar[Mapping[str, str]] = ERROR_EXPLANATIONS
    media_types: ClassVar[frozenset[str]] = frozenset({JSON})
    # Sinch retries 5xx/429 from 5 s, doubling, for about 22 h 45 min (docs/providers/sinch.md).
    redelivery_horizon_days: ClassVar[int] = 2

    def verify(self, request: InboundRequest, now: float) -> None:
        config = self.config
        if config.auth == "basic":
            basic_auth.verify(request.headers, config.secrets)
        else:
            sinch_signature.verify(
                request.body,
                request.headers,
                config.secrets,
                now=now,
                tolerance_seconds=config.tolerance_seconds,
            )

    def parse(self, request: InboundRequest) -> list[Report]:
        payload = _load(request.body)
        received_at = request.received_at.astimezone(UTC)
        if isinstance(payload, RecipientDeliveryReport):
            report = _report(
                payload.batch_id,
                payload.recipient,
                payload.status,
                payload.code,
                payload.at,
                received_at,
                payload.client_reference,
            )
            return [replace(report, network=network_code(payload.operator))]
        return [
            _report(
                payload.batch_id,
                recipient,
                group.status,
                group.code,
                None,
                received_at,
                payload.client_reference,
            )
            for group in payload.statuses
            for recipient in group.recipients or ()
        ]

    def status_client(self) -> ApiClient | None:
        config = self.config
        if not (config.service_plan_id and config.api_key):
            return None
        return SinchStatusLookup(config)

    def resign(
        self, request: WebhookRequest, *, public_base_url: str, now: float
    ) -> WebhookRequest:
        """``auth = "hmac"``: a fresh timestamp, nonce and signature over the same body;
        ``auth = "basic"``: the Authorization header of the first credential."""
        if self.config.insecure_no_signature:
            return request
        secret = self.config.secrets[0]
        if self.config.auth == "basic":
            headers = resign_headers(request.headers, "authorization")
            headers["authorization"] = basic_auth.header(secret)
            return replace(request, headers=headers)
        headers = resign_headers(
            request.headers,
            sinch_signature.SIGNATURE_HEADER,
            sinch_signature.NONCE_HEADER,
            sinch_signature.TIMESTAMP_HEADER,
            sinch_signature.ALGORITHM_HEADER,
        )
        headers |= sinch_signature.sign(secret, request.body, token_hex(13), int(now))
        return replace(request, headers=headers)


__all__ = [
    "ERROR_MESSAGES",
    "STATUS_MAP",
    "BatchDeliveryReport",
    "RecipientDeliveryReport",
    "SinchConfig",
    "SinchProvider",
    "e164",
    "map_status",
    "provider_message_id",
]
