"""The config file (TOML, README "Configuration") and its environment overrides.

Everything is validated at start-up: unknown keys, unknown provider types, missing
secrets and insecure settings are refused with one ``ConfigError`` that names the
file, the key and the problem.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from receiver.core.signatures.standard_webhooks import decode_secret, new_whsec
from receiver.core.status import Status
from receiver.errors import ConfigError, UsageError
from receiver.providers import PROVIDER_TYPES, Provider

SQLITE_URL = "sqlite:///"

DEFAULT_CONFIG = Path("receiver.toml")
_VALIDATOR_KEY = re.compile(r"[a-z_]+(\[[0-9]+\])?")
_PROVIDER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SendRate(BaseModel):
    """One role's rate for ``POST /v1/messages``, per client token (GCRA)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_second: float = Field(default=10, gt=0, le=100_000)
    burst: int = Field(default=20, ge=1, le=100_000)


class SendRateLimits(BaseModel):
    """``[send_rate_limits]``: the rate of each role that may send."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sender: SendRate = Field(default_factory=SendRate)
    admin: SendRate = Field(default_factory=SendRate)


class OutboxSettings(BaseModel):
    """``[outbox]``: how the outbox worker sends through the providers' APIs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    give_up_seconds: float = Field(default=86400, ge=60)
    """A message not handed to its provider this long after it was accepted fails."""
    connect_timeout_seconds: float = Field(default=5, gt=0, le=60)
    read_timeout_seconds: float = Field(default=20, gt=0, le=300)
    poll_seconds: float = Field(default=1, gt=0, le=60)
    backoff_seconds: float = Field(default=1, gt=0, le=3600)
    """The first retry's longest delay; it doubles per attempt (full jitter)."""
    backoff_max_seconds: float = Field(default=300, gt=0, le=86400)

    @property
    def lease_seconds(self) -> float:
        """How long a claimed row stays ours: an attempt is a rate-limit wait, a lookup
        and a send, each bounded by the timeouts (see receiver.outbound.worker)."""
        return 3 * (self.connect_timeout_seconds + self.read_timeout_seconds)


class RetentionSettings(BaseModel):
    """``[retention]``: how long stored data is kept (0 keeps it forever)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    raw_requests_days: int = Field(default=0, ge=0, le=36500)
    """Raw webhook requests received longer ago are deleted; their events stay."""
    messages_days: int = Field(default=0, ge=0, le=36500)
    """Messages unchanged for longer are deleted with their timelines."""
    interval_seconds: float = Field(default=300, ge=1, le=86400)
    """How often ``receiver serve`` prunes."""


class ReconcileSettings(BaseModel):
    """``[reconcile]``: how the service looks for messages whose report never came
    (README "Missing reports"; receiver.outbound.reconcile)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_seconds: float = Field(default=60, gt=0, le=86400)
    """How often ``receiver serve`` and ``receiver worker`` look for overdue messages."""
    concurrency: int = Field(default=16, ge=1, le=256)
    """Lookups in flight at once per process (each provider still keeps its rate)."""


class ServerSettings(BaseModel):
    """``[server]``: what one HTTP connection may cost (receiver.http.edge)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_header_bytes: int = Field(default=65536, ge=4096, le=1024 * 1024)
    """A request line and header fields longer than this in all are answered 431."""
    max_header_fields: int = Field(default=100, ge=16, le=10_000)
    """A request with more header fields than this is answered 431."""
    header_timeout_seconds: float = Field(default=10, gt=0, le=300)
    """A connection must deliver a whole request head this soon after it opens (or
    after the first byte of a request that follows a keep-alive pause)."""
    keepalive_timeout_seconds: int = Field(default=5, ge=1, le=300)
    """An idle connection between two requests is closed after this long (whole
    seconds: uvicorn's keep-alive timer takes an int)."""
    body_timeout_seconds: float = Field(default=30, gt=0, le=3600)
    """A request body must have arrived in full this soon after its head."""
    max_connections: int | None = Field(default=None, ge=1, le=1_000_000)
    """Open connections beyond this are shed; default: what RLIMIT_NOFILE allows."""


_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class SubscriberSettings(BaseModel):
    """``[subscribers.NAME]``: an application told of every status change (README,
    "Status change feed")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    insecure_http: bool = False
    """Allow a plain-http ``url`` off loopback (message data would travel unencrypted)."""
    url: HttpUrl
    """Where each change is POSTed; https unless on loopback or ``insecure_http``."""
    secrets: list[str] = Field(min_length=1)
    """Standard Webhooks ``whsec_`` secrets; the first signs (the others are for the
    subscriber's side of a rotation)."""
    providers: list[str] | None = Field(default=None, min_length=1)
    """Only messages of these providers (None: all)."""
    statuses: list[Status] | None = Field(default=None, min_length=1)
    """Only changes to these statuses (None: all)."""
    clients: list[str] | None = Field(default=None, min_length=1)
    """Only messages sent by these staff / API-client names (None: all, reports too)."""
    retry_horizon_seconds: float = Field(default=86400, gt=0, le=30 * 86400)
    """A change not acknowledged this long after it was queued is dead-lettered."""
    concurrency: int = Field(default=16, ge=1, le=1000)
    """Deliveries in flight at once (different messages; one message is in order)."""
    timeout_seconds: float = Field(default=10, gt=0, le=300)
    """Connect + answer time of one delivery attempt."""
    backoff_seconds: float = Field(default=1, gt=0, le=3600)
    """The first retry's longest delay; it doubles per attempt (full jitter)."""
    backoff_max_seconds: float = Field(default=300, gt=0, le=86400)

    @field_validator("secrets")
    @classmethod
    def _whsec(cls, values: list[str]) -> list[str]:
        for value in values:
            decode_secret(value)
        return values

    @field_validator("url")
    @classmethod
    def _encrypted(cls, url: HttpUrl, info: ValidationInfo) -> HttpUrl:
        clear = url.scheme != "https" and url.host not in _LOOPBACK_HOSTS
        if clear and not info.data.get("insecure_http"):
            raise ValueError("must be https (or loopback); insecure_http = true sends in clear")
        return url

    @property
    def lease_seconds(self) -> float:
        """How long a claimed delivery stays ours: the worker leases up to four times
        ``concurrency`` (receiver.feed.worker.CLAIM_FACTOR), so the last may wait four
        attempt times for a slot, then takes one."""
        return 5 * self.timeout_seconds


class FeedSettings(BaseModel):
    """``[feed]``: where the change feed's deliveries run (README "Status change feed")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deliver_in_serve: bool = True
    """False: ``receiver serve`` only queues deliveries (and keeps the subscribers'
    backlog gauges); ``receiver worker`` processes post them."""


class Settings(BaseModel):
    """The top-level keys of the config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str = "sqlite:///receiver.db"
    public_base_url: HttpUrl | None = None
    max_body_bytes: int = Field(default=262144, ge=1024, le=16 * 1024 * 1024)
    trusted_proxies: list[IPNetwork] = Field(default_factory=list)
    session_secret: str = Field(min_length=32)
    idempotency_ttl_seconds: int = Field(default=86400, ge=1)
    send_rate_limits: SendRateLimits = Field(default_factory=SendRateLimits)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    feed: FeedSettings = Field(default_factory=FeedSettings)
    console_idle_timeout_seconds: int = Field(default=1800, ge=1, le=86400)
    """A console session unused this long is over (the member logs in again)."""
    console_default_region: str | None = None
    """ISO 3166 region ("PH", "US") for numbers typed in the console without +country."""
    console_password_hashes_at_once: int = Field(default=1, ge=1, le=8)
    """Console password checks computed at the same time (each scrypt hash takes 32 MiB
    and about 0.1 s of one core); more attempts wait their turn."""
    console_password_attempts_per_second: float = Field(default=2, gt=0, le=100)
    """Password attempts per second from all client addresses together (GCRA); beyond
    it, and beyond the burst, an attempt is answered 429 without being checked."""
    console_password_attempts_burst: int = Field(default=20, ge=1, le=1000)
    """Password attempts from all addresses that may come at once; also the most that
    may wait for a hash."""
    providers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    subscribers: dict[str, SubscriberSettings] = Field(default_factory=dict)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, values: list[str]) -> list[IPNetwork]:
        networks = [ipaddress.ip_network(v, strict=False) for v in values]
        for network in networks:
            if network.prefixlen == 0:
                raise ValueError(f"{network} would trust every client's X-Forwarded-* headers")
        return networks

    @field_validator("console_default_region")
    @classmethod
    def _known_region(cls, region: str | None) -> str | None:
        if region is None:
            return None
        if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{region!r} is not a region phonenumbers knows (e.g. PH, US)")
        return region.upper()

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        if url.startswith(SQLITE_URL) and url != SQLITE_URL:
            return url
        parts = urlsplit(url)
        if parts.scheme in ("postgresql", "postgres") and parts.hostname and parts.path != "/":
            return url
        raise ValueError("must be sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE")


@dataclass(frozen=True)
class Config:
    """A loaded, validated configuration with its providers built."""

    source: Path
    settings: Settings
    providers: dict[str, Provider]

    @property
    def on_sqlite(self) -> bool:
        """True for an SQLite file, False for PostgreSQL."""
        return self.settings.database_url.startswith(SQLITE_URL)

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file; a relative path is relative to the config file's folder."""
        if not self.on_sqlite:
            raise UsageError("this needs an SQLite database_url; the store is PostgreSQL")
        path = Path(self.settings.database_url.removeprefix(SQLITE_URL))
        return path if path.is_absolute() else self.source.parent / path

    @property
    def store_url(self) -> str:
        """``database_url`` with a relative SQLite path made absolute (``open_store``)."""
        return f"{SQLITE_URL}{self.sqlite_path}" if self.on_sqlite else self.settings.database_url

    @property
    def store_name(self) -> str:
        """The store for a log line: the SQLite file, or the PostgreSQL URL without its
        password."""
        if self.on_sqlite:
            return str(self.sqlite_path)
        parts = urlsplit(self.settings.database_url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        user = f"{parts.username}@" if parts.username else ""
        return f"{parts.scheme}://{user}{host}{port}{parts.path}"

    @property
    def insecure_providers(self) -> list[str]:
        return [name for name, p in self.providers.items() if not p.verifies]


def _key_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc if part not in ("function-after",))


def _error(source: Path, exc: ValidationError, prefix: str = "") -> ConfigError:
    first = exc.errors(include_url=False)[0]
    key = prefix + _key_path(first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "is required"
    elif first["type"] == "extra_forbidden":
        message = "is not a known key"
    named, separator, problem = message.partition(": ")
    if separator and _VALIDATOR_KEY.fullmatch(named):  # a validator naming the exact key
        key, message = prefix + named, problem
    return ConfigError(str(source), key.rstrip("."), message)


def _build_provider(source: Path, name: str, table: dict[str, Any]) -> Provider:
    prefix = f"providers.{name}."
    if not _PROVIDER_NAME.fullmatch(name):
        raise ConfigError(
            str(source), f"providers.{name}", "name must be a lower-case URL slug ([a-z0-9_-])"
        )
    kind = table.get("type")
    if kind not in PROVIDER_TYPES:
        known = ", ".join(sorted(PROVIDER_TYPES))
        raise ConfigError(str(source), prefix + "type", f"must be one of: {known}")
    provider_cls = PROVIDER_TYPES[kind]
    try:
        config = provider_cls.config_model.model_validate(table)
    except ValidationError as exc:
        raise _error(source, exc, prefix) from None
    return provider_cls(name, config)


def load(path: Path) -> Config:
    """Read and validate a config file; ``RECEIVER_DATABASE_URL`` overrides its URL."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot be read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "", f"is not valid TOML ({exc})") from None
    if url := os.environ.get("RECEIVER_DATABASE_URL"):
        raw["database_url"] = url
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise _error(path, exc) from None
    providers = {
        name: _build_provider(path, name, table if isinstance(table, dict) else {})
        for name, table in settings.providers.items()
    }
    _check_retention(path, settings.retention, providers)
    _check_lookups(path, providers)
    _check_subscribers(path, settings.subscribers, providers)
    return Config(source=path, settings=settings, providers=providers)


def _check_retention(
    source: Path, retention: RetentionSettings, providers: dict[str, Provider]
) -> None:
    """Refuse retention that would lose what it must keep.

    Raw requests go first: kept longer than the events they carried, they would outlive
    what they explain. And ``messages_days`` may not be under a configured provider's
    redelivery horizon: a pruned message takes its events (the processed set) with it,
    so a report redelivered after that would be applied again as new."""
    if not retention.messages_days:
        return
    if not 0 < retention.raw_requests_days <= retention.messages_days:
        raise ConfigError(
            str(source),
            "retention.raw_requests_days",
            f"must be 1 to messages_days ({retention.messages_days}) when messages_days"
            " is set: raw requests are pruned before the messages they carried",
        )
    if not providers:
        return
    name, longest = max(providers.items(), key=lambda item: item[1].redelivery_horizon_days)
    if retention.messages_days < longest.redelivery_horizon_days:
        raise ConfigError(
            str(source),
            "retention.messages_days",
            f"must be 0 (keep forever) or at least {longest.redelivery_horizon_days}:"
            f" provider {name!r} (type {longest.kind}) may redeliver a report for up to"
            f" {longest.redelivery_horizon_days} days (docs/operations.md, Retention)",
        )


def _check_lookups(source: Path, providers: dict[str, Provider]) -> None:
    """Refuse ``lookup = true`` where it cannot work: the type has no status API, or the
    provider's table lacks the API credentials (the keys that let it send)."""
    for name, provider in providers.items():
        if provider.config.lookup is not True or provider.looks_up():
            continue
        if keys := provider.config.lookup_keys:
            problem = f"needs the provider's API credentials ({', '.join(keys)})"
        else:
            problem = f"type {provider.kind!r} has no API to look a message's status up"
        raise ConfigError(str(source), f"providers.{name}.lookup", problem)


def _check_subscribers(
    source: Path, subscribers: dict[str, SubscriberSettings], providers: dict[str, Provider]
) -> None:
    """Refuse a subscriber name that is no slug, or a filter naming an unknown provider."""
    for name, subscriber in subscribers.items():
        if not _PROVIDER_NAME.fullmatch(name):
            raise ConfigError(
                str(source), f"subscribers.{name}", "name must be [a-z0-9_-], 1-63 characters"
            )
        for provider in subscriber.providers or ():
            if provider not in providers:
                raise ConfigError(
                    str(source),
                    f"subscribers.{name}.providers",
                    f"names {provider!r}, which is not a configured provider",
                )


def resolve_path(explicit: str | None) -> tuple[Path, bool]:
    """The config file to use, and whether the user named it (flag or env)."""
    named = explicit or os.environ.get("RECEIVER_CONFIG")
    return (Path(named), True) if named else (DEFAULT_CONFIG, False)


def load_existing(explicit: str | None) -> Config:
    """The config of every command: ``--config``, ``RECEIVER_CONFIG`` or
    ``./receiver.toml``, which must exist (``serve`` writes the default one first)."""
    path, _ = resolve_path(explicit)
    if not path.exists():
        raise ConfigError(
            str(path),
            "",
            f"file not found (`receiver serve` creates {DEFAULT_CONFIG} when no config is named)",
        )
    return load(path)


def write_default(path: Path, *, host: str, port: int) -> None:
    """Create a fresh config (mode 0600) with one ``standard`` provider named ``default``."""
    webhook_secret = new_whsec()
    text = f"""\
# receiver configuration, generated by `receiver serve` on {datetime.now(UTC):%Y-%m-%d}.
# Reference: the README's "Configuration" section.
database_url = "sqlite:///receiver.db"
public_base_url = "http://{host}:{port}"
max_body_bytes = 262144
trusted_proxies = []
session_secret = "{secrets.token_urlsafe(48)}"
idempotency_ttl_seconds = 86400

[retention]                 # days; 0 keeps forever (docs/operations.md, "Retention")
raw_requests_days = 30      # webhook bodies as received: the bulk of the database
messages_days = 90          # messages and their timelines, by their last change

[providers.default]
type = "standard"
secrets = ["{webhook_secret}"]
tolerance_seconds = 300
"""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # never overwritten: the caller decides
        raise
    except OSError as exc:  # e.g. a folder the service user may not write
        raise ConfigError(str(path), "", f"cannot be written ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
