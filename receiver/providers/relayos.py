"""Type ``relayos``: WhatsApp template messages through RelayOS (not SMS).

RelayOS (https://docs.relayos.com.br) sends approved Meta WhatsApp templates through
Meta's Cloud API, for Brazil. Followed (2026-12; the pages and every choice are in
docs/providers/relayos.md):

- "Webhooks" (guides/webhooks): one ``callbackUrl`` per project, set with
  ``PUT /v1/projects/me/meta-credentials``; RelayOS POSTs JSON on every status change,
  ``{event, message_id, to, template, status, meta_message_id, occurred_at}``, events
  ``message.sent|delivered|read|failed`` with ``status`` SENT/DELIVERED/READ/FAILED.
  There is no event id and **no signature**: reports are guarded by ``url_token``
  (and/or ``allowed_ips``) at the webhook edge, and the event id is derived from
  (``message_id``, ``status``, ``occurred_at``).
- "Send a message" (api-reference/messages/send, guides/send-message) and "Use
  idempotency keys": ``POST /v1/messages`` with ``Authorization: Bearer rly_live_...``,
  ``Idempotency-Key`` and JSON ``{to, template, language, variables}``; the answer (200
  on one page, 202 on the other: any 2xx is taken) is ``{id, status, to, template,
  queuedAt}``. A repeated key gets the stored answer, same status code and id, and
  queues nothing, even when the body differs. Keys last 24 hours (one page) or for
  ever (another): we take 24 hours.
- "Get a message" (api-reference/messages/get): ``GET /v1/messages/{id}`` needs
  RelayOS's id, which we learn only from an answer, so it cannot settle a send whose
  answer was lost; a resend under the same key does (RelayOS answers with the
  original). ``GET /v1/messages`` lists every message of the project, with no filter
  and nothing of ours to match on, so it is not used either.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator

from receiver.core.phone import e164
from receiver.core.reports import Report, derived_event_id
from receiver.core.status import Status
from receiver.core.timestamps import as_utc
from receiver.errors import PayloadInvalid
from receiver.providers.base import (
    JSON,
    Accepted,
    Content,
    InboundRequest,
    Provider,
    ProviderConfig,
    Rejected,
    Sender,
    WebhookRequest,
    http_reason,
    payload_invalid,
)
from receiver.providers.fields import MAX_ERROR_MESSAGE, Word
from receiver.records import OutboxItem, Template

API_BASE_URL = "https://api.relayos.com.br"
KEY_LIFETIME = timedelta(hours=24)
"""How long RelayOS keeps an ``Idempotency-Key``: "deduplicated for 24 hours" (API
reference). The guide's "permanent token" is the longer promise; 24 h is the safe one."""
EVENT_PREFIX = "message."

# RelayOS's word -> ours ("Get a message", status lifecycle; the webhook's ``status``).
# READ comes after DELIVERED: a message read on the handset was delivered to it.
# Any other word is kept in the timeline with status None and changes nothing.
STATUS_MAP: dict[str, Status] = {
    "QUEUED": Status.QUEUED,
    "SENT": Status.SENT,
    "DELIVERED": Status.DELIVERED,
    "READ": Status.DELIVERED,
    "FAILED": Status.FAILED,
}

# "All RelayOS API keys begin with the prefix rly_live_" (authentication page).
_API_KEY = re.compile(r"rly_live_[A-Za-z0-9_-]{8,256}")
# Meta's rules for templates, which RelayOS passes on: names of "lowercase letters,
# numbers, and underscores only" (templates/create), languages such as pt_BR, en_US, en.
_TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,128}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
# "Keys are string integers starting at "1"", one per {{1}}, {{2}}, ... placeholder.
_PLACEHOLDER = re.compile(r"[1-9][0-9]{0,2}")


class RelayOSConfig(ProviderConfig):
    """``[providers.NAME] type = "relayos"``: ``url_token`` (and/or ``allowed_ips``)
    guards the reports; ``api_key`` (``rly_live_...``) sends through the project."""

    type: Literal["relayos"]
    send_requires: ClassVar[tuple[str, ...]] = ("api_key",)
    signed_reports: ClassVar[bool] = False

    secrets_refused: ClassVar[str | None] = (
        "RelayOS signs no reports, so a secret would verify nothing:"
        " set url_token (and/or allowed_ips) instead"
    )

    @field_validator("sender")
    @classmethod
    def _no_sender(cls, sender: str | None) -> str | None:
        if sender is not None:
            raise ValueError(
                "RelayOS sends from the project's WhatsApp number (its"
                " metaPhoneNumberId); remove sender"
            )
        return sender

    @field_validator("api_key")
    @classmethod
    def _relayos_key(cls, key: str | None) -> str | None:
        # Anything else would only show as a 401 at the first send.
        if key is not None and not _API_KEY.fullmatch(key):
            raise ValueError("must be a RelayOS API key (rly_live_...)")
        return key

    @field_validator("api_base_url")
    @classmethod
    def _host_only(cls, url: HttpUrl | None) -> HttpUrl | None:
        if url is not None and (url.path or "").rstrip("/").endswith("/v1"):
            raise ValueError(
                "must be the host without the version prefix"
                " (e.g. https://api.relayos.com.br): /v1/messages is added to it"
            )
        return url


class RelayOSEvent(BaseModel):
    """One status callback; ``template`` and unknown fields stay in the stored body."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event: Word | None = None
    message_id: Annotated[str, Field(min_length=1, max_length=255)]
    status: Word | None = None
    to: Annotated[str, Field(max_length=64)] | None = None
    meta_message_id: Annotated[str, Field(max_length=512)] | None = None
    occurred_at: Annotated[str, Field(max_length=64)] | None = None

    @property
    def word(self) -> str | None:
        """The status as RelayOS wrote it: ``status``, else the noun of ``event``
        ("Mirrors the event field in upper-case noun form")."""
        if self.status is not None:
            return self.status
        if self.event is not None and self.event.startswith(EVENT_PREFIX):
            return self.event.removeprefix(EVENT_PREFIX).upper() or None
        return None


def parse_occurred_at(raw: str) -> datetime:
    """``occurred_at`` ("ISO 8601 UTC timestamp", ``2026-05-14T14:22:10Z``) as aware UTC;
    one written without an offset is UTC, as documented. ValueError otherwise."""
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError("must be an ISO 8601 date and time, e.g. 2026-05-14T14:22:10Z") from None
    return as_utc(moment)  # ValueError outside the storable range


class RelayOSMessage(BaseModel):
    """A message as the API answers it (the send's answer): ``id`` and ``status``."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: Annotated[str, Field(min_length=1, max_length=255)]
    status: Word = "QUEUED"


def error_text(response: httpx.Response) -> tuple[str | None, str]:
    """(code, message) of an error answer. RelayOS documents no error body, so the
    usual shapes are read (``{"code", "message"}``, ``{"error": "..."}``, ``{"error":
    {"code", "message"}}``), else the HTTP status line. Never raises."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    code = message = None
    if isinstance(body, dict):
        raw_code, raw_message = body.get("code"), body.get("message") or body.get("error")
        code = str(raw_code)[:64] if isinstance(raw_code, str | int) else None
        message = raw_message if isinstance(raw_message, str) and raw_message else None
    return code, (message or http_reason(response))[:MAX_ERROR_MESSAGE]


class RelayOSSender(Sender):
    """``POST {api_base_url}/v1/messages`` with our message id as the Idempotency-Key."""

    idempotency_lifetime: ClassVar[timedelta | None] = KEY_LIFETIME

    def __init__(self, config: RelayOSConfig) -> None:
        base = str(config.api_base_url or API_BASE_URL).rstrip("/")
        self._messages_url = f"{base}/v1/messages"
        self._headers = {"authorization": f"Bearer {config.api_key}", "accept": JSON}

    def send_request(self, item: OutboxItem) -> httpx.Request:
        # The key is our message id: unique per message, so RelayOS can never answer
        # one message with another's ("Never reuse an idempotency key for a different
        # message"), and the same on every attempt at it.
        payload: dict[str, Any] = {"to": item.to}
        if item.template is not None:  # always, for a message accepted for relayos
            payload["template"] = item.template.id
            if item.template.language is not None:
                payload["language"] = item.template.language
            if item.template.variables:
                payload["variables"] = dict(item.template.variables)
        headers = {**self._headers, "idempotency-key": item.message_id}
        return httpx.Request("POST", self._messages_url, json=payload, headers=headers)

    def lookup_request(self, item: OutboxItem) -> None:
        # GET /v1/messages/{id} takes RelayOS's id, unknown until an answer arrives, and
        # GET /v1/messages lists the whole project with nothing of ours in it. A resend
        # under the same Idempotency-Key settles the doubt instead.
        return None

    def read_accepted(self, response: httpx.Response) -> Accepted:
        message = RelayOSMessage.model_validate_json(response.content)
        return Accepted(message.id, message.status)

    def read_rejection(self, response: httpx.Response) -> Rejected:
        return Rejected(*error_text(response))

    def read_found(self, item: OutboxItem, response: httpx.Response) -> Accepted | None:
        raise NotImplementedError("relayos makes no lookups (lookup_request is None)")


class RelayOSProvider(Provider[RelayOSConfig]):
    kind: ClassVar[str] = "relayos"
    error_label: ClassVar[str] = "RelayOS"
    media_types: ClassVar[frozenset[str]] = frozenset({JSON})
    send_content: ClassVar[frozenset[Content]] = frozenset({"template"})

    def check_sender(self, sender: str) -> None:
        raise ValueError(
            f"is not taken: {self.kind} always sends from the project's WhatsApp number"
        )

    def verify(self, request: InboundRequest, now: float) -> None:
        # RelayOS signs nothing; the webhook edge has already checked url_token and
        # allowed_ips (one of them is required by RelayOSConfig).
        return None

    def parse(self, request: InboundRequest) -> list[Report]:
        try:
            callback = RelayOSEvent.model_validate_json(request.body)
        except ValidationError as exc:
            raise payload_invalid(exc) from None
        word = callback.word
        if word is None:
            raise PayloadInvalid("status", "is required (or an event message.*)")
        occurred_at = request.received_at
        if callback.occurred_at is not None:
            try:
                occurred_at = parse_occurred_at(callback.occurred_at)
            except ValueError as exc:
                raise PayloadInvalid("occurred_at", str(exc)) from None
        # No event id: one from what identifies the report. occurred_at is normalized,
        # so a redelivery that writes the same moment differently is still a duplicate;
        # without it, the same status of the same message is the same report.
        stamp = None if callback.occurred_at is None else occurred_at.isoformat()
        return [
            Report(
                event_id=derived_event_id(callback.message_id, word, stamp),
                provider_message_id=callback.message_id,
                status=STATUS_MAP.get(word.upper()),
                provider_status=word,
                occurred_at=occurred_at,
                to=e164(callback.to),
            )
        ]

    def resign(
        self, request: WebhookRequest, *, public_base_url: str, now: float
    ) -> WebhookRequest:
        """Unchanged: nothing is signed (``replay --resign`` restores the url_token)."""
        return request

    def sender(self, public_base_url: str | None = None) -> Sender | None:
        if not self.config.sends:
            return None
        return RelayOSSender(self.config)

    def check_template(self, template: Template) -> None:
        if not _TEMPLATE_NAME.fullmatch(template.id):
            raise ValueError(
                "id: must be the approved template's name (lowercase letters, digits and"
                " underscores, e.g. lembrete_consulta)"
            )
        if template.language is None:
            raise ValueError(
                "language: is required by RelayOS: the language the template was approved"
                " in, e.g. pt_BR"
            )
        if not _LANGUAGE.fullmatch(template.language):
            raise ValueError(
                f"language: {template.language!r} is not a template language code such as"
                " pt_BR or en_US (an underscore, not a hyphen)"
            )
        for name in template.variables:
            if not _PLACEHOLDER.fullmatch(name):
                raise ValueError(
                    f"variables: {name!r} is not a placeholder number: RelayOS fills"
                    ' {{1}}, {{2}}, ... from the keys "1", "2", ...'
                )


__all__ = [
    "API_BASE_URL",
    "KEY_LIFETIME",
    "STATUS_MAP",
    "RelayOSConfig",
    "RelayOSEvent",
    "RelayOSProvider",
    "RelayOSSender",
    "error_text",
    "parse_occurred_at",
]
