"""The console's pure ASGI middleware: session cookie, security headers, error pages.

``ConsoleMiddleware`` wraps everything under ``/console`` (outermost first):

1. security headers on every answer, error pages and static files included: a strict
   Content-Security-Policy (nothing inline, nothing from elsewhere, no framing),
   ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin`` and
   ``Cache-Control: no-store`` for every page (static files: ``no-cache``);
2. Starlette's ``SessionMiddleware``: the session is an itsdangerous-signed cookie,
   ``Path=/console; HttpOnly; SameSite=Lax``, plus ``Secure`` when the request came over
   https or ``public_base_url`` is https (two instances, one per flag, chosen per
   request);
3. ``ConsoleError`` (raised by ``current_staff``/``checked_form``) and Starlette's
   ``HTTPException`` (an unknown console path, a wrong method) become their HTML
   answers *inside* the session layer, so a cleared session is written back.
"""

from __future__ import annotations

import hashlib
import hmac
from http import HTTPStatus

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from receiver.console.web import PREFIX, ConsoleError, error_page

COOKIE_NAME = "receiver_console"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


def session_key(session_secret: str) -> str:
    """The cookie-signing key, derived so it differs from every other use of the secret."""
    derived = hmac.new(session_secret.encode(), b"receiver.console.session", hashlib.sha256)
    return derived.hexdigest()


class _Errors:
    """Turns ``ConsoleError`` and ``HTTPException`` into HTML answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ConsoleError as exc:
            if started:
                raise
            await exc.response(scope, receive, send)
        except HTTPException as exc:
            if started:
                raise
            title = HTTPStatus(exc.status_code).phrase
            response = error_page(Request(scope, receive), exc.status_code, title, title + ".")
            if exc.headers:
                response.headers.update(exc.headers)
            await response(scope, receive, send)


class ConsoleMiddleware:
    def __init__(self, app: ASGIApp, *, session_secret: str, always_secure: bool) -> None:
        inner = _Errors(app)
        options = {
            "secret_key": session_key(session_secret),
            "session_cookie": COOKIE_NAME,
            "max_age": None,  # a browser-session cookie; idle and absolute limits are ours
            "path": PREFIX,
            "same_site": "lax",
        }
        self.plain = SessionMiddleware(inner, https_only=False, **options)  # type: ignore[arg-type]
        self.secure = SessionMiddleware(inner, https_only=True, **options)  # type: ignore[arg-type]
        self.always_secure = always_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.plain(scope, receive, send)
            return
        secure = self.always_secure or scope.get("scheme") == "https"
        static = scope["path"].startswith(PREFIX + "/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers[name] = value
                headers["cache-control"] = "no-cache" if static else "no-store"
            await send(message)

        await (self.secure if secure else self.plain)(scope, receive, with_headers)
