"""The one small interface every provider module implements.

A provider is sans-IO: it gets the request as data (``InboundRequest``) and a clock,
and answers with reports or raises ``SignatureError`` / ``PayloadInvalid``. The HTTP
edge does everything else (body limits, the store, the answer's transport).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qsl

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

from receiver.core.reports import Outcome, Report
from receiver.core.signatures import basic_auth
from receiver.errors import CannotResign, PayloadInvalid

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


class CapturedRequest(Protocol):
    """A request kept as data: a ``WebhookRequest`` or a stored ``RawRequest``."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def body(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """A webhook request as received: raw bytes, lower-case header names.

    ``url`` is the public URL the provider called: ``public_base_url`` + the raw
    path + ``?`` + the raw query string (URL-signing schemes verify against it).
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
        request: CapturedRequest,
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

    def form_params(self) -> list[tuple[str, str]]:
        """A form body's parameters, in order, blanks kept (none for other bodies)."""
        if self.media_type != FORM:
            return []
        return parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def params(self) -> list[tuple[str, str]]:
        """The query's parameters, then a form body's, in order, blanks kept."""
        query = parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True)
        return query + self.form_params()


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook request as sent or captured: ``path`` includes any query string.

    What the testing builders return, what ``receiver export`` writes and what
    ``receiver replay`` sends.
    """

    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"


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
    api_base_url: HttpUrl | None = None
    api_key: str | None = None
    sender: str | None = None
    rate_per_second: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _secrets_or_explicitly_insecure(self) -> ProviderConfig:
        if not self.secrets and not self.insecure_no_signature:
            raise ValueError(
                "secrets: at least one secret is required "
                "(or set insecure_no_signature = true to turn verification off)"
            )
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
    return PayloadInvalid(name or whole, str(error["msg"]).removeprefix("Value error, "))


class Provider(ABC):
    """One configured provider: verifies, parses and answers its webhooks."""

    kind: ClassVar[str]
    config_model: ClassVar[type[ProviderConfig]]
    media_types: ClassVar[frozenset[str]]
    """Content types a POST may carry (a GET carries its report in the query)."""
    methods: ClassVar[frozenset[str]] = frozenset({"POST"})

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.config = config

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

    def answer(self, outcome: Outcome) -> Answer:
        """The 200 answer once committed: the contract's JSON counts by default."""
        counts: dict[str, Any] = {
            "received": outcome.received,
            "applied": outcome.applied,
            "duplicates": outcome.duplicates,
            "superseded": outcome.superseded,
        }
        return Answer(200, json.dumps(counts).encode(), "application/json")
