"""``POST /v1/messages``: accept a message to send (README "Sending").

Order of checks: token and role (401, 403), the client's rate (429), content type and
size (415, 413), the Idempotency-Key header (400), the body (400 if not JSON, 422 if
invalid), a key or a ``client_reference`` (400), the provider (422), the same key in
flight in any process (409; claimed with the rate's count, ``services.admission``).
Then one transaction commits the message (``queued``), its outbox row and the key's
answer and settles the claim, or finds the key's stored answer (a replay; 422 for a
different request) or the ``client_reference`` already used (409 with
``existing_message_id``). The outbox worker sends the message later.

Expired keys are deleted by ``prune_idempotency_keys``, a task of the app's lifespan.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import UTC, datetime, timedelta

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from starlette.requests import Request
from starlette.responses import Response

from receiver.config import Config
from receiver.core import idempotency
from receiver.core.phone import E164_PATTERN, valid_e164
from receiver.core.segments import MAX_SEGMENTS, Encoding, count_segments
from receiver.errors import (
    BadRequest,
    PayloadInvalid,
    StoreUnavailable,
    Unprocessable,
    UnsupportedMediaType,
)
from receiver.http.staff import authenticate
from receiver.http.webhooks import read_body
from receiver.providers.base import JSON, Provider, media_type_of, payload_invalid
from receiver.records import MessageRecord, NewSend, SendAnswer, StaffMember, Template
from receiver.services.admission import Ticket
from receiver.services.schemas import MessageOut, SentMessage
from receiver.services.state import AppState
from receiver.store.base import Store

log = logging.getLogger("receiver.sends")

PRUNE_EVERY_SECONDS = 60.0


class TemplateRequest(BaseModel):
    """An approved template to send instead of a body (README "Sending")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=128, description="The provider's template id.")
    language: str | None = Field(
        default=None,
        min_length=2,
        max_length=16,
        description="The template's language where the provider asks for one, e.g. pt_BR.",
    )
    variables: dict[str, str] = Field(
        default_factory=dict,
        max_length=100,
        description='Values for its placeholders by name, e.g. {"1": "Maria"}.',
    )

    def as_template(self) -> Template:
        return Template(self.id, self.language, dict(self.variables))


class SendRequest(BaseModel):
    """The body of ``POST /v1/messages``; unknown keys are refused."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"oneOf": [{"required": ["body"]}, {"required": ["template"]}]},
    )

    provider: str | None = Field(
        default=None,
        description="The configured provider to send through; optional when only one can.",
    )
    to: str = Field(
        description="The recipient in E.164 form, e.g. +639171234567.",
        json_schema_extra={"pattern": E164_PATTERN},  # checked, and said better, by _e164
    )
    body: str | None = Field(
        default=None,
        min_length=1,
        description=f"The text: at most {MAX_SEGMENTS} SMS segments (GSM-7: 153 characters"
        " each, extension characters such as € count 2; UCS-2: 67 UTF-16 code units each)."
        " Either body or template.",
    )
    template: TemplateRequest | None = Field(
        default=None,
        description="An approved template instead of a body, for providers that send"
        " templates (futuresms, relayos).",
    )
    sender: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="An alphanumeric sender id (up to 11 characters) or a number, or what"
        " the provider's type takes instead (Txtly: a sender identity's UUID);"
        " default: the provider's configured sender.",
    )
    client_reference: str | None = Field(
        default=None,
        description="Your reference for this message, 12-128 characters after trimming,"
        " unique per client token.",
    )

    @field_validator("to")
    @classmethod
    def _e164(cls, value: str) -> str:
        return valid_e164(value)

    @model_validator(mode="after")
    def _body_or_template(self) -> SendRequest:
        if self.body is None and self.template is None:
            raise ValueError("body: is required")
        if self.body is not None and self.template is not None:
            raise ValueError("template: send a body or a template, not both")
        return self

    @field_validator("body")
    @classmethod
    def _at_most_max_segments(cls, value: str | None) -> str | None:
        if value is None:
            return None
        split = count_segments(value)
        if split.segments > MAX_SEGMENTS:
            raise ValueError(
                f"takes {split.segments} SMS segments in {split.encoding};"
                f" at most {MAX_SEGMENTS} are allowed"
            )
        return value

    @field_validator("client_reference")
    @classmethod
    def _trimmed_reference(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not 12 <= len(value) <= 128:
            raise ValueError(f"must be 12-128 characters after trimming; it has {len(value)}")
        return value


async def send_message(request: Request) -> Response:
    """Accept a message to send: 202 with the queued message, or the key's stored answer."""
    member = await authenticate(request, "sender")
    state: AppState = request.app.state.receiver
    header = request.headers.get(idempotency.HEADER)
    try:
        key = None if header is None else idempotency.parse_key(header)
    except BadRequest:
        await state.admission.count(member)  # the rate first, as for any request
        raise
    async with state.admission.admitted(member, key) as ticket:
        answer = await _accept(request, state, member, key, ticket)
    headers = dict(ticket.rate_fields)
    if answer.message_id is not None:
        headers["Location"] = f"/v1/messages/{answer.message_id}"
    if answer.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(answer.body, answer.status_code, headers, media_type=JSON)


async def _accept(
    request: Request, state: AppState, member: StaffMember, key: str | None, ticket: Ticket
) -> SendAnswer:
    """Validate the send and commit it, settling ``ticket``'s claim on the key (or find
    the key's stored answer)."""
    send = await _read_send(request, state.config.settings.max_body_bytes)
    if key is None and send.client_reference is None:
        raise BadRequest(
            f"send an {idempotency.HEADER} header or a client_reference, so that a retry"
            " cannot send the message twice",
            code="IDEMPOTENCY_KEY_MISSING",
            field=idempotency.HEADER,
        )
    provider = _sending_provider(state.config, send.provider)
    template = _fitting_content(provider, send)
    split = None if send.body is None else count_segments(send.body)
    now = datetime.now(UTC)
    new = NewSend(
        client_id=member.id,
        provider=provider.name,
        to=send.to,
        body=send.body,
        template=template,
        sender=send.sender or provider.config.sender,
        client_reference=send.client_reference,
        segments=None if split is None else split.segments,
        idempotency_key=key,
        fingerprint=None
        if key is None
        else idempotency.fingerprint(
            request.method, request.url.path, send.model_dump(mode="json", exclude_none=True)
        ),
        key_expires_at=now + timedelta(seconds=state.config.settings.idempotency_ttl_seconds),
        now=now,
        claim_token=None if ticket.claim is None else ticket.claim.token,
    )
    ticket.check_key()
    answer = await state.store.create_send(
        new, functools.partial(_accepted, encoding=None if split is None else split.encoding)
    )
    if not answer.replayed:
        log.info(
            "accepted a message to send",
            extra={"message_id": answer.message_id, "provider": provider.name},
        )
    return answer


async def _read_send(request: Request, limit: int) -> SendRequest:
    """The validated body: 415 unless JSON, 413 over ``limit`` bytes, 400 if it does not
    parse, 422 naming the first invalid field."""
    if media_type_of(request.headers) != JSON:
        raise UnsupportedMediaType(f"send the message as {JSON}")
    body = await read_body(request, limit)
    try:
        return SendRequest.model_validate_json(body)
    except ValidationError as exc:
        if exc.errors(include_url=False)[0]["type"] == "json_invalid":
            raise PayloadInvalid("body", "is not valid JSON") from None
        invalid = payload_invalid(exc)
        raise Unprocessable(invalid.detail, code="REQUEST_INVALID", field=invalid.field) from None


def _sending_provider(config: Config, name: str | None) -> Provider:
    """The provider named, or the only one that can send when none is; 422 otherwise."""
    senders = sorted(n for n, p in config.providers.items() if p.config.sends)
    if name is None:
        if len(senders) == 1:
            return config.providers[senders[0]]
        detail = (
            f"name the provider: several can send ({', '.join(senders)})"
            if senders
            else "no configured provider can send (none has api_base_url and its credentials)"
        )
        code = "PROVIDER_REQUIRED" if senders else "PROVIDER_CANNOT_SEND"
        raise Unprocessable(detail, code=code, field="provider")
    if name not in config.providers:
        raise Unprocessable(
            f"provider: no provider named {name!r} is configured",
            code="PROVIDER_UNKNOWN",
            field="provider",
        )
    if name not in senders:
        raise Unprocessable(
            f"provider: {name!r} cannot send (its type cannot, or it has no api_base_url"
            " and credentials in the config)",
            code="PROVIDER_CANNOT_SEND",
            field="provider",
        )
    return config.providers[name]


def _fitting_content(provider: Provider, send: SendRequest) -> Template | None:
    """The send's template, once its content (and sender) fits what ``provider`` sends;
    422 naming the field otherwise."""
    kind = provider.kind
    if send.sender is not None:
        try:
            provider.check_sender(send.sender)
        except ValueError as exc:
            raise Unprocessable(
                f"sender: {exc} (provider {provider.name!r}, type {kind})",
                code="REQUEST_INVALID",
                field="sender",
            ) from None
    if send.template is None:
        if "body" not in provider.send_content:
            raise Unprocessable(
                f"body: provider {provider.name!r} (type {kind}) sends only templates:"
                " send a template instead",
                code="REQUEST_INVALID",
                field="body",
            )
        return None
    if "template" not in provider.send_content:
        raise Unprocessable(
            f"template: provider {provider.name!r} (type {kind}) sends text: send a body",
            code="REQUEST_INVALID",
            field="template",
        )
    template = send.template.as_template()
    try:
        provider.check_template(template)
    except ValueError as exc:
        part, colon, problem = str(exc).partition(": ")
        field = f"template.{part}" if colon else "template"
        raise Unprocessable(
            f"{field}: {problem or exc}", code="REQUEST_INVALID", field=field
        ) from None
    return template


def _accepted(record: MessageRecord, encoding: Encoding | None) -> tuple[int, str]:
    """The 202 answer for a newly queued message (stored with its Idempotency-Key)."""
    message = MessageOut.model_validate(record, from_attributes=True)
    return 202, SentMessage(**message.model_dump(), encoding=encoding).model_dump_json()


async def prune_idempotency_keys(store: Store, every: float = PRUNE_EVERY_SECONDS) -> None:
    """Delete expired Idempotency-Key answers now and every ``every`` seconds, until
    cancelled. A key is free again once expired even before it is deleted: this only
    keeps the table small."""
    while True:
        try:
            pruned = await store.prune_idempotency_keys(datetime.now(UTC))
        except StoreUnavailable as exc:
            log.warning("could not prune expired Idempotency-Keys: %s", exc.detail)
        else:
            if pruned:
                log.info("pruned %d expired Idempotency-Keys", pruned)
        await asyncio.sleep(every)
