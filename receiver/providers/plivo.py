"""Type ``plivo``: Plivo message status callbacks.

Plivo calls the ``url`` given when the message was sent, with ``method`` POST (form body)
or GET (query parameters), every time the message's status changes
(https://www.plivo.com/docs/messaging/api/message/message-status-callbacks). The fields
we read::

    MessageUUID=2b7c8a42-...&Status=delivered&To=14155550123&From=14155550100
    &ErrorCode=&Sequence=3&MessageTime=2026-11-23 09:59:51.480716
    &QueuedTime=...&SentTime=...&DeliveryReportTime=2026-11-23 09:59:58.120544

``Type``, ``Units``, ``TotalRate``, ``TotalAmount``, ``MCC``, ``MNC``,
``ParentMessageUUID``, ``PartInfo``, ``PowerpackUUID`` and the WhatsApp-only fields are
accepted and ignored (the raw request is stored).

* Signature: ``receiver.core.signatures.plivo`` (V3 when present, else V2 unless
  ``accept_v2_signatures = false``); the auth token(s) are ``secrets``.
* Event id: Plivo sends none; ``derived_event_id(MessageUUID, Status, Sequence)`` (one per
  callback Plivo generates, identical on its retries).
* ``occurred_at``: the timestamp that goes with the status (``QueuedTime`` for queued,
  ``SentTime`` for sent, ``DeliveryReportTime`` for the carrier's verdicts), else the
  latest timestamp present, else the arrival time. Plivo documents the format as
  ``YYYY-mm-dd HH:MM:SS.SSSSSS`` without a zone; we read a zone-less time as UTC.
* ``ErrorCode`` becomes ``error_code``; ``000`` (Plivo's "no error") and blanks become
  None; the reasons of the documented codes become ``error_message``
  (https://www.plivo.com/docs/messaging/troubleshooting/error-codes).
* Answer: any 2xx stops Plivo's retries (non-2xx or no answer within 8 s: retried after
  60, 120 and 240 s); we send the contract's JSON counts.
* Lookups of overdue messages (README "Missing reports"), with ``auth_id`` and the Auth Token
  (``secrets[0]``): "Retrieve a message" (https://www.plivo.com/docs/messaging/api/
  messages/): ``GET https://api.plivo.com/v1/Account/{auth_id}/Message/{message_uuid}/``
  answers the Message object with ``message_state`` and ``error_code`` (``000``: none).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from secrets import randbelow
from typing import Annotated, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from receiver.core.network import network_of
from receiver.core.phone import e164
from receiver.core.reports import Report, derived_event_id
from receiver.core.signatures import basic_auth
from receiver.core.signatures import plivo as plivo_signature
from receiver.core.status import Status
from receiver.core.timestamps import as_utc
from receiver.errors import PayloadInvalid
from receiver.providers.base import (
    FORM,
    JSON,
    ApiClient,
    InboundRequest,
    Provider,
    ProviderConfig,
    Tracked,
    WebhookRequest,
    lookup_report,
    media_type_of,
    resign_headers,
    single_values,
)
from receiver.providers.fields import Word, blank_is_none

# Plivo's word -> ours. Anything else is kept with status None.
STATUS_MAP: dict[str, Status] = {
    "queued": Status.QUEUED,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.DELIVERED,  # WhatsApp read receipt: delivered and then some
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
    "rejected": Status.REJECTED,
}

# The reasons Plivo documents for its messaging error codes (verified ones only).
ERROR_REASONS: dict[str, str] = {
    "10": "Invalid Message",
    "20": "Network Error",
    "30": "Spam Detected",
    "40": "Invalid Source Number",
    "50": "Invalid Destination Number",
}

# Our plain words for the console (``explain_error``): ``ErrorCode``
# (https://www.plivo.com/docs/messaging/troubleshooting/error-codes; 450 from Plivo's SMS
# FAQ on Geo Permissions, 900 from Plivo's support article on insufficient balance).
ERROR_EXPLANATIONS: dict[str, str] = {
    "10": "a downstream carrier rejected it as an invalid message",
    "20": "the carrier had network issues (temporary)",
    "30": "blocked by a carrier spam filter",
    "40": "invalid source number (format, not SMS-enabled, or not on the account)",
    "50": "invalid destination number",
    "450": "the destination country is not enabled in the account's Geo Permissions",
    "900": "insufficient credit on the Plivo account",
}
NO_ERROR = "000"

# The timestamp field that belongs to each status; others fall back to the latest one.
STATUS_TIME_FIELD: dict[str, str] = {
    "queued": "QueuedTime",
    "sent": "SentTime",
    "delivered": "DeliveryReportTime",
    "read": "DeliveryReportTime",
    "undelivered": "DeliveryReportTime",
    "rejected": "DeliveryReportTime",
}

_AUTH_ID = r"^(MA|SA)[A-Z0-9]{18}$"
_TOKEN = re.compile(r"[\x21-\x7e]{16,256}")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?"
)


class PlivoConfig(ProviderConfig):
    """``secrets`` are Auth Tokens: the (sub)account's, and the main account's for the
    ``-Ma-`` headers; every one is tried."""

    type: Literal["plivo"]
    lookup_requires: ClassVar[tuple[str, ...] | None] = ("auth_id", "secrets")
    auth_id: Annotated[str, Field(pattern=_AUTH_ID)] | None = None
    accept_v2_signatures: bool = True

    @field_validator("secrets")
    @classmethod
    def _auth_tokens(cls, secrets: list[str]) -> list[str]:
        for index, secret in enumerate(secrets):
            if not _TOKEN.fullmatch(secret):
                raise ValueError(
                    f"secrets[{index}]: must be a Plivo Auth Token "
                    "(16-256 printable ASCII characters, no spaces)"
                )
        return secrets


class PlivoCallback(BaseModel):
    """The fields of one status callback we read (Plivo's names)."""

    model_config = ConfigDict(extra="ignore")

    message_uuid: Annotated[str, Field(alias="MessageUUID", min_length=1, max_length=255)]
    status: Annotated[str, Field(alias="Status", min_length=1, max_length=64)]
    to: Annotated[str | None, Field(alias="To", max_length=64)] = None
    error_code: Annotated[str | None, Field(alias="ErrorCode", max_length=64)] = None
    sequence: Annotated[str | None, Field(alias="Sequence", max_length=64)] = None
    message_time: Annotated[str | None, Field(alias="MessageTime")] = None
    queued_time: Annotated[str | None, Field(alias="QueuedTime")] = None
    sent_time: Annotated[str | None, Field(alias="SentTime")] = None
    delivery_report_time: Annotated[str | None, Field(alias="DeliveryReportTime")] = None

    _blanks = field_validator(
        "to",
        "error_code",
        "sequence",
        "message_time",
        "queued_time",
        "sent_time",
        "delivery_report_time",
        mode="before",
    )(blank_is_none)


_READ_FIELDS = frozenset(
    field.alias for field in PlivoCallback.model_fields.values() if field.alias is not None
)


def parse_timestamp(raw: str) -> datetime:
    """A Plivo timestamp (``YYYY-mm-dd HH:MM:SS[.ffffff]``, zone optional, else UTC)."""
    if not _TIMESTAMP.fullmatch(raw):
        raise ValueError("must look like YYYY-mm-dd HH:MM:SS.SSSSSS")
    try:
        stamp = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError("is not a valid date and time") from None
    return as_utc(stamp)


API_BASE_URL = "https://api.plivo.com"


class PlivoMessage(BaseModel):
    """The Message object as "Retrieve a message" answers it; only what we read."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    message_uuid: Annotated[str, Field(min_length=1, max_length=255)]
    message_state: Word
    error_code: Annotated[str, Field(max_length=64)] | None = None
    message_time: str | None = None

    _blanks = field_validator("error_code", "message_time", mode="before")(blank_is_none)


class PlivoStatusLookup(ApiClient):
    """``GET /v1/Account/{auth_id}/Message/{message_uuid}/``, HTTP Basic with the Auth ID
    and the first Auth Token (docs/providers/plivo.md, "Lookups")."""

    looks_up_status: ClassVar[bool] = True

    def __init__(self, config: PlivoConfig) -> None:
        base = str(config.api_base_url or API_BASE_URL).rstrip("/")
        self._messages_url = f"{base}/v1/Account/{config.auth_id}/Message"
        credential = f"{config.auth_id}:{config.secrets[0]}"
        self._headers = {"authorization": basic_auth.header(credential), "accept": JSON}

    def status_request(self, message: Tracked) -> httpx.Request | None:
        if message.provider_message_id is None:
            return None
        url = f"{self._messages_url}/{quote(message.provider_message_id, safe='')}/"
        return httpx.Request("GET", url, headers=self._headers)

    def read_status(self, message: Tracked, response: httpx.Response, now: datetime) -> Report:
        found = PlivoMessage.model_validate_json(response.content)
        error_code = None if found.error_code in (None, NO_ERROR) else found.error_code
        word = found.message_state
        # message_time is when the message was sent, not when it reached this state.
        return lookup_report(
            message,
            found.message_uuid,
            word,
            STATUS_MAP.get(word.lower()),
            occurred_at=now,
            error_code=error_code,
            error_message=ERROR_REASONS.get(error_code) if error_code else None,
        )


class PlivoProvider(Provider[PlivoConfig]):
    kind: ClassVar[str] = "plivo"
    error_label: ClassVar[str] = "Plivo"
    error_explanations: ClassVar[Mapping[str, str]] = ERROR_EXPLANATIONS
    media_types: ClassVar[frozenset[str]] = frozenset({FORM})
    methods: ClassVar[frozenset[str]] = frozenset({"GET", "POST"})
    # Plivo retries after 60, 120 and 240 s, about 7 minutes (docs/providers/plivo.md).
    redelivery_horizon_days: ClassVar[int] = 1

    def __init__(self, name: str, config: PlivoConfig) -> None:
        super().__init__(name, config)
        self._accept_v2 = config.accept_v2_signatures

    @staticmethod
    def _form_params(request: InboundRequest) -> list[tuple[str, str]]:
        if request.method == "GET" or request.media_type != FORM:
            return []
        return plivo_signature.query_pairs(request.body.decode("utf-8", "replace"))

    def verify(self, request: InboundRequest, now: float) -> None:
        # Neither V3 nor V2 signs a time: ``now`` has nothing to check.
        plivo_signature.verify(
            request.headers,
            method=request.method,
            url=request.url,
            form_params=self._form_params(request),
            tokens=self.config.secrets,
            accept_v2=self._accept_v2,
        )

    def parse(self, request: InboundRequest) -> list[Report]:
        if request.method == "GET":
            _, query = plivo_signature.split_url(request.url)
            fields = single_values(plivo_signature.query_pairs(query), _READ_FIELDS)
        else:
            fields = single_values(self._form_params(request), _READ_FIELDS)
        try:
            callback = PlivoCallback.model_validate(fields)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            field = ".".join(str(part) for part in error["loc"]) or "body"
            raise PayloadInvalid(field, error["msg"]) from None
        raw_times = {
            "MessageTime": callback.message_time,
            "QueuedTime": callback.queued_time,
            "SentTime": callback.sent_time,
            "DeliveryReportTime": callback.delivery_report_time,
        }
        times: dict[str, datetime] = {}
        for name, raw in raw_times.items():
            if raw is not None:
                try:
                    times[name] = parse_timestamp(raw)
                except ValueError as exc:
                    raise PayloadInvalid(name, str(exc)) from None
        own_field = STATUS_TIME_FIELD.get(callback.status)
        if own_field in times:
            occurred_at = times[own_field]
        elif times:
            occurred_at = max(times.values())
        else:
            occurred_at = request.received_at.astimezone(UTC)
        error_code = None if callback.error_code in (None, NO_ERROR) else callback.error_code
        return [
            Report(
                event_id=derived_event_id(
                    callback.message_uuid, callback.status, callback.sequence
                ),
                provider_message_id=callback.message_uuid,
                status=STATUS_MAP.get(callback.status),
                provider_status=callback.status,
                occurred_at=occurred_at,
                to=e164(callback.to),
                error_code=error_code,
                error_message=ERROR_REASONS.get(error_code) if error_code else None,
                network=network_of(fields.get("MCC"), fields.get("MNC")),
            )
        ]

    def status_client(self) -> ApiClient | None:
        config = self.config
        if not (config.auth_id and config.secrets):
            return None
        return PlivoStatusLookup(config)

    def resign(
        self, request: WebhookRequest, *, public_base_url: str, now: float
    ) -> WebhookRequest:
        """Fresh nonces and V3 and V2 signatures for the new public URL (no time is
        signed, so ``now`` is unused)."""
        if self.config.insecure_no_signature:
            return request
        headers = {
            k: v
            for k, v in resign_headers(request.headers).items()
            if not k.startswith("x-plivo-signature")
        }
        url = public_base_url.rstrip("/") + request.path
        form: list[tuple[str, str]] = []
        if request.method != "GET" and media_type_of(headers) == FORM:
            form = plivo_signature.query_pairs(request.body.decode("utf-8", "replace"))
        token = self.config.secrets[0]
        v3_nonce, v2_nonce = _resign_nonce(), _resign_nonce()
        headers[plivo_signature.V3_SIGNATURE_HEADERS[0]] = plivo_signature.sign_v3(
            token, request.method, url, v3_nonce, form
        )
        headers[plivo_signature.V3_NONCE_HEADER] = v3_nonce
        headers[plivo_signature.V2_SIGNATURE_HEADERS[0]] = plivo_signature.sign_v2(
            token, url, v2_nonce
        )
        headers[plivo_signature.V2_NONCE_HEADER] = v2_nonce
        return replace(request, headers=headers)


def _resign_nonce() -> str:
    """A nonce shaped like Plivo's: 20 random digits."""
    return str(randbelow(10**20)).zfill(20)


__all__ = [
    "ERROR_REASONS",
    "STATUS_MAP",
    "PlivoCallback",
    "PlivoConfig",
    "PlivoProvider",
    "e164",
    "parse_timestamp",
]
