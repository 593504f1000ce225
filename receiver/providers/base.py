"""The one small interface every provider module implements.

A provider is sans-IO: it gets the request as data (``InboundRequest``) and a clock,
and answers with reports or raises ``SignatureError`` / ``PayloadInvalid``. The HTTP
edge does everything else (body limits, the store, the answer's transport).

A type that can send also offers a ``Sender`` (``Provider.sender()``), equally sans-IO:
it builds the provider's send and lookup requests as ``httpx.Request`` objects and
reads the answers; the outbox worker (``receiver.outbound.worker``) does the I/O.
"""

from __future__ import annotations

import functools
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Final, Generic, Literal, get_args, get_origin
from urllib.parse import parse_qsl

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    IPvAnyNetwork,
    ValidationError,
    field_validator,
    model_validator,
)
from typing_extensions import TypeVar

from receiver.core.error_codes import numeric_code
from receiver.core.reports import Outcome, Report, derived_event_id
from receiver.core.signatures import basic_auth, url_token
from receiver.core.status import Status
from receiver.errors import CannotResign, PayloadInvalid
from receiver.records import OutboxItem, RawRequest, Template
from receiver.records import WebhookRequest as WebhookRequest

_FIELD_NAME = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*")
SENDER_ID = re.compile(r"\+?[0-9]{3,15}|(?=[^A-Za-z]*[A-Za-z])[A-Za-z0-9 ._&-]{1,11}")
"""An SMS sender: a number, or an alphanumeric id of at most 11 characters."""
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
SEND_KEYS = ("api_base_url", "api_key", "sender", "rate_per_second")
"""The common keys that only matter for sending."""


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """A webhook request as a provider verifies and parses it: raw bytes, lower-case
    header names, and what the edge worked out about it.

    ``url`` is the public URL the provider called: the public origin + the raw path +
    ``?`` + the raw query string (URL-signing schemes verify against it). ``peer`` is
    the caller's address (behind a trusted proxy, the one it names). Made by the HTTP
    edge from a live request, or by ``captured`` from a stored or built one.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    query_string: bytes
    body: bytes
    media_type: str
    received_at: datetime
    peer: str | None = None

    @classmethod
    def captured(
        cls,
        request: WebhookRequest,
        public_base_url: str,
        received_at: datetime,
    ) -> InboundRequest:
        """A captured or stored request as the parser would have seen it live."""
        headers = {name.lower(): value for name, value in request.headers.items()}
        _, _, query = request.path.partition("?")
        return cls(
            method=request.method,
            url=public_base_url.rstrip("/") + request.path,
            headers=headers,
            query_string=query.encode("latin-1"),
            body=request.body,
            media_type=media_type_of(headers),
            received_at=received_at,
        )

    def stored(self, path: str) -> RawRequest:
        """This request as the store keeps it; ``path`` is the raw path and query as
        received, less any ``url_token`` (a secret: never stored)."""
        return RawRequest(
            path=path,
            body=self.body,
            headers=dict(self.headers),
            method=self.method,
            received_at=self.received_at,
        )

    def form_params(self) -> list[tuple[str, str]]:
        """A form body's parameters, in order, blanks kept (none for other bodies)."""
        if self.media_type != FORM:
            return []
        return parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def params(self) -> list[tuple[str, str]]:
        """The query's parameters, then a form body's, in order, blanks kept."""
        query = parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True)
        return query + self.form_params()


@dataclass(frozen=True, slots=True)
class Answer:
    """The HTTP answer a provider's sender expects once its reports are committed."""

    status: int
    body: bytes
    media_type: str


class ProviderConfig(BaseModel):
    """Keys every ``[providers.NAME]`` table may hold; types extend it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    secrets: list[str] = Field(default_factory=list)
    # Up to 48 h: a provider that retries with its original timestamp (Vonage, for 24 h)
    # must not be refused; a replay inside the window is a duplicate, so it is harmless.
    tolerance_seconds: int = Field(default=300, ge=1, le=172800)
    insecure_no_signature: bool = False
    allowed_ips: list[IPvAnyNetwork] = Field(default_factory=list)
    url_token: Annotated[str, Field(pattern=r"^[A-Za-z0-9._~-]{24,256}$")] | None = None
    """A secret that every report must carry as the ``token`` query parameter (the URL
    we give the provider for reports includes it): for types whose reports are not
    signed, or as a second check on any type."""
    api_base_url: HttpUrl | None = None
    api_key: str | None = None
    sender: str | None = None
    rate_per_second: float | None = Field(default=None, gt=0)
    # Missing reports (README "Missing reports"; README "Missing reports").
    report_timeout_seconds: float | None = Field(default=None, gt=0)
    """A message still not final this long after its last report or send step is
    overdue; None: the type's ``report_timeout_default``."""
    report_give_up_seconds: float | None = Field(default=None, gt=0)
    """An overdue message with no final word this long after its last report or send
    step gets our own verdict (unknown, NO_FINAL_REPORT); None: the type's default."""
    lookup: bool | None = None
    """Whether to ask the provider's API about overdue messages; None: where the type
    can and the config holds its API credentials."""
    lookup_attempts: int = Field(default=5, ge=1, le=100)
    """Lookups of one overdue message before the reconciler waits for the give-up."""

    report_timeout_default: ClassVar[float] = 3600.0
    """An hour: most networks report within minutes; later reports are the exception."""
    report_give_up_default: ClassVar[float] = 259200.0
    """72 hours: the longest validity period networks commonly keep a message for
    (GOV.UK Notify gives up at the same age)."""

    send_requires: ClassVar[tuple[str, ...]] = ()
    """The keys that must all be set for this type to send; empty: it cannot send."""
    lookup_requires: ClassVar[tuple[str, ...] | None] = None
    """The keys that must all be set for this type to look a message's status up
    (``lookup``); None: as ``send_requires``; empty: it has no status API."""

    @property
    def lookup_keys(self) -> tuple[str, ...]:
        """The keys a status lookup needs (``lookup_requires``, else ``send_requires``)."""
        return self.send_requires if self.lookup_requires is None else self.lookup_requires

    signed_reports: ClassVar[bool] = True
    """Whether the type's reports carry a signature that ``secrets`` verify. A type whose
    reports do not needs ``url_token`` and/or ``allowed_ips`` instead."""
    secrets_refused: ClassVar[str | None] = None
    """Why the type takes no ``secrets`` (its reports carry no signature to check them
    against); None: it takes them."""

    @field_validator("secrets")
    @classmethod
    def _secrets_taken(cls, secrets: list[str]) -> list[str]:
        # Accepting one would look like protection while it verifies nothing.
        if secrets and cls.secrets_refused is not None:
            raise ValueError(cls.secrets_refused)
        return secrets

    @property
    def sends(self) -> bool:
        """Whether this provider is configured to send."""
        return bool(self.send_requires) and all(getattr(self, k) for k in self.send_requires)

    @model_validator(mode="after")
    def _secrets_or_explicitly_insecure(self) -> ProviderConfig:
        if self.insecure_no_signature:
            return self
        if not self.signed_reports:
            if not (self.secrets or self.url_token or self.allowed_ips):
                raise ValueError(
                    "url_token: reports of this type are not signed: set url_token (a secret"
                    " of 24+ URL-safe characters) and/or allowed_ips (or set"
                    " insecure_no_signature = true to accept reports from anyone)"
                )
        elif not self.secrets:
            raise ValueError(
                "secrets: at least one secret is required "
                "(or set insecure_no_signature = true to turn verification off)"
            )
        return self

    @property
    def report_timeout(self) -> float:
        """Seconds without a report after which a non-final message is overdue."""
        return self.report_timeout_seconds or self.report_timeout_default

    @property
    def report_give_up(self) -> float:
        """Seconds without a final report after which we record our own verdict."""
        return max(self.report_give_up_seconds or self.report_give_up_default, self.report_timeout)

    @model_validator(mode="after")
    def _give_up_after_timeout(self) -> ProviderConfig:
        if (
            self.report_give_up_seconds is not None
            and self.report_give_up_seconds < self.report_timeout
        ):
            raise ValueError(
                "report_give_up_seconds: must be at least report_timeout_seconds"
                f" ({self.report_timeout:g}): a message is overdue before it is given up"
            )
        return self

    @model_validator(mode="after")
    def _complete_send_keys(self) -> ProviderConfig:
        # Half a sending setup is a mistake to report, not a reason to stay silent: the
        # user meant this provider to send.
        given = [key for key in SEND_KEYS if getattr(self, key) is not None]
        missing = [key for key in self.send_requires if not getattr(self, key)]
        if self.send_requires and given and missing:
            raise ValueError(f"{missing[0]}: is required to send ({given[0]} is set)")
        return self


class BasicAuthConfig(ProviderConfig):
    """A config whose ``secrets`` are HTTP Basic ``"user:password"`` credentials."""

    @field_validator("secrets")
    @classmethod
    def _basic_credentials(cls, secrets: list[str]) -> list[str]:
        for index, secret in enumerate(secrets):
            try:
                basic_auth.check_credential(secret)
            except ValueError as exc:
                raise ValueError(f"secrets[{index}]: {exc}") from None
        return secrets


_HOP_BY_HOP = frozenset({"host", "content-length", "connection", "transfer-encoding"})


@functools.lru_cache(maxsize=1024)
def _counts_answer(outcome: Outcome) -> Answer:
    """The counts as JSON; cached, as nearly every request answers one of a few."""
    counts: dict[str, Any] = {
        "received": outcome.received,
        "applied": outcome.applied,
        "duplicates": outcome.duplicates,
        "superseded": outcome.superseded,
    }
    return Answer(200, json.dumps(counts).encode(), "application/json")


def media_type_of(headers: Mapping[str, str]) -> str:
    """The bare, lower-case media type of a ``content-type`` header."""
    return headers.get("content-type", "").partition(";")[0].strip().lower()


def resign_headers(headers: Mapping[str, str], *replaced: str) -> dict[str, str]:
    """A captured request's headers for re-signing: names lower-cased, without hop-by-hop
    and length headers, nor the scheme's own headers (``replaced``, made afresh)."""
    dropped = _HOP_BY_HOP.union(replaced)
    return {k.lower(): v for k, v in headers.items() if k.lower() not in dropped}


def resign_basic_auth(request: WebhookRequest, config: ProviderConfig) -> WebhookRequest:
    """``request`` with the Authorization header of the first credential (HTTP Basic
    signs nothing else); unchanged when verification is off."""
    if config.insecure_no_signature:
        return request
    headers = resign_headers(request.headers, "authorization")
    headers["authorization"] = basic_auth.header(config.secrets[0])
    return replace(request, headers=headers)


def single_values(pairs: Iterable[tuple[str, str]], read: Container[str]) -> dict[str, str]:
    """Parameters as a dict, first value kept. A field the parser reads (in ``read``)
    given twice with different values is ambiguous: PayloadInvalid naming it."""
    values: dict[str, str] = {}
    for key, value in pairs:
        if key in read and values.get(key, value) != value:
            raise PayloadInvalid(key, "appears more than once with different values")
        values.setdefault(key, value)
    return values


def payload_invalid(
    exc: ValidationError, *, prefix: str = "", whole: str = "body", hidden: Iterable[str] = ()
) -> PayloadInvalid:
    """The ``PayloadInvalid`` naming the first field pydantic refused, as ``data[1].status``.

    ``prefix`` is put before the name (a nested model), ``whole`` names the input itself,
    and ``hidden`` location parts (union tags) are left out.
    """
    error = exc.errors(include_url=False)[0]
    if error["type"] == "json_invalid":
        return PayloadInvalid("body", "is not valid JSON")
    name = prefix
    for part in error["loc"]:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part not in hidden:
            name += f".{part}" if name else part
    if error["type"] == "missing":
        return PayloadInvalid(name or whole, "is required")
    message = str(error["msg"]).removeprefix("Value error, ")
    named, separator, problem = message.partition(": ")
    if separator and _FIELD_NAME.fullmatch(named):  # a model validator naming the field
        name = f"{name}.{named}" if name else named
        message = problem
    return PayloadInvalid(name or whole, message)


@dataclass(frozen=True, slots=True)
class Accepted:
    """The provider has the message (its answer to the send, or found by a lookup).

    ``provider_message_id`` is None when the provider says it has the message but not
    its id (FutureSMS answers a repeated ``client_order_id`` with CONFLICT): the
    message's first report, which names our reference, completes the record."""

    provider_message_id: str | None
    provider_status: str
    """The provider's own word for the message's state (e.g. ``queued``)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """The provider refused the message itself: it will never be sent."""

    error_code: str | None
    error_message: str


@dataclass(frozen=True, slots=True)
class Deferred:
    """The provider did not act on the request (429, 408, our credentials refused, or a
    lookup that failed): ask again later, after ``retry_after`` if it said."""

    reason: str
    retry_after: str | None = None
    """The answer's ``Retry-After`` header as sent (delta-seconds or an HTTP-date)."""


@dataclass(frozen=True, slots=True)
class Unknown:
    """The provider may have acted on the send (5xx, 409, an unreadable 2xx): look the
    message up before any resend."""

    reason: str
    retry_after: str | None = None
    """When the provider said to ask again about this message (a ``Retry-After`` on
    SendComms' 409 "in progress"); it holds this message only, never the provider.
    None: the worker's backoff."""


@dataclass(frozen=True, slots=True)
class NoSuchMessage:
    """A lookup found no message with our reference: it was never received."""


@dataclass(frozen=True, slots=True)
class Tracked:
    """An overdue message the reconciler asks its provider about (README "Missing reports"):
    our id (the reference we sent, if we sent it), the provider's id if we know it."""

    id: str
    provider_message_id: str | None
    to: str | None
    created_at: datetime


SendResult = Accepted | Rejected | Deferred | Unknown
LookupResult = Accepted | NoSuchMessage | Deferred
StatusResult = Report | NoSuchMessage | Deferred
"""What asking the provider about an overdue message found: its status as a report
(``source = 'lookup'``), no such message, or no answer (ask again later)."""


def lookup_report(
    message: Tracked,
    provider_message_id: str,
    word: str,
    status: Status | None,
    *,
    occurred_at: datetime,
    error_code: str | None = None,
    error_message: str | None = None,
) -> Report:
    """The report a provider's status answer makes: the type's mapping gives ``status``
    for its ``word``. The event id depends only on what the answer says (the message,
    the word, the error code), so the same answer looked up twice is a duplicate, and it
    differs from every webhook's id, so a report that arrives later is merged too."""
    return Report(
        event_id="lk_" + derived_event_id(provider_message_id, word, error_code)[2:],
        provider_message_id=provider_message_id,
        status=status,
        provider_status=word,
        occurred_at=occurred_at,
        error_code=error_code,
        error_message=error_message,
        message_reference=message.id,
    )


def looked_up(message: Tracked, report: Report) -> Report:
    """``report``, read from a status answer in the type's webhook shape (Infobip's
    logs, Sinch's recipient report), as the lookup report ``lookup_report`` makes."""
    return lookup_report(
        message,
        report.provider_message_id,
        report.provider_status,
        report.status,
        occurred_at=report.occurred_at,
        error_code=report.error_code,
        error_message=report.error_message,
    )


_TRY_AGAIN = frozenset({401, 403, 404, 405, 408, 425, 429})
"""4xx answers about our request, not the message: our credentials or URL (a config fix
lets the message go out, so it waits rather than fail), a timeout, throttling."""


def http_reason(response: httpx.Response) -> str:
    """``HTTP 503 Service Unavailable``: an answer's status for logs and error messages."""
    return f"HTTP {response.status_code} {response.reason_phrase}".rstrip()


PERMANENT = timedelta.max
"""An ``idempotency_lifetime`` for a provider that never forgets an idempotency value."""


class ApiClient(ABC):  # noqa: B024 - every hook has a default: a type overrides what it has
    """Calls one configured provider's API, sans-IO: builds ``httpx.Request`` objects
    and reads the answers; the outbox worker does the I/O (``OutboxWorker.exchange``).

    A ``Sender`` is one; a type that cannot send but can look a message's status up
    (the reconciler's lookups of overdue messages, README "Missing reports") offers one
    through ``Provider.status_client()``.

    A type whose API needs a session (FutureSMS logs in for tokens that rotate)
    implements ``auth_request``/``read_auth``/``unauthorized``; the worker runs them
    one at a time per provider.
    """

    def auth_request(self, now: datetime) -> httpx.Request | None:
        """A request to make before the next call, to obtain or renew credentials (a
        login, a token refresh); None when the credentials in hand are good."""
        return None

    def read_auth(self, response: httpx.Response, now: datetime) -> None:
        """Take the credentials from the answer to ``auth_request``; ValueError if it
        gave none (the worker then defers the message)."""
        raise NotImplementedError("a sender that makes auth requests reads their answers")

    def unauthorized(self, request: httpx.Request) -> bool:
        """``request`` was answered 401: forget the credentials it carried, if they are
        still the ones in hand. True if a retry with fresh credentials is worth one try."""
        return False

    looks_up_status: ClassVar[bool] = False
    """Whether ``status_request`` can ask the API about a message we already sent or
    heard of (the reconciler's lookups of overdue messages)."""

    def status_request(self, message: Tracked) -> httpx.Request | None:
        """The request asking the provider for ``message``'s current status: by its id at
        the provider, or by our reference where the API keeps one; None when neither is
        possible (e.g. the id is not known yet)."""
        return None

    def read_status(
        self, message: Tracked, response: httpx.Response, now: datetime
    ) -> Report | None:
        """The report (``lookup_report``) a 2xx answer to ``status_request`` makes, or
        None when it shows no such message; ValueError when it cannot be read."""
        raise NotImplementedError("a sender that makes status requests reads their answers")

    def read_status_lookup(
        self, message: Tracked, response: httpx.Response, now: datetime
    ) -> StatusResult:
        """What the answer to ``status_request`` says: 404 is "no such message" (the
        contract's ``standard`` lookup; every other API answers it for an unknown id)."""
        if response.status_code == 404:
            return NoSuchMessage()
        if refused := _lookup_refused(response):
            return refused
        try:
            found = self.read_status(message, response, now)
        except ValueError:
            return Deferred(f"the lookup answered {http_reason(response)} that we cannot read")
        return NoSuchMessage() if found is None else found


class Sender(ApiClient):
    """Sends through one configured provider's API, sans-IO.

    The HTTP semantics every API shares live here (``read_send``, ``read_lookup``); a
    type implements its requests and how to read its answers' bodies. The reading
    hooks raise ``ValueError`` (pydantic's ``ValidationError`` is one) on an answer they
    cannot read.

    After an attempt that may have reached the provider (the message is *in doubt*),
    the worker settles it before any resend: by ``lookup_request`` where the API can
    find a message by our reference; otherwise by sending again with the same
    idempotency value, which is safe only for the ``idempotency_lifetime`` the provider
    keeps it; otherwise the message is held for a person, never resent blindly.

    Sessions (``auth_request``, ...) and status lookups: ``ApiClient``.
    """

    idempotency_lifetime: ClassVar[timedelta | None] = None
    """How long the provider keeps our idempotency value after the first attempt, so that
    a resend carrying it cannot make a second message (``PERMANENT``: for ever); None:
    the API takes no idempotency value."""

    @abstractmethod
    def send_request(self, item: OutboxItem) -> httpx.Request:
        """The request that sends ``item``, carrying our message id as its reference
        (and idempotency key where the API has one)."""

    @abstractmethod
    def lookup_request(self, item: OutboxItem) -> httpx.Request | None:
        """The request that looks ``item`` up at the provider (reconciliation); None when
        the API cannot find a message by what we know of it."""

    @abstractmethod
    def read_accepted(self, response: httpx.Response) -> Accepted:
        """The message id and status in a 2xx answer to the send."""

    @abstractmethod
    def read_rejection(self, response: httpx.Response) -> Rejected:
        """The provider's error code and message in a 4xx answer; never raises."""

    @abstractmethod
    def read_found(self, item: OutboxItem, response: httpx.Response) -> Accepted | None:
        """The message a 2xx lookup answer shows for ``item``, or None."""

    def read_send(self, response: httpx.Response) -> SendResult:
        """What the answer to ``send_request`` means for the message."""
        status = response.status_code
        if 200 <= status < 300:
            try:
                return self.read_accepted(response)
            except ValueError:
                return Unknown(f"{http_reason(response)} without a readable message id")
        if status in _TRY_AGAIN:
            return Deferred(http_reason(response), response.headers.get("retry-after"))
        if 400 <= status < 500 and status != 409:  # 409: the key's first request is in flight
            return self.read_rejection(response)
        return Unknown(http_reason(response))

    def read_lookup(self, item: OutboxItem, response: httpx.Response) -> LookupResult:
        """What the answer to ``lookup_request`` says about ``item``."""
        if refused := _lookup_refused(response):
            return refused
        try:
            found = self.read_found(item, response)
        except ValueError:
            return Deferred(f"the lookup answered {http_reason(response)} that we cannot read")
        return NoSuchMessage() if found is None else found


def _lookup_refused(response: httpx.Response) -> Deferred | None:
    """A lookup's non-2xx answer as Deferred (with its ``Retry-After``); None for a 2xx."""
    if 200 <= response.status_code < 300:
        return None
    reason = f"the lookup answered {http_reason(response)}"
    return Deferred(reason, response.headers.get("retry-after"))


Content = Literal["body", "template"]


ConfigT = TypeVar("ConfigT", bound=ProviderConfig, default=ProviderConfig, covariant=True)
"""A provider type's config model (``TwilioConfig``); a bare ``Provider`` is any type."""


class Provider(ABC, Generic[ConfigT]):
    """One configured provider: verifies, parses and answers its webhooks.

    A type names its config model once, as the type argument (``class
    TwilioProvider(Provider[TwilioConfig])``): it is the ``config_model`` the config
    loader validates the type's table with, and the type of ``self.config``.
    """

    kind: ClassVar[str]
    config_model: ClassVar[type[ProviderConfig]]
    """The model a ``[providers.NAME]`` table of this type is validated with: the type
    argument (a subclass without one sets it)."""
    media_types: ClassVar[frozenset[str]]
    """Content types a POST may carry (a GET carries its report in the query)."""
    methods: ClassVar[frozenset[str]] = frozenset({"POST"})
    redelivery_horizon_days: ClassVar[int] = 3
    """Days after we first received a report within which this type's sender may still
    send it again: its documented retry schedule, rounded up to whole days with a
    margin; 3 where no schedule is published. ``[retention] messages_days`` may not be
    shorter, so no redelivery can outlive its event (docs/operations.md, "Retention")."""
    send_content: ClassVar[frozenset[Content]] = frozenset({"body"})
    """What a send through this type may carry: a text ``body``, a ``template``."""
    error_label: ClassVar[str] = "code"
    """How the console introduces one of this type's error codes: ``Twilio`` in
    "(Twilio 30007)"; ``code`` for a type whose codes are its sender's own."""
    error_explanations: ClassVar[Mapping[str, str]] = {}
    """Our plain words for the type's documented error codes (numeric ones without
    leading zeros), each from the provider's published table: a wrong explanation is
    worse than none, so a code we could not confirm is left out."""

    @classmethod
    def explain_error(cls, code: str) -> str | None:
        """One plain sentence for ``code`` as the parser stored it (stripped, never
        blank), or None when it has no documented meaning we know of. Default: its
        ``error_explanations`` entry, numeric codes matched without leading zeros."""
        return cls.error_explanations.get(numeric_code(code))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in cls.__dict__.get("__orig_bases__", ()):
            if get_origin(base) is Provider:
                (model,) = get_args(base)
                if isinstance(model, type):  # not a type variable of a generic subclass
                    cls.config_model = model

    def __init__(self, name: str, config: ConfigT) -> None:
        if not isinstance(config, self.config_model):
            raise TypeError(
                f"a {self.kind} provider needs a {self.config_model.__name__},"
                f" not {type(config).__name__}"
            )
        self.name = name
        self.config: Final = config

    @property
    def verifies(self) -> bool:
        return not self.config.insecure_no_signature

    @abstractmethod
    def verify(self, request: InboundRequest, now: float) -> None:
        """Raise SignatureError unless the request is authentic and fresh."""

    @abstractmethod
    def parse(self, request: InboundRequest) -> list[Report]:
        """The request's reports; raise PayloadInvalid naming the bad field."""

    def resign(
        self, request: WebhookRequest, *, public_base_url: str, now: float
    ) -> WebhookRequest:
        """The same report signed afresh with this provider's first secret, for delivery
        to ``public_base_url`` + ``request.path`` at time ``now`` (``receiver replay
        --resign``). The report's content is unchanged; only what the scheme signs or
        timestamps may differ. Raises CannotResign where we hold no signing secret."""
        raise CannotResign(f"provider type {self.kind!r} cannot re-sign requests yet")

    def sender(self, public_base_url: str | None = None) -> Sender | None:
        """This provider's sender, or None when its type cannot send or it is not
        configured to. ``public_base_url`` is where the provider reaches us, for types
        that name their status-callback URL in each send."""
        return None

    def status_client(self) -> ApiClient | None:
        """What asks this provider's API about a message's status, or None when the
        type cannot or the API credentials are not configured. Default: the sender,
        if it can."""
        sender = self.sender()
        return sender if sender is not None and sender.looks_up_status else None

    def looks_up(self) -> bool:
        """Whether the reconciler asks this provider's API about overdue messages:
        ``lookup`` if set, else whether the type can and the API credentials are here."""
        return self.config.lookup is not False and self.status_client() is not None

    def check_sender(self, sender: str) -> None:
        """Raise ValueError (saying what a sender must be) if a send through this type
        may not name ``sender``. Default: an alphanumeric sender id (1-11 characters, at
        least one letter) or a number of 3-15 digits, what SMS networks carry."""
        if not SENDER_ID.fullmatch(sender):
            raise ValueError(
                "must be an alphanumeric sender id (1-11 letters, digits, spaces or ._&-,"
                " at least one letter) or a number of 3-15 digits"
            )

    def check_template(self, template: Template) -> None:
        """Raise ValueError (``"variables: ..."`` names the part) if this type cannot
        send ``template``; called only for types whose ``send_content`` has it."""
        return None

    def report_url(self, public_base_url: str | None) -> str | None:
        """The URL this provider's reports should go to (with the ``url_token``), for
        types that name it in each send; None without a public base URL."""
        if public_base_url is None:
            return None
        url = f"{public_base_url.rstrip('/')}/webhooks/{self.name}"
        return url_token.with_token(url, self.config.url_token)

    def answer(self, outcome: Outcome) -> Answer:
        """The 200 answer once committed: the contract's JSON counts by default."""
        return _counts_answer(outcome)
