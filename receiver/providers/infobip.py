"""Type ``infobip``: Infobip SMS delivery reports, authenticated with HTTP Basic.

Documents followed (read 2026-11):

- "Receive outbound SMS message report" webhook
  (https://www.infobip.com/docs/api/channels/sms/sms-messaging/logs-and-status-reports/receive-outbound-sms-message-report):
  ``POST`` JSON ``{"results": [...]}``, by default up to 100 reports per request
  (``maxBucketSize`` of a subscription changes that); each report has ``bulkId``,
  ``messageId``, ``to``, ``sentAt``, ``doneAt`` (``yyyy-MM-dd'T'HH:mm:ss.SSSZ``, e.g.
  ``2019-11-09T16:00:00.000+0000``), ``smsCount`` (``messageCount`` in the newer
  channels' reports), ``price``, ``status`` and ``error`` objects, ``callbackData``,
  ``mccMnc``.
- "Response status and error codes"
  (https://www.infobip.com/docs/essentials/response-status-and-error-codes): every
  status is ``{groupId, groupName, id, name, description}``; the groups are PENDING (1),
  UNDELIVERABLE (2), DELIVERED (3), EXPIRED (4), REJECTED (5). Error ``{id: 0, name:
  NO_ERROR}`` (group 0, ``OK``) means no error.
- Subscriptions API, "Create security settings": webhook credentials are ``BASIC``
  (username + password), ``HMAC`` or ``OAUTH``. Only ``BASIC`` is implemented here.

Theory of operation
-------------------
Infobip puts no event id in a report, so one is derived from what identifies it:
``(messageId, status.id, error.id, doneAt)``. A redelivered batch therefore yields the
same ids and is recognised report by report.

The status comes from the status *name* first (the names say more than their groups:
``DELIVERED_TO_OPERATOR`` belongs to the DELIVERED group but only means the operator has
it, and ``PENDING_ENROUTE`` means the operator has it while ``PENDING_ACCEPTED`` means
Infobip still holds it), then from the group for names this table does not list. A
status in neither table maps to ``None`` and is kept, word and all, in the timeline.

Lookups of overdue messages (README "Missing reports"), with ``api_base_url`` (the account's
own base URL) and ``api_key``: "Get outbound SMS message logs"
(https://www.infobip.com/docs/api/channels/sms/logs-and-status-reports): ``GET
{base}/sms/1/logs?messageId=...``, ``Authorization: App {api_key}``, answers ``{"results":
[...]}`` of the report's shape above; logs cover the last 48 hours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

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
from receiver.core.signatures import basic_auth
from receiver.core.status import Status
from receiver.core.timestamps import as_utc
from receiver.errors import PayloadInvalid
from receiver.providers.base import (
    JSON,
    ApiClient,
    BasicAuthConfig,
    InboundRequest,
    Provider,
    Tracked,
    WebhookRequest,
    looked_up,
    payload_invalid,
    resign_basic_auth,
)
from receiver.providers.fields import MAX_ERROR_MESSAGE, Word

MAX_REPORTS = 1000
"""Reports accepted in one request: Infobip's default bucket is 100, and a subscription's
``maxBucketSize`` can raise it; ``max_body_bytes`` bounds the request anyway."""

# Status name -> our status (ids and groups of these names: ``KNOWN_STATUSES``).
STATUS_BY_NAME: dict[str, Status] = {
    "PENDING_ACCEPTED": Status.QUEUED,  # accepted, not yet sent to the operator
    "PENDING_ENROUTE": Status.SENT,  # forwarded to the operator
    "PENDING_WAITING_DELIVERY": Status.SENT,  # the operator acknowledged, DLR awaited
    "DELIVERED_TO_OPERATOR": Status.SENT,  # group DELIVERED, but only the operator has it
    "DELIVERED_TO_HANDSET": Status.DELIVERED,
    "UNDELIVERABLE_REJECTED_OPERATOR": Status.UNDELIVERED,
    "UNDELIVERABLE_NOT_DELIVERED": Status.UNDELIVERED,
    "EXPIRED_EXPIRED": Status.EXPIRED,
    "EXPIRED_DLR_UNKNOWN": Status.EXPIRED,  # final at Infobip: no DLR within validity
}

# Group name -> our status, for status names the table above does not list. DELIVERED
# is deliberately absent: its members range from "the operator has it" to "the handset
# has it", so an unlisted DELIVERED_* name is kept unmapped rather than guessed.
STATUS_BY_GROUP: dict[str, Status] = {
    "PENDING": Status.QUEUED,
    "UNDELIVERABLE": Status.UNDELIVERED,
    "EXPIRED": Status.EXPIRED,
    "REJECTED": Status.REJECTED,
}

GROUP_IDS: dict[str, int] = {
    "PENDING": 1,
    "UNDELIVERABLE": 2,
    "DELIVERED": 3,
    "EXPIRED": 4,
    "REJECTED": 5,
}

KNOWN_STATUSES: dict[str, tuple[int, str]] = {
    # name: (id, groupName), from "Response status and error codes" (general codes).
    # The REJECTED group's many names are mapped through their group.
    "PENDING_WAITING_DELIVERY": (3, "PENDING"),
    "PENDING_ENROUTE": (7, "PENDING"),
    "PENDING_ACCEPTED": (26, "PENDING"),
    "UNDELIVERABLE_REJECTED_OPERATOR": (4, "UNDELIVERABLE"),
    "UNDELIVERABLE_NOT_DELIVERED": (9, "UNDELIVERABLE"),
    "DELIVERED_TO_OPERATOR": (2, "DELIVERED"),
    "DELIVERED_TO_HANDSET": (5, "DELIVERED"),
    "EXPIRED_EXPIRED": (15, "EXPIRED"),
    "EXPIRED_DLR_UNKNOWN": (29, "EXPIRED"),
}

MAP_ERROR_IDS: dict[str, str] = {
    "EC_UNKNOWN_SUBSCRIBER": "1",
    "EC_UNIDENTIFIED_SUBSCRIBER": "5",
    "EC_ABSENT_SUBSCRIBER_SM": "6",
    "EC_ILLEGAL_SUBSCRIBER": "9",
    "EC_TELESERVICE_NOT_PROVISIONED": "11",
    "EC_ILLEGAL_EQUIPMENT": "12",
    "EC_CALL_BARRED": "13",
    "EC_FACILITY_NOT_SUPPORTED": "21",
    "EC_ABSENT_SUBSCRIBER": "27",
    "EC_SUBSCRIBER_BUSY_FOR_MT_SMS": "31",
    "EC_SM_DELIVERY_FAILURE": "32",
    "EC_MESSAGE_WAITING_LIST_FULL": "33",
    "EC_SYSTEM_FAILURE": "34",
    "EC_DATA_MISSING": "35",
    "EC_UNEXPECTED_DATA_VALUE": "36",
}
"""Infobip's names of the MAP codes: a report without ``error.id`` stores the name."""

NO_ERROR_ID = 0

_DONE_AT = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]{1,9}))?"
    r"(?P<offset>Z|[+-][0-9]{2}:?[0-9]{2})?"
)
Text = Annotated[str, Field(max_length=MAX_ERROR_MESSAGE)]


def parse_infobip_time(raw: str) -> datetime:
    """An Infobip timestamp (``2019-11-09T16:00:00.000+0000``) as aware UTC.

    Infobip always sends an offset; one without is taken as UTC. ValueError otherwise.
    """
    match = _DONE_AT.fullmatch(raw.strip())
    if match is None:
        raise ValueError("must look like 2019-11-09T16:00:00.000+0000")
    text = match["date"]
    if match["fraction"]:
        text += "." + match["fraction"][:6].ljust(6, "0")
    offset = match["offset"] or "Z"
    text += "+00:00" if offset == "Z" else offset[:3] + ":" + offset[-2:]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("is not a valid date and time") from None
    return as_utc(moment)


class InfobipConfig(BasicAuthConfig):
    """``[providers.NAME] type = "infobip"``: ``secrets`` are ``"user:password"``."""

    type: Literal["infobip"]
    lookup_requires: ClassVar[tuple[str, ...] | None] = ("api_base_url", "api_key")


class InfobipStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    group_name: Word | None = Field(default=None, alias="groupName")
    id: int | None = None
    name: Word


class InfobipError(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int | None = None
    name: Word | None = None
    description: Text | None = None

    @property
    def is_error(self) -> bool:
        return self.id != NO_ERROR_ID and self.name != "NO_ERROR"


class InfobipResult(BaseModel):
    """One report of the ``results`` array.

    Only the fields a report is built from are validated; ``bulkId``, ``sentAt``,
    ``price``, ``smsCount``, ``callbackData``, ``mccMnc``, ... are left to the stored raw
    body, so a change in one of them never turns a report away.
    """

    model_config = ConfigDict(extra="ignore")

    message_id: Annotated[str, Field(min_length=1, max_length=255)] = Field(alias="messageId")
    to: Annotated[str, Field(max_length=64)] | None = None
    done_at: str | None = Field(default=None, alias="doneAt")
    status: InfobipStatus
    error: InfobipError | None = None
    mcc_mnc: Any = Field(default=None, alias="mccMnc")
    """Read leniently (``receiver.core.network.network_code``): never a reason to refuse."""

    @field_validator("done_at")
    @classmethod
    def _done_at(cls, value: str | None) -> str | None:
        if value is not None:
            parse_infobip_time(value)
        return value


class InfobipPayload(BaseModel):
    """The body of an Infobip delivery-report webhook."""

    model_config = ConfigDict(extra="ignore")

    results: Annotated[list[InfobipResult], Field(min_length=1, max_length=MAX_REPORTS)]


def map_status(status: InfobipStatus) -> Status | None:
    """Our status for an Infobip status object: by name, else by group, else None."""
    by_name = STATUS_BY_NAME.get(status.name.upper())
    if by_name is not None:
        return by_name
    return STATUS_BY_GROUP.get((status.group_name or "").upper())


def _payload_invalid(exc: ValidationError) -> PayloadInvalid:
    error = exc.errors(include_url=False)[0]
    if error["type"] == "json_invalid":
        return PayloadInvalid("body", "is not valid JSON")
    if error["type"] == "model_type" and not error["loc"]:
        return PayloadInvalid("body", "must be a JSON object with a results array")
    return payload_invalid(exc)


class InfobipLogs(BaseModel):
    """The answer of "Get outbound SMS message logs": reports in the webhook's shape."""

    model_config = ConfigDict(extra="ignore")

    results: list[InfobipResult]


class InfobipStatusLookup(ApiClient):
    """``GET {api_base_url}/sms/1/logs?messageId=...`` with ``Authorization: App
    {api_key}`` (docs/providers/infobip.md, "Lookups"). Logs, not ``/sms/1/reports``:
    a report fetched there is gone for every other reader, logs may be read again."""

    looks_up_status: ClassVar[bool] = True

    def __init__(self, config: InfobipConfig) -> None:
        self._logs_url = str(config.api_base_url).rstrip("/") + "/sms/1/logs"
        self._headers = {"authorization": f"App {config.api_key}", "accept": JSON}

    def status_request(self, message: Tracked) -> httpx.Request | None:
        if message.provider_message_id is None:
            return None
        params = {"messageId": message.provider_message_id}
        return httpx.Request("GET", self._logs_url, params=params, headers=self._headers)

    def read_status(
        self, message: Tracked, response: httpx.Response, now: datetime
    ) -> Report | None:
        logs = InfobipLogs.model_validate_json(response.content).results
        ours = next((r for r in logs if r.message_id == message.provider_message_id), None)
        if ours is None:  # logs keep 48 hours: an older message is not found
            return None
        return looked_up(message, InfobipProvider._report(ours, now))


class InfobipProvider(Provider[InfobipConfig]):
    kind: ClassVar[str] = "infobip"
    error_label: ClassVar[str] = "Infobip"
    error_explanations: ClassVar[Mapping[str, str]] = GSM_MAP
    media_types: ClassVar[frozenset[str]] = frozenset({JSON})

    @classmethod
    def explain_error(cls, code: str) -> str | None:
        """A MAP error id, or its name (stored when a report has no ``error.id``)."""
        return super().explain_error(MAP_ERROR_IDS.get(code.upper(), code))

    def verify(self, request: InboundRequest, now: float) -> None:
        basic_auth.verify(request.headers, self.config.secrets)

    def parse(self, request: InboundRequest) -> list[Report]:
        try:
            payload = InfobipPayload.model_validate_json(request.body)
        except ValidationError as exc:
            raise _payload_invalid(exc) from None
        return [self._report(item, request.received_at) for item in payload.results]

    @staticmethod
    def _report(item: InfobipResult, received_at: datetime) -> Report:
        error = item.error if item.error is not None and item.error.is_error else None
        error_code: str | None = None
        error_message: str | None = None
        if error is not None:
            error_code = str(error.id) if error.id is not None else error.name
            error_message = error.name if error.id is not None else error.description
        status_key = str(item.status.id) if item.status.id is not None else item.status.name
        error_key = None if item.error is None or item.error.id is None else str(item.error.id)
        occurred_at = parse_infobip_time(item.done_at) if item.done_at else received_at
        return Report(
            event_id=derived_event_id(item.message_id, status_key, error_key, item.done_at),
            provider_message_id=item.message_id,
            status=map_status(item.status),
            provider_status=item.status.name,
            occurred_at=occurred_at,
            to=e164(item.to),
            error_code=error_code,
            error_message=error_message,
            network=network_code(item.mcc_mnc),
        )

    def status_client(self) -> ApiClient | None:
        if self.config.api_base_url is None or not self.config.api_key:
            return None
        return InfobipStatusLookup(self.config)

    def resign(
        self, request: WebhookRequest, *, public_base_url: str, now: float
    ) -> WebhookRequest:
        """The Authorization header of the first credential."""
        return resign_basic_auth(request, self.config)


__all__ = [
    "GROUP_IDS",
    "KNOWN_STATUSES",
    "STATUS_BY_GROUP",
    "STATUS_BY_NAME",
    "InfobipConfig",
    "InfobipPayload",
    "InfobipProvider",
    "map_status",
    "parse_infobip_time",
]
