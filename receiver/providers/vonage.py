"""Type ``vonage``: SMS API delivery receipts and Messages API status webhooks.

One type serves both of Vonage's APIs; a request's shape says which one sent it.

SMS API delivery receipts, followed (2026-11):

- "Delivery receipts" (https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts)
  and the SMS API reference's ``DeliveryReceipt`` callback (Nexmo/api-specification
  ``definitions/sms.yml``): GET query, POST form or POST JSON, chosen in the dashboard;
  fields ``messageId``, ``msisdn`` (the recipient), ``to`` (the sender id),
  ``network-code``, ``price``, ``status``, ``scts`` (YYMMDDhhmm), ``err-code``,
  ``api-key``, ``message-timestamp`` (``YYYY-MM-DD hh:mm:ss``, UTC, when Vonage started
  pushing the receipt), ``client-ref``, and when signed ``timestamp``, ``nonce``, ``sig``.
- Status words: accepted, buffered, delivered, expired, failed, rejected, unknown.
- ``err-code`` meanings: the support article "Vonage SMS Delivery Error Codes".
- ``client-ref`` (the sender's own reference) becomes ``client_reference``.
- No event id: it is derived from (messageId, status, err-code, scts). ``occurred_at``
  is ``message-timestamp`` (UTC), else ``scts`` read as UTC, else the arrival time.
  ``scts`` is not preferred: the documented example has ``scts`` 1810251310 and
  ``message-timestamp`` 2018-10-25 12:10:29, so ``scts`` (13:10) runs on the carrier's
  local clock, an hour after Vonage pushed the receipt.

Messages API status webhooks, followed (2026-11):

- "Messages API Status Callbacks" and the ``MessageStatus`` reference example
  (https://developer.vonage.com/en/messages/concepts/messages-status-callbacks):
  POST JSON ``message_uuid``, ``to``, ``from``, ``timestamp`` (ISO 8601), ``status``
  (submitted, delivered, read, rejected, undeliverable), ``error`` {``type``, ``title``,
  ``detail``, ``instance``}, ``channel``, ``client_ref``, ``usage``, ``destination``.
- ``client_ref`` becomes ``client_reference``.
- No event id: it is derived from (message_uuid, status, timestamp).
- "Signed webhooks": an unsigned callback can happen on a rare internal error, and
  "by returning an HTTP 5xx response, a retry will be triggered": we answer 503
  (``RetryLater``), so the signed retry is the one we store.

Signatures: ``receiver.core.signatures.vonage``. Vonage wants any 2xx (200 or 204):
the default JSON counts with 200 do.

Lookups of overdue messages (README "Missing reports"), with ``api_key`` and ``api_secret``:
the Reports API's synchronous "Get records" (https://developer.vonage.com/en/api/reports,
"Getting the Message Record with the Latest Delivery Status"): ``GET
https://api.nexmo.com/v2/reports/records?account_id={api_key}&product=SMS&direction=
outbound&id={message-id}``, HTTP Basic, answers ``{"records": [{"message_id", "status",
"error_code", "error_code_description", "date_finalized", ...}]}`` in the SMS API's
status words. The Messages API offers no status lookup.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlencode

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from receiver.core.network import network_code
from receiver.core.phone import e164
from receiver.core.reports import Report, derived_event_id
from receiver.core.signatures import basic_auth
from receiver.core.signatures import vonage as vonage_signature
from receiver.core.status import Status
from receiver.core.timestamps import AwareUtcDatetime, as_utc
from receiver.errors import CannotResign, PayloadInvalid, RetryLater, SignatureError
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
    payload_invalid,
    resign_headers,
)
from receiver.providers.fields import MAX_ERROR_MESSAGE, Word

# SMS API ``status`` -> ours. Anything else is kept with status None and changes nothing.
SMS_STATUS_MAP: dict[str, Status] = {
    "accepted": Status.SENT,
    "buffered": Status.BUFFERED,
    "delivered": Status.DELIVERED,
    "expired": Status.EXPIRED,
    "failed": Status.UNDELIVERED,
    "rejected": Status.REJECTED,
    "unknown": Status.UNKNOWN,
}

# Messages API ``status`` -> ours.
MESSAGES_STATUS_MAP: dict[str, Status] = {
    "submitted": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.DELIVERED,
    "rejected": Status.REJECTED,
    "undeliverable": Status.FAILED,
}

# SMS API ``err-code`` meanings ("Vonage SMS Delivery Error Codes"). 0 is no error.
DLR_ERRORS: dict[str, str] = {
    "1": "Unknown",
    "2": "Absent Subscriber - Temporary",
    "3": "Absent Subscriber - Permanent",
    "4": "Call Barred by User",
    "5": "Portability Error",
    "6": "Anti-Spam Rejection",
    "7": "Handset Busy",
    "8": "Network Error",
    "9": "Illegal Number",
    "10": "Illegal Message",
    "11": "Unroutable",
    "12": "Destination Unreachable",
    "13": "Subscriber Age Restriction",
    "14": "Number Blocked by Carrier",
    "15": "Pre-Paid Insufficient Funds",
    "99": "General Error",
}

# Our plain words for the console (``explain_error``). SMS API delivery receipts carry
# ``err-code`` 1-99 (support article "Vonage SMS Delivery Error Codes and Descriptions");
# Messages API callbacks carry 1000-1120 ("API Errors: Messages API",
# https://developer.vonage.com/api-errors/messages). The ranges do not overlap, so one
# table serves both.
ERROR_EXPLANATIONS: dict[str, str] = {
    # SMS API delivery receipt err-code.
    "1": "not delivered and no cause could be determined",
    "2": "the handset is temporarily unavailable (absent subscriber)",
    "3": "the number is no longer active (absent subscriber, permanent)",
    "4": "the recipient has barred messages (call barred by user)",
    "5": "a number portability problem at the network",
    "6": "blocked by the carrier's anti-spam filter",
    "7": "the handset was busy",
    "8": "a network error",
    "9": "the recipient asked not to get messages from this service",
    "10": "the message was invalid, e.g. a wrong encoding flag",
    "11": "Vonage found no route to deliver it",
    "12": "the destination cannot be reached; check the number",
    "13": "the recipient cannot receive it because of their age",
    "14": "the recipient's carrier blocks SMS to the number",
    "15": "the prepaid recipient has insufficient funds",
    "99": "a general error",
    # Messages API errors.
    "1000": "throttled: over the account's submission capacity",
    "1010": "the request missed mandatory parameters",
    "1020": "a parameter value was invalid",
    "1021": "the tag value was invalid",
    "1022": "the template or its parameters were invalid",
    "1030": "an internal error at Vonage",
    "1040": "Vonage could not process it, e.g. an unrecognised number prefix",
    "1050": "the number is barred from receiving messages",
    "1060": "the account is barred from sending",
    "1070": "the prepaid account has insufficient credit",
    "1080": "the account is not provisioned for the REST API",
    "1090": "the message is too long",
    "1100": "a communication failure; the message was not submitted",
    "1120": "local regulations do not accept this sender id",
}

# Messages API channels whose ``to`` is not a phone number.
_NON_PHONE_CHANNELS = frozenset({"messenger"})
_RETRY_AFTER_SECONDS = 5

Ident = Annotated[str, Field(pattern=r"^[\x21-\x7e]{1,128}$")]
Short = Annotated[str, Field(max_length=255)]
ClientRef = Annotated[str, Field(max_length=128)]


class VonageConfig(ProviderConfig):
    """``secrets``: the account's signature secret(s) (dashboard, API settings); every
    one is tried, so a rotation lists the old and the new. ``signature_method``: the
    dashboard's "signature method" for SMS API webhooks (Messages API tokens are always
    HS256); default ``md5hash``, the dashboard's default ("MD5 hash")."""

    type: Literal["vonage"]
    api_secret: str | None = None
    """With ``api_key``: the account's API credentials, for lookups of overdue messages."""
    lookup_requires: ClassVar[tuple[str, ...] | None] = ("api_key", "api_secret")
    signature_method: vonage_signature.SignatureMethod = vonage_signature.DEFAULT_SIGNATURE_METHOD

    @field_validator("secrets")
    @classmethod
    def _signature_secrets(cls, secrets: list[str]) -> list[str]:
        for index, secret in enumerate(secrets):
            if not secret:
                raise ValueError(f"secrets[{index}]: must not be empty")
            if secret != secret.strip():
                raise ValueError(f"secrets[{index}]: must not start or end with whitespace")
        return secrets


class SmsReceipt(BaseModel):
    """The SMS API delivery-receipt fields we read; all others are ignored."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)

    message_id: Annotated[Ident, Field(alias="messageId")]
    status: Word
    msisdn: Short | None = None
    err_code: str | None = Field(default=None, alias="err-code", max_length=16)
    scts: Annotated[str, Field(pattern=r"^[0-9]{10}$")] | None = None
    message_timestamp: str | None = Field(
        default=None,
        alias="message-timestamp",
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$",
    )
    client_ref: str | None = Field(default=None, alias="client-ref", max_length=128)


class MessagesError(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)

    type: Short | None = None
    title: Short | None = None
    detail: str | None = None


class MessageStatus(BaseModel):
    """The Messages API status-webhook fields we read; all others are ignored."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)

    message_uuid: Ident
    status: Word
    timestamp: Annotated[str, Field(min_length=1, max_length=64)]
    to: Short | None = None
    channel: Short | None = None
    client_ref: ClientRef | None = None
    error: MessagesError | None = None


_AWARE = TypeAdapter(AwareUtcDatetime)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return payload if isinstance(payload, dict) else None


def _is_messages_api(request: InboundRequest) -> bool:
    """True for a Messages API webhook, False for an SMS API receipt.

    GET and form bodies are SMS API receipts. A JSON body says by its fields; one that
    is not a JSON object belongs to the Messages API if it carries a bearer token (so
    a signed but broken body is a 400, not a 401).
    """
    if request.method != "POST" or request.media_type != JSON:
        return False
    payload = _json_object(request.body)
    if payload is not None:
        if "message_uuid" in payload:
            return True
        if "messageId" in payload:
            return False
    authorization = request.headers.get("authorization", "")
    return authorization.strip().lower().startswith("bearer ")


def _scalar_text(value: Any) -> str | None:
    """A JSON receipt value as the text that is signed: strings as they are, numbers as
    written by Python's str() (as the official Python SDK signs them); anything else
    (null, true, objects) has no documented signed form."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _sms_params(request: InboundRequest) -> dict[str, str] | str:
    """The receipt's parameters, or the reason they cannot be read (a field name)."""
    if request.method == "POST" and request.media_type == JSON:
        payload = _json_object(request.body)
        if payload is None:
            return "body"
        params: dict[str, str] = {}
        for key, value in payload.items():
            text = _scalar_text(value)
            if text is None:
                return key
            params[key] = text
        return params
    raw = request.body if request.method == "POST" else request.query_string
    pairs = parse_qsl(
        raw.decode("utf-8", "replace"), keep_blank_values=True, encoding="utf-8", errors="replace"
    )
    params = {}
    for key, value in pairs:
        if key in params:
            return key
        params[key] = value
    return params


def _sms_occurred_at(receipt: SmsReceipt, fallback: datetime) -> datetime:
    """``message-timestamp`` (UTC), else ``scts`` read as UTC, else ``fallback``; both
    are checked to be real times when present (``scts`` is part of the event id)."""
    pushed_at = carrier_at = None
    if receipt.message_timestamp is not None:
        try:
            pushed_at = as_utc(datetime.strptime(receipt.message_timestamp, "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            raise PayloadInvalid("message-timestamp", "is not a valid date and time") from None
    if receipt.scts is not None:
        yy, mo, dd, hh, mi = (int(receipt.scts[i : i + 2]) for i in range(0, 10, 2))
        try:
            carrier_at = as_utc(datetime(2000 + yy, mo, dd, hh, mi))
        except ValueError:
            raise PayloadInvalid("scts", "is not a valid YYMMDDhhmm time") from None
    return pushed_at or carrier_at or fallback


def _messages_error(error: MessagesError | None) -> tuple[str | None, str | None]:
    """(error_code, error_message): the code is the numeric title, else the fragment of
    ``type`` (``.../api-errors/messages#1000`` -> ``1000``)."""
    if error is None:
        return None, None
    code: str | None = None
    message = error.detail
    if error.title and error.title.isdigit():
        code = error.title
    else:
        if error.type and "#" in error.type:
            code = error.type.rsplit("#", 1)[1] or None
        message = message or error.title
    if message is not None:
        message = message[:MAX_ERROR_MESSAGE]
    return code, message


API_BASE_URL = "https://api.nexmo.com"


class VonageRecord(BaseModel):
    """One SMS record of the Reports API; only what we read."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    message_id: Annotated[str, Field(min_length=1, max_length=255)]
    status: Word
    error_code: Annotated[str, Field(max_length=16)] | None = None
    error_code_description: str | None = None
    date_finalized: AwareUtcDatetime | None = None


class VonageRecords(BaseModel):
    model_config = ConfigDict(extra="ignore")

    records: list[VonageRecord] = []


class VonageStatusLookup(ApiClient):
    """The Reports API's synchronous records (``GET /v2/reports/records``, product
    ``SMS``, by message id), HTTP Basic with ``api_key`` and ``api_secret``
    (docs/providers/vonage.md, "Lookups"). Records of SMS API messages only: a Messages
    API message has no status to fetch (its callbacks are the only source)."""

    looks_up_status: ClassVar[bool] = True

    def __init__(self, config: VonageConfig) -> None:
        base = str(config.api_base_url or API_BASE_URL).rstrip("/")
        self._records_url = f"{base}/v2/reports/records"
        self._account = config.api_key
        credential = f"{config.api_key}:{config.api_secret}"
        self._headers = {"authorization": basic_auth.header(credential), "accept": JSON}

    def status_request(self, message: Tracked) -> httpx.Request | None:
        if message.provider_message_id is None:
            return None
        params = {
            "account_id": self._account,
            "product": "SMS",
            "direction": "outbound",
            "id": message.provider_message_id,
        }
        return httpx.Request("GET", self._records_url, params=params, headers=self._headers)

    def read_status(
        self, message: Tracked, response: httpx.Response, now: datetime
    ) -> Report | None:
        records = VonageRecords.model_validate_json(response.content).records
        found = next((r for r in records if r.message_id == message.provider_message_id), None)
        if found is None:
            return None
        error_code = found.error_code if found.error_code not in (None, "0") else None
        description = found.error_code_description or DLR_ERRORS.get(error_code or "")
        return lookup_report(
            message,
            found.message_id,
            found.status,
            SMS_STATUS_MAP.get(found.status.lower()),
            occurred_at=found.date_finalized or now,
            error_code=error_code,
            error_message=description if error_code else None,
        )


class VonageProvider(Provider[VonageConfig]):
    kind: ClassVar[str] = "vonage"
    error_label: ClassVar[str] = "Vonage"
    error_explanations: ClassVar[Mapping[str, str]] = ERROR_EXPLANATIONS
    media_types: ClassVar[frozenset[str]] = frozenset({FORM, JSON})
    methods: ClassVar[frozenset[str]] = frozenset({"GET", "POST"})
    # Vonage retries 429/5xx with backoff from 5 s to 15 min for 24 h (shared/PROVIDERS.md).
    redelivery_horizon_days: ClassVar[int] = 2

    def __init__(self, name: str, config: VonageConfig) -> None:
        super().__init__(name, config)
        self._method: vonage_signature.SignatureMethod = config.signature_method

    def verify(self, request: InboundRequest, now: float) -> None:
        if _is_messages_api(request):
            token = vonage_signature.bearer_token(request.headers)
            if token is None:
                raise RetryLater(
                    "an unsigned Vonage Messages API callback: send it again, signed",
                    retry_after=_RETRY_AFTER_SECONDS,
                )
            vonage_signature.verify_messages(
                request.body,
                token,
                self.config.secrets,
                now=now,
                tolerance_seconds=self.config.tolerance_seconds,
            )
            return
        params = _sms_params(request)
        if isinstance(params, str):
            raise SignatureError(
                f"cannot read the signed parameters ({params})", code="SIGNATURE_MALFORMED"
            )
        vonage_signature.verify_sms(
            params,
            self.config.secrets,
            self._method,
            now=now,
            tolerance_seconds=self.config.tolerance_seconds,
        )

    def parse(self, request: InboundRequest) -> list[Report]:
        if _is_messages_api(request):
            return [self._parse_status(request)]
        return [self._parse_receipt(request)]

    def _parse_receipt(self, request: InboundRequest) -> Report:
        fields: Mapping[str, Any]
        if request.method == "POST" and request.media_type == JSON:
            payload = _json_object(request.body)
            if payload is None:
                raise PayloadInvalid("body", "is not a JSON object")
            fields = payload
        else:
            params = _sms_params(request)
            if isinstance(params, str):
                raise PayloadInvalid(params, "must be given once")
            fields = params
        # An empty value means absent (GET and form receipts cannot send null).
        fields = {k: (None if v == "" else v) for k, v in fields.items()}
        try:
            receipt = SmsReceipt.model_validate(fields)
        except ValidationError as exc:
            raise payload_invalid(exc) from None
        error_code = receipt.err_code if receipt.err_code not in (None, "0") else None
        return Report(
            event_id=derived_event_id(
                receipt.message_id, receipt.status, receipt.err_code, receipt.scts
            ),
            provider_message_id=receipt.message_id,
            status=SMS_STATUS_MAP.get(receipt.status),
            provider_status=receipt.status,
            occurred_at=_sms_occurred_at(receipt, request.received_at),
            to=e164(receipt.msisdn),
            error_code=error_code,
            error_message=DLR_ERRORS.get(error_code) if error_code else None,
            client_reference=receipt.client_ref,
            network=network_code(fields.get("network-code")),
        )

    def _parse_status(self, request: InboundRequest) -> Report:
        payload = _json_object(request.body)
        if payload is None:
            raise PayloadInvalid("body", "is not a JSON object")
        try:
            status = MessageStatus.model_validate(payload)
        except ValidationError as exc:
            raise payload_invalid(exc) from None
        try:
            occurred_at = _AWARE.validate_python(status.timestamp)
        except ValidationError as exc:
            raise payload_invalid(exc, whole="timestamp") from None
        error_code, error_message = _messages_error(status.error)
        to = None if status.channel in _NON_PHONE_CHANNELS else e164(status.to)
        return Report(
            event_id=derived_event_id(status.message_uuid, status.status, status.timestamp),
            provider_message_id=status.message_uuid,
            status=MESSAGES_STATUS_MAP.get(status.status),
            provider_status=status.status,
            occurred_at=occurred_at,
            to=to,
            error_code=error_code,
            error_message=error_message,
            client_reference=status.client_ref or None,
        )

    def status_client(self) -> ApiClient | None:
        config = self.config
        if not (config.api_key and config.api_secret):
            return None
        return VonageStatusLookup(config)

    def resign(
        self, request: WebhookRequest, *, public_base_url: str, now: float
    ) -> WebhookRequest:
        """SMS API: a new ``timestamp`` (and ``nonce`` if present) and ``sig``, in the
        query, form or JSON body the receipt came in. Messages API: a fresh bearer JWT
        (``iat`` = now, ``payload_hash`` of the unchanged body). Neither signs the URL."""
        if self.config.insecure_no_signature:
            return request
        headers = resign_headers(request.headers, "authorization")
        is_json = request.method == "POST" and media_type_of(headers) == JSON
        payload = _json_object(request.body) if is_json else None
        if is_json and (payload is None or "messageId" not in payload):
            token = vonage_signature.messages_token(
                request.body,
                self.config.secrets[0],
                issued_at=int(now),
                jti=str(uuid.uuid4()),
                api_key=self.config.api_key or "",
            )
            headers["authorization"] = f"Bearer {token}"
            return replace(request, headers=headers)
        if payload is not None:
            return replace(request, body=self._resign_json_receipt(payload, now), headers=headers)
        path, _, query = request.path.partition("?")
        raw = request.body.decode("utf-8", "replace") if request.method == "POST" else query
        pairs = parse_qsl(raw, keep_blank_values=True)
        signed = self._resign_sms_params(dict(reversed(pairs)), now)
        fresh = [(key, signed.pop(key)) for key, _ in pairs if key in signed]
        encoded = urlencode(fresh + list(signed.items()))
        if request.method == "POST":
            return replace(request, body=encoded.encode(), headers=headers)
        return replace(request, path=f"{path}?{encoded}", headers=headers)

    def _resign_sms_params(self, params: dict[str, str], now: float) -> dict[str, str]:
        """``params`` with a fresh ``timestamp`` (and ``nonce``) and their new ``sig``."""
        params = dict(params)
        params["timestamp"] = str(int(now))
        if "nonce" in params:
            params["nonce"] = str(uuid.uuid4())
        params.pop("sig", None)
        params["sig"] = vonage_signature.sms_signature(params, self.config.secrets[0], self._method)
        return params

    def _resign_json_receipt(self, payload: dict[str, Any], now: float) -> bytes:
        texts: dict[str, str] = {}
        for key, value in payload.items():
            text = _scalar_text(value)
            if text is None:
                raise CannotResign(f"cannot re-sign: the receipt's {key!r} has no signed form")
            texts[key] = text
        signed = self._resign_sms_params(texts, now)
        fresh = {key: signed[key] for key in ("timestamp", "nonce", "sig") if key in signed}
        return json.dumps(payload | fresh).encode()


__all__ = [
    "DLR_ERRORS",
    "MESSAGES_STATUS_MAP",
    "SMS_STATUS_MAP",
    "MessageStatus",
    "SmsReceipt",
    "VonageConfig",
    "VonageProvider",
]
