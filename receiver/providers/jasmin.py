"""Type ``jasmin``: Jasmin SMS Gateway delivery receipts (DLRs) thrown over HTTP.

Documents followed (read 2026-11):

- Jasmin's "Receiving DLR" (``misc/doc/sources/apis/ja-http/receiving-dlr.rst`` in
  jookies/jasmin): the DLR goes to the ``dlr-url`` given when sending, by ``GET`` (query)
  or ``POST`` (``application/x-www-form-urlencoded``) as ``dlr-method`` says. Level 1
  (SMS-C level) carries ``id``, ``message_status`` (an ``ESME_*`` SMPP command status) and
  ``level``; levels 2 and 3 (terminal) add ``id_smsc``, ``sub``, ``dlvrd``, ``subdate``
  and ``donedate`` (``YYMMDDhhmm``), ``err`` and ``text`` (first 20 characters).
- Jasmin's ``DLRThrower`` (``jasmin/routing/throwers.py``): the receiver must answer 200
  with a body that is exactly ``ACK/Jasmin`` (surrounding whitespace stripped); anything
  else is retried ``max_retries`` times (default 3), ``retry_delay`` seconds apart
  (default 30), except a ``404 Not Found``, after which Jasmin gives up at once.
- ``DLRContentForHttpapi`` (``jasmin/managers/content.py``): a terminal receipt's status
  is one of ``DELIVRD EXPIRED DELETED UNDELIV ACCEPTD UNKNOWN REJECTD`` (SMPP 3.4
  appendix B); ``ENROUTE`` is mapped too, for gateways that pass it on.

Jasmin signs nothing. Requests are authenticated with HTTP Basic credentials
(``secrets = ["user:password"]``) and/or the provider's ``allowed_ips``, which the HTTP
edge checks before ``verify``.

Theory of operation
-------------------
The two vocabularies do not overlap, so the status is read from the word alone:
``ESME_ROK`` is ``sent`` and any other ``ESME_R*`` command status ``failed`` (the SMS-C
refused the submit); the SMPP receipt states map through ``STATUS``. A receipt has no
event id, so one is derived from ``(id, level, message_status, donedate)``.
``donedate`` has no time zone; it is read as UTC.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from receiver.core.error_codes import SMPP_COMMAND_STATUS, SMSC_SPECIFIC
from receiver.core.reports import Outcome, Report, derived_event_id
from receiver.core.signatures import basic_auth
from receiver.core.status import SMPP_RECEIPT_STATES, Status
from receiver.core.timestamps import as_utc
from receiver.providers.base import (
    FORM,
    Answer,
    BasicAuthConfig,
    InboundRequest,
    Provider,
    WebhookRequest,
    payload_invalid,
    resign_basic_auth,
    single_values,
)
from receiver.providers.fields import Word

ACK = b"ACK/Jasmin"
"""The exact body Jasmin's DLRThrower needs to stop resending a receipt."""

STATUS: dict[str, Status] = {
    # Level 1: the submit_sm_resp command status.
    "ESME_ROK": Status.SENT,
    # Levels 2 and 3: the SMPP delivery receipt's ``stat``.
    **SMPP_RECEIPT_STATES,
}

SMPP_ERROR = re.compile(r"ESME_R[A-Z0-9_]+")
"""Every SMPP command status but ESME_ROK is an error (SMPP 3.4, section 5.1.3)."""

FIELDS: frozenset[str] = frozenset({"id", "level", "message_status", "donedate", "err"})
"""The parameters a report is built from. The others Jasmin sends (``id_smsc``, ``sub``,
``dlvrd``, ``subdate``, ``text``) and any of the dlr-url's own are left to the raw request."""
_SMPP_DATE = re.compile(r"([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})?")
_NO_ERROR = re.compile(r"0*")
_SMSC_ERROR = re.compile(r"[0-9A-Fa-f]{1,8}")
"""A receipt's ``err``: the SMS-C's or the network's own code, in hex or decimal."""


def parse_smpp_date(raw: str) -> datetime:
    """``YYMMDDhhmm`` (or ``YYMMDDhhmmss``) as a UTC datetime in 2000-2099.

    SMPP receipts carry no time zone; the SMS-C's local time is unknowable, so UTC it is.
    """
    match = _SMPP_DATE.fullmatch(raw)
    if match is None:
        raise ValueError("must be YYMMDDhhmm")
    year, month, day, hour, minute, second = (int(part or 0) for part in match.groups())
    try:
        return as_utc(datetime(2000 + year, month, day, hour, minute, second))
    except ValueError:
        raise ValueError("is not a valid date and time") from None


def map_status(word: str) -> Status | None:
    """Our status for a Jasmin ``message_status``, None for a word no table knows."""
    status = STATUS.get(word)
    if status is None and SMPP_ERROR.fullmatch(word):
        return Status.FAILED
    return status


class JasminConfig(BasicAuthConfig):
    """``[providers.NAME] type = "jasmin"``: ``secrets`` are ``"user:password"``."""

    type: Literal["jasmin"]
    # SMPP delivery receipts often come hours late (the SMSC retries a busy handset).
    report_timeout_default: ClassVar[float] = 7200.0


Param = Annotated[str, Field(max_length=255)]


class JasminReceipt(BaseModel):
    """One DLR's parameters (query or form)."""

    model_config = ConfigDict(extra="ignore")

    id: Annotated[str, Field(min_length=1, max_length=255)]
    level: Literal["1", "2", "3"]
    message_status: Word
    donedate: Param | None = None
    err: Param | None = None

    @field_validator("id", "message_status")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.isprintable():
            raise ValueError("must not contain control characters")
        return value

    @field_validator("donedate")
    @classmethod
    def _donedate(cls, value: str | None) -> str | None:
        if value:
            parse_smpp_date(value)
        return value or None


class JasminProvider(Provider[JasminConfig]):
    kind: ClassVar[str] = "jasmin"
    error_label: ClassVar[str] = "SMPP"
    media_types: ClassVar[frozenset[str]] = frozenset({FORM})
    methods: ClassVar[frozenset[str]] = frozenset({"GET", "POST"})
    # Jasmin's DLRThrower: max_retries 3, retry_delay 30 s by default (docs/providers/jasmin.md).
    redelivery_horizon_days: ClassVar[int] = 1

    @classmethod
    def explain_error(cls, code: str) -> str | None:
        """A refused submit's command status (``ESME_R*``, any case), or a receipt's
        ``err``, whose meaning depends on the operator (``SMSC_SPECIFIC``)."""
        named = SMPP_COMMAND_STATUS.get(code.upper())
        if named is not None:
            return named
        return SMSC_SPECIFIC if _SMSC_ERROR.fullmatch(code) else None

    def verify(self, request: InboundRequest, now: float) -> None:
        basic_auth.verify(request.headers, self.config.secrets)

    def parse(self, request: InboundRequest) -> list[Report]:
        try:
            receipt = JasminReceipt.model_validate(single_values(request.params(), FIELDS))
        except ValidationError as exc:
            raise payload_invalid(exc) from None
        word = receipt.message_status
        status = map_status(word)
        error_code: str | None = None
        if receipt.err and not _NO_ERROR.fullmatch(receipt.err):
            error_code = receipt.err
        elif status is Status.FAILED and SMPP_ERROR.fullmatch(word):
            error_code = word  # a refused submit: the command status is the error
        occurred_at = parse_smpp_date(receipt.donedate) if receipt.donedate else request.received_at
        return [
            Report(
                event_id=derived_event_id(receipt.id, receipt.level, word, receipt.donedate),
                provider_message_id=receipt.id,
                status=status,
                provider_status=word,
                occurred_at=occurred_at,
                error_code=error_code,
            )
        ]

    def answer(self, outcome: Outcome) -> Answer:
        """Jasmin resends a receipt unless the body is exactly ``ACK/Jasmin``."""
        return Answer(200, ACK, "text/plain")

    def resign(
        self, request: WebhookRequest, *, public_base_url: str, now: float
    ) -> WebhookRequest:
        """The Authorization header of the first credential."""
        return resign_basic_auth(request, self.config)


__all__ = [
    "ACK",
    "STATUS",
    "JasminConfig",
    "JasminProvider",
    "JasminReceipt",
    "map_status",
    "parse_smpp_date",
]
