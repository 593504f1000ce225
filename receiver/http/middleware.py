"""Pure ASGI middleware (no ``BaseHTTPMiddleware``: it buffers and breaks streaming).

``ForwardedHeaders`` (outermost) names the caller behind a proxy in
``trusted_proxies``, so that every route and the access line see the caller, not the
proxy.

``RequestContext`` gives every HTTP request an id (the caller's sane
``X-Request-ID`` or a fresh one), echoes it on the answer, logs one JSON access
line, and turns an unhandled exception into a problem+json 500 that still carries
the id and never a stack trace. A client that goes away before its body has arrived
(or is cut off by the edge's body timeout, receiver.http.edge) is no error of ours:
its access line says 499 (nginx's "client closed request") and nothing is answered.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import re
import time
from collections.abc import Sequence

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from receiver import logs
from receiver.config import IPNetwork
from receiver.core.phone import mask_phone_numbers
from receiver.http.problems import problem_response

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
log = logging.getLogger("receiver.access")
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
CLIENT_CLOSED_REQUEST = 499


FORWARDED_ORIGIN = "forwarded_origin"
"""The request state key (``request.state``) of the public origin a trusted proxy named."""


class ForwardedHeaders:
    """``X-Forwarded-For``, ``-Proto`` and ``-Host``, from a peer in ``trusted_proxies``
    only (a header from anyone else is ignored):

    - ``X-Forwarded-For``: the caller is the last hop that is not itself a trusted
      proxy (earlier hops are whatever the client wrote); every hop trusted: the peer.
      A hop that is not an IP address makes the caller unknown (``client`` None): a
      garbled chain proves nothing about who called. Several header lines are one
      comma-separated list (RFC 9110, section 5.3).
    - ``X-Forwarded-Host``, with ``X-Forwarded-Proto`` (else the request's scheme): the
      public origin, ``proto://host``, kept as ``request.state.forwarded_origin`` for
      URL-signing schemes (``receiver.http.webhooks.public_url``). A proto without a
      host is ignored, and the scope's scheme stays the scheme the proxy connected
      with: console cookies are ``Secure`` by that or by an https
      ``public_base_url``, never by a forwarded header (docs/design.md).

    uvicorn's ``ProxyHeadersMiddleware`` is not reused: it ignores
    ``X-Forwarded-Host``, rewrites the scope's scheme from ``X-Forwarded-Proto``,
    takes a hop that is no address (or ``host:port``) as the caller, names the leftmost,
    client-written hop when every hop is trusted, and keeps its networks in a private
    class; a subclass would replace all of ``__call__``.
    """

    def __init__(self, app: ASGIApp, trusted: Sequence[IPNetwork]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if client and scope["type"] == "http" and self._trusts(_address(client[0])):
            self._forwarded(scope, client[0])
        await self.app(scope, receive, send)

    def _trusts(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in network for network in self.trusted)

    def _forwarded(self, scope: Scope, peer: str) -> None:
        forwarded_for: list[str] = []
        host = proto = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded_for += value.decode("latin-1").split(",")
            elif name == b"x-forwarded-host" and host is None:
                host = value.decode("latin-1").split(",")[0].strip()
            elif name == b"x-forwarded-proto" and proto is None:
                proto = value.decode("latin-1").split(",")[0].strip()
        hops = [hop.strip() for hop in forwarded_for if hop.strip()]
        if hops:
            caller = self._caller(hops, peer)
            scope["client"] = None if caller is None else (caller, 0)
        if host is not None:
            origin = f"{scope['scheme'] if proto is None else proto}://{host}"
            scope.setdefault("state", {})[FORWARDED_ORIGIN] = origin

    def _caller(self, hops: list[str], peer: str) -> str | None:
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                return None
            if not self._trusts(address):
                return hop
        return peer


def _address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def fresh_request_id() -> str:
    """32 random hex digits. An id to find log lines by, not a secret: ``random``
    rather than ``uuid4``, whose ``os.urandom`` is a system call on every request
    (docs/performance.md)."""
    return f"{random.getrandbits(128):032x}"


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode(
            "latin-1"
        )
        request_id = offered if _SANE_ID.fullmatch(offered) else fresh_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            if not response_started:
                status = CLIENT_CLOSED_REQUEST
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            if response_started:
                raise
            response = problem_response(
                500, "INTERNAL", "Internal error", "the request failed unexpectedly", request_id
            )
            await response(scope, receive, send_with_id)
        finally:
            if log.isEnabledFor(logging.INFO):
                _log_access(scope, request_id, offered == request_id, status, started)


def _log_access(scope: Scope, request_id: str, offered: bool, status: int, started: float) -> None:
    """One access line, its text fields masked here (``logs.PREMASKED``): the hot
    path's repeat (method, path, message, client) from a cache, a caller's own request
    id afresh, ours (hex digits) not at all. The same line as the formatter's
    whole-line mask would write, at a fraction of its cost (docs/performance.md)."""
    method, path = scope["method"], scope["path"]
    client = scope.get("client")
    logs.info_premasked(
        log,
        logs.mask_repeated(f"{method} {path} {status}"),
        {
            "request_id": mask_phone_numbers(request_id) if offered else request_id,
            "method": logs.mask_repeated(method),
            "path": logs.mask_repeated(path),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "client": logs.mask_repeated(client[0]) if client else None,
        },
    )
