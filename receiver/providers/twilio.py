"""Type ``twilio``: Programmable Messaging status callbacks.

Followed (2026-11):

- Message resource, "Twilio's request to the StatusCallback URL", and the guide
  "Track the Message Status of Outbound Messages"
  (https://www.twilio.com/docs/messaging/guides/track-outbound-message-status):
  Twilio POSTs ``application/x-www-form-urlencoded`` with a subset of the standard
  request parameters (``AccountSid``, ``From``, ``To``, ``MessageSid``, ``SmsSid``,
  ``SmsStatus``, ``ApiVersion``, ...) plus ``MessageStatus`` and ``ErrorCode``; SMS/MMS
  add ``RawDlrDoneDate``, other channels ``ChannelInstallSid``, ``ChannelStatusMessage``,
  ``ChannelPrefix``, ``EventType``. Parameters are added without notice, so the
  signature covers every received parameter. "No response content is required": the
  default JSON counts with 200 are fine.
- Status values: the Message resource's ``status`` enum (twilio 9.13
  ``MessageInstance.Status``): queued, sending, sent, failed, delivered, undelivered,
  receiving, received, accepted, scheduled, read, partially_delivered, canceled.
- Signatures: ``receiver.core.signatures.twilio``.

Twilio reports carry no event id and no timestamp: the event id is derived from
(MessageSid, MessageStatus, ErrorCode) and ``occurred_at`` is the arrival time.
``RawDlrDoneDate`` is not used: Twilio says its time zone varies between carriers.

Sending (when ``account_sid`` is set), followed: the Message resource's "Create a
Message" and "Read multiple Message resources"
(https://www.twilio.com/docs/messaging/api/message-resource) and twilio 9.13
``MessageList.create``/``page``: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``,
form-encoded ``To``, ``From``, ``Body``, ``StatusCallback``, HTTP Basic with the account
SID and the Auth Token; the answer's ``sid`` is the message id. The API takes no
idempotency key and stores no reference of ours, so a lookup lists the messages to
``To`` from ``From`` sent since the day we accepted ours (``DateSent>``) and takes the
earliest one created since then with our exact body (docs/providers/twilio.md says
where that falls short).

Lookups of overdue messages (README "Missing reports"), followed: the Message resource's
"Fetch a Message resource" (same page): ``GET /2010-04-01/Accounts/{AccountSid}/Messages/
{Sid}.json`` answers the resource with ``status``, ``error_code`` (an integer or null),
``error_message`` and ``date_updated`` (RFC 2822); an unknown SID answers 404 (error
20404), and throttling 429 (error 20429) with ``Retry-After``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qsl, quote

import httpx
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
from receiver.core.reports import Report, derived_event_id
from receiver.core.signatures import basic_auth
from receiver.core.signatures import twilio as twilio_signature
from receiver.core.status import Status
from receiver.core.timestamps import UtcDatetime
from receiver.errors import CannotResign, PayloadInvalid, SignatureError
from receiver.providers.base import (
    FORM,
    JSON,
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
    media_type_of,
    resign_headers,
    single_values,
)
from receiver.providers.fields import MAX_ERROR_MESSAGE, Word, blank_is_none, clipped_error
from receiver.records import OutboxItem

ACCOUNT_SID = r"^AC[0-9a-fA-F]{32}$"
API_BASE_URL = "https://api.twilio.com"
LOOKUP_PAGE_SIZE = 100
CLOCK_SKEW = timedelta(minutes=5)
"""How far Twilio's clock may be behind ours when a lookup compares creation times."""

# Twilio's word -> ours. Anything else (receiving, received, partially_delivered, a word
# Twilio adds later) is kept in the timeline with status None and changes nothing.
STATUS_MAP: dict[str, Status] = {
    "accepted": Status.QUEUED,
    "queued": Status.QUEUED,
    "scheduled": Status.QUEUED,
    "sending": Status.SENT,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
    "canceled": Status.FAILED,
}

# The common delivery errors, by the titles of Twilio's error dictionary
# (https://www.twilio.com/docs/api/errors). Used when the callback names no message.
ERROR_MESSAGES: dict[str, str] = {
    "21610": "Attempt to send to unsubscribed recipient",
    "30001": "Queue overflow",
    "30002": "Account suspended",
    "30003": "Unreachable destination handset",
    "30004": "Message blocked",
    "30005": "Unknown destination handset",
    "30006": "Landline or unreachable carrier",
    "30007": "Message filtered",
    "30008": "Unknown error",
    "30009": "Missing inbound segment",
    "30010": "Message price exceeds max price",
    "30034": "Message from an unregistered number",
}

# Our plain words for the console (``explain_error``): the ``ErrorCode`` of a status
# callback, or the ``code`` of an API error answer (21xxx, when a send is refused), from
# Twilio's error dictionary (https://www.twilio.com/docs/api/errors).
ERROR_EXPLANATIONS: dict[str, str] = {
    "21211": "the 'To' number is not a valid phone number",
    "21408": "sending to the recipient's country is not enabled on the account",
    "21610": "the recipient replied STOP; Twilio sends nothing until they reply START",
    "21614": "the 'To' number is not a mobile number (a landline, or invalid)",
    "30001": "queue overflow: too many messages were queued for the sender",
    "30002": "the account was suspended before Twilio could send the message",
    "30003": "the handset is unreachable (switched off, no signal, or cannot take SMS)",
    "30004": "message blocked: the recipient or their carrier blocks messages from this sender",
    "30005": "unknown handset: the number does not exist or is no longer in service",
    "30006": "a landline, or a carrier this sender cannot reach",
    "30007": "carrier filtered the message as spam or against its content rules",
    "30008": "the carrier gave no reason (unknown error)",
    "30009": "a segment of a multipart message went missing",
    "30010": "the message price exceeds the max price set for it",
    "30032": "the toll-free sending number has not been verified",
    "30034": "the US sending number is not registered to an approved A2P 10DLC campaign",
}

# Channels whose addresses are phone numbers; others (messenger:<id>, ...) are not.
_PHONE_CHANNELS = ("whatsapp:", "rcs:")


class TwilioConfig(ProviderConfig):
    """``secrets``: the Auth Token(s) (or SharedKey secrets); every one is tried, so a
    rotation lists the old and the new. ``account_sid``: if set, a report for another
    account is refused (400, field ``AccountSid``), and messages can be sent through
    the account (authenticated with the first secret)."""

    type: Literal["twilio"]
    # Twilio keeps a message in its queue at most 10 hours (ValidityPeriod up to 36,000 s)
    # and its callbacks usually follow within minutes.
    report_timeout_default: ClassVar[float] = 1800.0
    report_give_up_default: ClassVar[float] = 86400.0
    account_sid: Annotated[str, Field(pattern=ACCOUNT_SID)] | None = None
    send_requires: ClassVar[tuple[str, ...]] = ("account_sid", "secrets")

    @model_validator(mode="after")
    def _no_api_key(self) -> TwilioConfig:
        if self.api_key is not None:
            raise ValueError(
                "api_key: is not used by twilio: sends authenticate with account_sid and"
                " the Auth Token (the first of secrets)"
            )
        return self

    @field_validator("secrets")
    @classmethod
    def _auth_tokens(cls, secrets: list[str]) -> list[str]:
        for index, secret in enumerate(secrets):
            if secret != secret.strip():
                raise ValueError(f"secrets[{index}]: must not start or end with whitespace")
            if len(secret) < 16:
                raise ValueError(
                    f"secrets[{index}]: must be the Auth Token (32 characters), not a placeholder"
                )
        return secrets


class TwilioStatusCallback(BaseModel):
    """The parameters of one status callback that we read; all others are ignored."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)

    MessageSid: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{2,64}$")]
    MessageStatus: Word
    ErrorCode: Annotated[str, Field(max_length=64)] | None = None
    ErrorMessage: str | None = None
    ChannelStatusMessage: str | None = None
    AccountSid: Annotated[str, Field(max_length=64)] | None = None
    To: Annotated[str, Field(max_length=255)] | None = None


def normalize_to(value: str | None) -> str | None:
    """``To`` as E.164 with a leading ``+``; None when it is not a phone number.

    WhatsApp and RCS addresses lose their prefix (``whatsapp:+14155550100`` ->
    ``+14155550100``).
    """
    if not value:
        return None
    address = value.strip()
    for prefix in _PHONE_CHANNELS:
        address = address.removeprefix(prefix)
    return e164(address)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise PayloadInvalid("body", "is not valid JSON") from None
    if not isinstance(payload, dict):
        raise PayloadInvalid("body", "must be a JSON object")
    return payload


_READ = TwilioStatusCallback.model_fields.keys() | {"SmsSid", "SmsStatus"}


def _rfc2822(value: Any) -> Any:
    # Twilio writes its dates as RFC 2822 ("Thu, 24 Aug 2023 05:01:45 +0000"); "-0000"
    # (no zone committed to) comes back naive and is read as UTC.
    return parsedate_to_datetime(value) if isinstance(value, str) else value


class TwilioMessage(BaseModel):
    """A Message resource as the API answers it; only what we read."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    sid: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{2,64}$")]
    status: Word = "queued"
    to: str | None = None
    body: str | None = None
    date_created: Annotated[UtcDatetime, BeforeValidator(_rfc2822)] | None = None
    date_updated: Annotated[UtcDatetime, BeforeValidator(_rfc2822)] | None = None
    error_code: Annotated[str, Field(max_length=64)] | None = None
    error_message: str | None = None


class TwilioMessagePage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    messages: list[TwilioMessage]


class TwilioError(BaseModel):
    """An error answer: ``code`` (Twilio's error dictionary) and ``message``."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    code: str | None = None
    message: str | None = None


class TwilioSender(Sender):
    """The Programmable Messaging API, with ``StatusCallback`` pointing at us."""

    def __init__(self, name: str, config: TwilioConfig, public_base_url: str | None) -> None:
        base = str(config.api_base_url or API_BASE_URL).rstrip("/")
        self._messages_url = f"{base}/2010-04-01/Accounts/{config.account_sid}/Messages.json"
        credential = f"{config.account_sid}:{config.secrets[0]}"
        self._headers = {"authorization": basic_auth.header(credential), "accept": JSON}
        self._sender = config.sender
        self._status_callback = (
            f"{public_base_url.rstrip('/')}/webhooks/{name}" if public_base_url else None
        )

    def send_request(self, item: OutboxItem) -> httpx.Request:
        fields = {
            "To": item.to,
            "From": item.sender or self._sender,
            "Body": item.body,
            "StatusCallback": self._status_callback,
        }
        form = {key: value for key, value in fields.items() if value is not None}
        return httpx.Request("POST", self._messages_url, data=form, headers=self._headers)

    def lookup_request(self, item: OutboxItem) -> httpx.Request:
        since = item.created_at - CLOCK_SKEW
        fields = {
            "To": item.to,
            "From": item.sender or self._sender,
            "DateSent>": f"{since:%Y-%m-%d}",
            "PageSize": str(LOOKUP_PAGE_SIZE),
        }
        params = {key: value for key, value in fields.items() if value is not None}
        return httpx.Request("GET", self._messages_url, params=params, headers=self._headers)

    def read_accepted(self, response: httpx.Response) -> Accepted:
        message = TwilioMessage.model_validate_json(response.content)
        return Accepted(message.sid, message.status)

    def read_rejection(self, response: httpx.Response) -> Rejected:
        try:
            error = TwilioError.model_validate_json(response.content)
        except ValueError:
            error = TwilioError()
        text = error.message or ERROR_MESSAGES.get(error.code or "") or http_reason(response)
        return Rejected(error.code, text[:MAX_ERROR_MESSAGE])

    def read_found(self, item: OutboxItem, response: httpx.Response) -> Accepted | None:
        since = item.created_at - CLOCK_SKEW
        ours = [
            message
            for message in TwilioMessagePage.model_validate_json(response.content).messages
            if message.body == item.body
            and normalize_to(message.to) == item.to
            and message.date_created is not None
            and message.date_created >= since
        ]
        if not ours:
            return None
        first = min(ours, key=lambda message: (message.date_created, message.sid))
        return Accepted(first.sid, first.status)

    looks_up_status: ClassVar[bool] = True

    def status_request(self, message: Tracked) -> httpx.Request | None:
        """Fetch the Message resource by its SID (the SID is unknown until Twilio's
        answer to the send, or its first callback, named it)."""
        if message.provider_message_id is None:
            return None
        sid = quote(message.provider_message_id, safe="")
        url = self._messages_url.removesuffix(".json") + f"/{sid}.json"
        return httpx.Request("GET", url, headers=self._headers)

    def read_status(self, message: Tracked, response: httpx.Response, now: datetime) -> Report:
        found = TwilioMessage.model_validate_json(response.content)
        error_message = found.error_message or ERROR_MESSAGES.get(found.error_code or "")
        return lookup_report(
            message,
            found.sid,
            found.status,
            STATUS_MAP.get(found.status.lower()),
            occurred_at=found.date_updated or now,
            error_code=found.error_code,
            error_message=clipped_error(error_message),
        )


class TwilioProvider(Provider[TwilioConfig]):
    kind: ClassVar[str] = "twilio"
    error_label: ClassVar[str] = "Twilio"
    error_explanations: ClassVar[Mapping[str, str]] = ERROR_EXPLANATIONS
    media_types: ClassVar[frozenset[str]] = frozenset({FORM, JSON})
    # Twilio retries only a failed connection, once by default, at most 5 times with
    # #rc= (docs/providers/twilio.md): minutes.
    redelivery_horizon_days: ClassVar[int] = 1

    def verify(self, request: InboundRequest, now: float) -> None:
        # No timestamp is signed (``now`` unused): replays are harmless, the event id
        # and the merge rule make a repeated report a no-op.
        if request.media_type == JSON:
            twilio_signature.verify(
                request.url, request.headers, self.config.secrets, json_body=request.body
            )
        else:
            twilio_signature.verify(
                request.url,
                request.headers,
                self.config.secrets,
                params=request.form_params(),
            )

    def parse(self, request: InboundRequest) -> list[Report]:
        if request.media_type == JSON:
            fields: dict[str, Any] = _json_object(request.body)
        else:
            fields = single_values(request.form_params(), _READ)
        # Twilio may send a parameter with an empty value; empty means absent.
        fields = {key: blank_is_none(value) for key, value in fields.items()}
        # Older callbacks name the message and status SmsSid/SmsStatus only.
        if fields.get("MessageSid") is None and fields.get("SmsSid") is not None:
            fields["MessageSid"] = fields["SmsSid"]
        if fields.get("MessageStatus") is None and fields.get("SmsStatus") is not None:
            fields["MessageStatus"] = fields["SmsStatus"]
        try:
            callback = TwilioStatusCallback.model_validate(fields)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            field = ".".join(str(part) for part in error["loc"]) or "body"
            raise PayloadInvalid(field, str(error["msg"])) from None
        self._check_account(callback.AccountSid)
        word = callback.MessageStatus
        error_message = (
            callback.ErrorMessage
            or callback.ChannelStatusMessage
            or ERROR_MESSAGES.get(callback.ErrorCode or "")
        )
        return [
            Report(
                event_id=derived_event_id(callback.MessageSid, word, callback.ErrorCode),
                provider_message_id=callback.MessageSid,
                status=STATUS_MAP.get(word.lower()),
                provider_status=word,
                occurred_at=request.received_at,
                to=normalize_to(callback.To),
                error_code=callback.ErrorCode,
                error_message=clipped_error(error_message),
            )
        ]

    def sender(self, public_base_url: str | None = None) -> Sender | None:
        if not self.config.sends:
            return None
        return TwilioSender(self.name, self.config, public_base_url)

    def _check_account(self, account_sid: str | None) -> None:
        # A 400, not a 401: the signature verified (or verification is off on purpose),
        # so the request is authentic but not for this endpoint. Twilio does not retry
        # a 4xx, and the refusal shows in Twilio's debugger as a client error.
        expected = self.config.account_sid
        if expected is None:
            return
        if account_sid is None:
            raise PayloadInvalid("AccountSid", "is required when account_sid is configured")
        if account_sid != expected:
            raise PayloadInvalid("AccountSid", "is not the configured account_sid")

    def resign(
        self, request: WebhookRequest, *, public_base_url: str, now: float
    ) -> WebhookRequest:
        """X-Twilio-Signature recomputed for the new public URL (no time is signed). A
        JSON body keeps its ``bodySHA256`` query parameter; the URL alone is signed."""
        if self.config.insecure_no_signature:
            return request
        headers = resign_headers(request.headers, twilio_signature.SIGNATURE_HEADER)
        url = public_base_url.rstrip("/") + request.path
        try:
            algorithm = twilio_signature.algorithm_from_settings(
                headers.get(twilio_signature.SETTINGS_HEADER, "")
            )
        except SignatureError as exc:
            raise CannotResign(f"cannot re-sign: {exc.detail}") from None
        params: list[tuple[str, str]] = []  # as verify: only a form body's are signed
        if media_type_of(headers) == FORM:
            params = parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        headers[twilio_signature.SIGNATURE_HEADER] = twilio_signature.signature(
            self.config.secrets[0], url, params, algorithm=algorithm
        )
        return replace(request, headers=headers)


__all__ = [
    "ERROR_MESSAGES",
    "STATUS_MAP",
    "TwilioConfig",
    "TwilioProvider",
    "TwilioSender",
    "TwilioStatusCallback",
    "normalize_to",
]
