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
from receiver.providers.base import InboundRequest, media_type_of
from receiver.services.state import AppState
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


def _peer_is_trusted(request: Request, state: AppState) -> bool:
    peer = request.client.host if request.client else None
    networks = state.config.settings.trusted_proxies
    if not peer or not networks:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in networks)


def client_address(request: Request, state: AppState) -> str | None:
    """The caller's address: the TCP peer, or, behind a trusted proxy, the last
    ``X-Forwarded-For`` hop that is not itself a trusted proxy."""
    peer = request.client.host if request.client else None
    if not _peer_is_trusted(request, state):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    networks = state.config.settings.trusted_proxies
    for hop in reversed(hops):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return None  # a garbled chain proves nothing about the caller
        if not any(address in network for network in networks):
            return hop
    return peer


def public_url(request: Request, state: AppState) -> str:
    """The URL the provider called, for URL-signing schemes.

    ``X-Forwarded-Proto``/``-Host`` count only from a peer in ``trusted_proxies``;
    otherwise ``public_base_url``; otherwise the address we are bound to.
    """
    settings = state.config.settings
    target = request_target(request)
    if "x-forwarded-host" in request.headers and _peer_is_trusted(request, state):
        proto = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0]
        host = request.headers["x-forwarded-host"].split(",")[0].strip()
        return f"{proto.strip()}://{host}{target}"
    if settings.public_base_url is not None:
        return str(settings.public_base_url).rstrip("/") + target
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
    peer = client_address(request, state)
    inbound = InboundRequest(
        method=request.method,
        url=public_url(request, state),
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
    target = request_target(request)
    raw = RawRequest(
        method=request.method,
        path=target if token is None else url_token.redact(target),  # a secret: never stored
        headers=dict(request.headers),
        body=body,
        received_at=inbound.received_at,
    )
    outcome = await state.store.ingest(name, raw, reports)
    for kind in ("applied", "duplicates", "superseded"):
        if count := getattr(outcome, kind):
            state.metrics.reports.labels(name, kind).inc(count)
    state.metrics.observe_finals(name, outcome.finals)
    state.metrics.ingest_seconds.labels(name).observe(time.perf_counter() - arrived)
    answer = provider.answer(outcome)
    return Response(answer.body, answer.status, media_type=answer.media_type)
