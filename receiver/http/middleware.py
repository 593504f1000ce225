"""Pure ASGI middleware (no ``BaseHTTPMiddleware``: it buffers and breaks streaming).

``RequestContext`` gives every HTTP request an id (the caller's sane
``X-Request-ID`` or a fresh one), echoes it on the answer, logs one JSON access
line, and turns an unhandled exception into a problem+json 500 that still carries
the id and never a stack trace. A client that goes away before its body has arrived
(or is cut off by the edge's body timeout, receiver.http.edge) is no error of ours:
its access line says 499 (nginx's "client closed request") and nothing is answered.
"""

from __future__ import annotations

import logging
import random
import re
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from receiver.http.problems import problem_response

log = logging.getLogger("receiver.access")
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
CLIENT_CLOSED_REQUEST = 499


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
            log.info(
                "%s %s %d",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client": scope["client"][0] if scope.get("client") else None,
                },
            )
