"""``POST /webhooks/{provider}``: verify, parse, commit, answer (README "HTTP API").

Order of checks: unknown provider (404), body size (413), content type (415),
source address, ``url_token`` and signature (401), payload (400), durable commit (503
on store trouble), then the provider's answer. Verification and parsing run on the
event loop; the commit is the writer thread's group commit, so a 2xx always means "on
disk".
"""

from __future__ import annotations

import ipaddress
import time
from datetime import UTC, datetime
from ipaddress import IPv4Network, IPv6Network

from pydantic import HttpUrl
from starlette.requests import Request
from starlette.responses import Response

from receiver.core.signatures import url_token
from receiver.errors import (
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RetryLater,
    SignatureError,
    UnsupportedMediaType,
)
from receiver.http.middleware import forwarded_origin
from receiver.providers.base import InboundRequest, media_type_of
from receiver.services.state import AppState


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body exceeds {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes")
    return bytes(body)


def request_target(request: Request) -> str:
    """The raw path and query exactly as received: never re-encoded or re-sorted."""
    raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    target = raw_path.decode("latin-1")
    if query := request.scope.get("query_string"):
        target += "?" + query.decode("latin-1")
    return target


def public_url(request: Request, target: str, public_base_url: HttpUrl | None) -> str:
    """The URL the provider called, for URL-signing schemes: ``target`` after the origin
    a trusted proxy named (``ForwardedHeaders``), else after ``public_base_url``, else
    after the address we are bound to."""
    if (origin := forwarded_origin(request)) is not None:
        return origin + target
    if public_base_url is not None:
        return str(public_base_url).rstrip("/") + target
    host, port = request.scope.get("server") or ("127.0.0.1", 80)
    return f"{request.url.scheme}://{host}:{port}{target}"


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


async def receive_webhook(request: Request) -> Response:
    state: AppState = request.app.state.receiver
    arrived = time.perf_counter()
    name = request.path_params["provider"]
    provider = state.config.providers.get(name)
    if provider is None:
        raise NotFound(f"no provider named {name!r} is configured", code="PROVIDER_UNKNOWN")
    if request.method not in provider.methods:
        allowed = ", ".join(sorted(provider.methods))
        raise MethodNotAllowed(f"provider {name!r} accepts {allowed}", allow=allowed)
    body = await read_body(request, state.config.settings.max_body_bytes)
    media_type = media_type_of(request.headers)
    if request.method == "POST" and media_type not in provider.media_types:
        expected = " or ".join(sorted(provider.media_types))
        raise UnsupportedMediaType(f"provider {name!r} posts {expected}, not {media_type!r}")
    peer = request.client.host if request.client else None
    target = request_target(request)
    inbound = InboundRequest(
        method=request.method,
        url=public_url(request, target, state.config.settings.public_base_url),
        headers=request.headers,
        query_string=request.scope.get("query_string", b""),
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
    for kind in ("applied", "duplicates", "superseded"):
        if count := getattr(outcome, kind):
            state.metrics.reports.labels(name, kind).inc(count)
    state.metrics.observe_finals(name, outcome.finals)
    state.metrics.ingest_seconds.labels(name).observe(time.perf_counter() - arrived)
    answer = provider.answer(outcome)
    return Response(answer.body, answer.status, media_type=answer.media_type)
