"""``POST /webhooks/{provider}``: verify, parse, commit, answer (contract section 3).

Order of checks: unknown provider (404), body size (413), content type (415),
signature (401), payload (400), durable commit (503 on store trouble), then the
provider's answer. Verification and parsing run on the event loop; the commit is
the writer thread's group commit, so a 2xx always means "on disk".
"""

from __future__ import annotations

import ipaddress
import time
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from receiver.errors import (
    NotFound,
    PayloadTooLarge,
    SignatureError,
    UnsupportedMediaType,
)
from receiver.http.state import AppState
from receiver.providers.base import InboundRequest
from receiver.store.base import RawRequest


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


def public_url(request: Request, state: AppState) -> str:
    """The URL the provider called, for URL-signing schemes.

    ``X-Forwarded-Proto``/``-Host`` count only from a peer in ``trusted_proxies``;
    otherwise ``public_base_url``; otherwise the address we are bound to.
    """
    settings = state.config.settings
    target = request_target(request)
    peer = request.client.host if request.client else None
    if peer and settings.trusted_proxies and "x-forwarded-host" in request.headers:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            address = None
        if address and any(address in network for network in settings.trusted_proxies):
            proto = request.headers.get("x-forwarded-proto", request.url.scheme)
            host = request.headers["x-forwarded-host"].split(",")[0].strip()
            return f"{proto.split(',')[0].strip()}://{host}{target}"
    if settings.public_base_url is not None:
        return str(settings.public_base_url).rstrip("/") + target
    host, port = request.scope.get("server") or ("127.0.0.1", 80)
    return f"{request.url.scheme}://{host}:{port}{target}"


async def receive_webhook(request: Request) -> Response:
    state: AppState = request.app.state.receiver
    arrived = time.perf_counter()
    name = request.path_params["provider"]
    provider = state.config.providers.get(name)
    if provider is None:
        raise NotFound(f"no provider named {name!r} is configured", code="PROVIDER_UNKNOWN")
    body = await read_body(request, state.config.settings.max_body_bytes)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in provider.media_types:
        expected = " or ".join(sorted(provider.media_types))
        raise UnsupportedMediaType(f"provider {name!r} posts {expected}, not {media_type!r}")
    inbound = InboundRequest(
        method=request.method,
        url=public_url(request, state),
        headers=request.headers,
        query_string=request.scope.get("query_string", b""),
        body=body,
        media_type=media_type,
    )
    if provider.verifies:
        try:
            provider.verify(inbound, time.time())
        except SignatureError as exc:
            state.metrics.signature_failures.labels(name, exc.reason).inc()
            raise
    reports = provider.parse(inbound)
    raw = RawRequest(
        method=request.method,
        path=request_target(request),
        headers=dict(request.headers),
        body=body,
        received_at=datetime.now(UTC),
    )
    outcome = await state.store.ingest(name, raw, reports)
    for kind in ("applied", "duplicates", "superseded"):
        if count := getattr(outcome, kind):
            state.metrics.reports.labels(name, kind).inc(count)
    state.metrics.ingest_seconds.labels(name).observe(time.perf_counter() - arrived)
    answer = provider.answer(outcome)
    return Response(answer.body, answer.status, media_type=answer.media_type)
