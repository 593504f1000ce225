"""``POST /webhooks/{provider}``: verify, parse, commit, answer (README "HTTP API").

Order of checks: unknown provider (404), body size (413), content type (415),
source address, ``url_token`` and signature (401), payload (400), durable commit (503
on store trouble), then the provider's answer. Verification and parsing run on the
event loop; the commit is the writer thread's group commit, so a 2xx always means "on
disk".

The route is a bare ASGI endpoint (``WebhookEndpoint``), the one path that carries the
service's load: no ``Request``, ``Headers`` or ``Response`` objects, one header pass,
answers written straight to ``send`` (docs/performance.md). A POST reaches it through
``WebhookShortcut``, past Starlette's exception middleware and router; every other
method through the router, whose 404/405 it keeps. Around both is the app's as for
every route: the request id and access line (``RequestContext``), and errors raised
here answered as problem+json by the app's handler for them.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from ipaddress import IPv4Network, IPv6Network

from pydantic import HttpUrl
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from receiver.core.signatures import url_token
from receiver.errors import (
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ReceiverError,
    RetryLater,
    SignatureError,
    UnsupportedMediaType,
)
from receiver.http.middleware import FORWARDED_ORIGIN
from receiver.http.problems import receiver_error
from receiver.providers.base import InboundRequest, media_type_of
from receiver.services.state import AppState

RawHeaders = Iterable[tuple[bytes, bytes]]


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it is known to exceed ``limit``."""
    return await receive_body(request.receive, request.headers.get("content-length"), limit)


async def receive_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The whole body from ASGI ``receive``, refusing (413) as soon as it is known to
    exceed ``limit`` (``declared``: the ``Content-Length`` header, if any); raises
    ``ClientDisconnect`` if the client goes away first."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes")
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def header_map(raw: RawHeaders) -> dict[str, str]:
    """The request's headers by lower-case name; of a repeated one, the first (as
    Starlette's ``Headers`` reads it)."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        if key not in headers:
            headers[key] = value.decode("latin-1")
    return headers


def request_target(scope: Scope) -> str:
    """The raw path and query exactly as received: never re-encoded or re-sorted."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    target = raw_path.decode("latin-1")
    if query := scope.get("query_string"):
        target += "?" + query.decode("latin-1")
    return target


@functools.lru_cache(maxsize=8)
def _origin(public_base_url: HttpUrl) -> str:
    return str(public_base_url).rstrip("/")


def public_url(scope: Scope, target: str, public_base_url: HttpUrl | None) -> str:
    """The URL the provider called, for URL-signing schemes: ``target`` after the origin
    a trusted proxy named (``ForwardedHeaders``), else after ``public_base_url``, else
    after the address we are bound to."""
    origin: str | None = scope.get("state", {}).get(FORWARDED_ORIGIN)
    if origin is not None:
        return origin + target
    if public_base_url is not None:
        return _origin(public_base_url) + target
    host, port = scope.get("server") or ("127.0.0.1", 80)
    return f"{scope.get('scheme', 'http')}://{host}:{port}{target}"


def check_source(address: str | None, allowed: list[IPv4Network | IPv6Network]) -> None:
    """Raise SignatureError unless ``address`` is in the provider's ``allowed_ips``."""
    if not allowed:
        return
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        ip = None
    if ip is None or not any(ip in network for network in allowed):
        raise SignatureError(f"{address} is not in allowed_ips", code="SOURCE_NOT_ALLOWED")


@functools.lru_cache(maxsize=64)
def answer_head(status: int, media_type: str, length: int) -> tuple[tuple[bytes, bytes], ...]:
    """The answer's header fields, as Starlette's ``Response`` writes them (a tuple:
    the cached value is shared by every answer)."""
    headers: list[tuple[bytes, bytes]] = []
    if not (status < 200 or status in (204, 304)):
        headers.append((b"content-length", str(length).encode("latin-1")))
    if media_type.startswith("text/") and "charset=" not in media_type.lower():
        media_type += "; charset=utf-8"
    headers.append((b"content-type", media_type.encode("latin-1")))
    return tuple(headers)


class WebhookEndpoint:
    """``/webhooks/{provider}`` as a bare ASGI app (see the module docstring)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: AppState = scope["app"].state.receiver
        arrived = time.perf_counter()
        name = scope["path_params"]["provider"]
        provider = state.config.providers.get(name)
        if provider is None:
            raise NotFound(f"no provider named {name!r} is configured", code="PROVIDER_UNKNOWN")
        method = scope["method"]
        if method not in provider.methods:
            allowed = ", ".join(sorted(provider.methods))
            raise MethodNotAllowed(f"provider {name!r} accepts {allowed}", allow=allowed)
        headers = header_map(scope["headers"])
        settings = state.config.settings
        body = await receive_body(receive, headers.get("content-length"), settings.max_body_bytes)
        media_type = media_type_of(headers)
        if method == "POST" and media_type not in provider.media_types:
            expected = " or ".join(sorted(provider.media_types))
            raise UnsupportedMediaType(f"provider {name!r} posts {expected}, not {media_type!r}")
        client = scope.get("client")
        peer = client[0] if client else None
        target = request_target(scope)
        inbound = InboundRequest(
            method=method,
            url=public_url(scope, target, settings.public_base_url),
            headers=headers,
            query_string=scope.get("query_string", b""),
            body=body,
            media_type=media_type,
            received_at=datetime.now(UTC),
            peer=peer,
        )
        token = provider.config.url_token
        try:
            check_source(peer, provider.config.allowed_ips)
            if token is not None:
                url_token.verify(inbound.query_string, token)
            if provider.verifies:
                provider.verify(inbound, time.time())
        except (SignatureError, RetryLater) as exc:
            state.metrics.signature_failures.labels(name, exc.code.lower()).inc()
            raise
        reports = provider.parse(inbound)
        # the url_token is a secret: never stored
        raw = inbound.stored(target if token is None else url_token.redact(target))
        outcome = await state.store.ingest(name, raw, reports)
        state.metrics.observe_ingest(name, outcome, time.perf_counter() - arrived)
        answer = provider.answer(outcome)
        head = answer_head(answer.status, answer.media_type, len(answer.body))
        await send({"type": "http.response.start", "status": answer.status, "headers": head})
        await send({"type": "http.response.body", "body": answer.body})


WEBHOOKS_PREFIX = "/webhooks/"


class WebhookShortcut:
    """Middleware, innermost: ``POST /webhooks/{provider}`` straight to
    ``WebhookEndpoint``. Starlette's exception middleware and router are five coroutine
    frames that every suspension and resumption of the request passes through, and
    three wrappers around each ``send``: about 7 µs of a webhook's CPU
    (docs/performance.md). A ``ReceiverError`` is answered by the app's own handler for
    it (problem+json). Any other method, or a path the router would read otherwise (a
    ``root_path``, a ``/`` in the name), goes on to the app: one route, one answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.endpoint = WebhookEndpoint()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        name = path[len(WEBHOOKS_PREFIX) :]
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope.get("root_path")
            or not path.startswith(WEBHOOKS_PREFIX)
            or not name
            or "/" in name
        ):
            await self.app(scope, receive, send)
            return
        scope["path_params"] = {"provider": name}
        try:
            await self.endpoint(scope, receive, send)
        except ReceiverError as exc:  # raised before anything was sent
            answer = await receiver_error(Request(scope, receive), exc)
            await answer(scope, receive, send)
