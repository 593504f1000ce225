"""What every console page uses: the logged-in member, CSRF, templates, error pages.

A page handler starts with ``staff = await current_staff(request)`` (or
``current_staff(request, "admin")``), reads a changing form with
``form = await checked_form(request)`` and answers with
``render(request, "page.html", {...})``. Both helpers raise ``ConsoleError``, which
``receiver.console.middleware`` turns into its answer (a 303 to the login page, or a
plain 403 page), so a handler never checks anything twice.

The session (a signed cookie, see docs/design.md) holds only:
``staff`` (the member's id, never the token), ``since`` and ``seen`` (when the login
happened and the last request, Unix seconds) and ``csrf`` (the synchronizer token).
"""

from __future__ import annotations

import hmac
import secrets
import time
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import jinja2
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from receiver.auth import role_allows
from receiver.core.phone import mask_phone
from receiver.core.status import FINAL, Status, parse_status
from receiver.records import StaffMember
from receiver.services.state import AppState

PREFIX = "/console"
HOME = PREFIX + "/"
LOGIN_PATH = PREFIX + "/login"
CSRF_FIELD = "csrf_token"
ABSOLUTE_SESSION_SECONDS = 12 * 3600
"""A login lasts at most this long, however active (the idle timeout is configurable)."""


class ConsoleError(Exception):
    """A page cannot go on; ``response`` is the whole answer (see the middleware)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _template_dir() -> str:
    return str(resources.files("receiver.console").joinpath("templates"))


@jinja2.pass_context
def _phone(context: jinja2.runtime.Context, number: str | None) -> str:
    """``{{ message.to|phone }}``: the number as the logged-in member may see it."""
    staff: StaffMember | None = context.get("staff")
    return mask_phone(number, staff.role if staff else "viewer")


def when_text(moment: datetime | None) -> str:
    """The console's one way to write a time, on every page: UTC to the second, with
    the zone said (``2026-11-23 09:59:58 UTC``); ``{{ moment|when }}`` in templates."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def status_tone(status: str | None) -> str:
    """The CSS class of a status badge: ``tone-good``, ``tone-bad``, ``tone-wait`` or
    ``tone-unknown`` (see static/console.css)."""
    if status is None:
        return "tone-unknown"
    parsed = parse_status(status)
    if parsed is Status.DELIVERED:
        return "tone-good"
    if parsed in FINAL:
        return "tone-bad"
    if parsed in (Status.QUEUED, Status.SENT, Status.BUFFERED):
        return "tone-wait"
    return "tone-unknown"


@jinja2.pass_context
def _csrf_field(context: jinja2.runtime.Context) -> Markup:
    """``{{ csrf_field() }}`` inside every ``<form method="post">``."""
    token = context.get("csrf_token", "")
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, token)


templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(_template_dir()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)
templates.env.filters["phone"] = _phone
templates.env.filters["when"] = when_text
templates.env.filters["tone"] = status_tone
templates.env.globals["csrf_field"] = _csrf_field
templates.env.globals["prefix"] = PREFIX


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.receiver
    return state


def csrf_token(request: Request) -> str:
    """The session's synchronizer token, made on first use (also before login)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """The template with ``staff`` (the member or None), ``csrf_token`` and ``request``."""
    full = {
        "staff": getattr(request.state, "staff", None),
        "csrf_token": csrf_token(request),
        **(context or {}),
    }
    return templates.TemplateResponse(request, template, full, status_code=status_code)


def error_page(request: Request, status_code: int, title: str, detail: str) -> Response:
    return render(request, "error.html", {"title": title, "detail": detail}, status_code)


def safe_next(value: str | None) -> str:
    """Where to go after login: a console path on this site, or the console's home.

    Only a relative path under ``/console`` is accepted (never ``//host``, a
    backslash, a scheme or a control character), so ``next`` cannot send a member to
    another site.
    """
    if not value or any(c in value for c in "\\\r\n\t") or not value.startswith("/"):
        return HOME
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        return HOME
    if parts.path != PREFIX and not parts.path.startswith(PREFIX + "/"):
        return HOME
    if parts.path.startswith(LOGIN_PATH) or {".", ".."} & set(unquote(parts.path).split("/")):
        return HOME
    return value


def login_redirect(request: Request, reason: str | None = None) -> ConsoleError:
    """A 303 to the login page; after login a GET comes back to where it was."""
    target = LOGIN_PATH
    query = []
    if request.method in ("GET", "HEAD"):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query.append("next=" + quote(here, safe="/"))
    if reason:
        query.append("reason=" + reason)
    if query:
        target += "?" + "&".join(query)
    return ConsoleError(RedirectResponse(target, status_code=303))


def start_session(request: Request, member: StaffMember) -> None:
    """A fresh session for ``member`` (a new CSRF token: no pre-login value survives)."""
    now = round(time.time(), 3)
    request.session.clear()
    request.session.update(
        {"staff": member.id, "since": now, "seen": now, "csrf": secrets.token_urlsafe(32)}
    )


async def current_staff(request: Request, needed: str = "viewer") -> StaffMember:
    """The logged-in member, looked up again on every request (so a revoked member,
    or one whose sessions were ended, is out at once); raises ``ConsoleError``: a 303 to
    the login page without a live session, a 403 page if the role is under ``needed``.
    """
    state = app_state(request)
    session = request.session
    staff_id = session.get("staff")
    if not isinstance(staff_id, str):
        raise login_redirect(request)
    now = time.time()
    since = float(session.get("since", 0))
    seen = float(session.get("seen", 0))
    idle = state.config.settings.console_idle_timeout_seconds
    if now - seen > idle or now - since > ABSOLUTE_SESSION_SECONDS:
        session.clear()
        raise login_redirect(request, "expired")
    member = await state.store.staff_by_id(staff_id)
    if member is None or (
        member.sessions_after is not None and since < member.sessions_after.timestamp()
    ):
        session.clear()
        raise login_redirect(request, "ended")
    session["seen"] = round(now, 3)
    request.state.staff = member
    if not role_allows(member.role, needed):
        raise ConsoleError(
            error_page(
                request,
                403,
                "Not allowed",
                f"Your role ({member.role}) may not do this; it needs {needed}.",
            )
        )
    return member


def csrf_matches(request: Request, sent: object) -> bool:
    expected = request.session.get("csrf")
    if not isinstance(sent, str) or not isinstance(expected, str) or not sent:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


async def checked_form(request: Request) -> FormData:
    """The POSTed form, once its CSRF token matches the session's; a plain 403 page
    otherwise (nothing is changed)."""
    form = await request.form()
    if not csrf_matches(request, form.get(CSRF_FIELD)):
        raise ConsoleError(csrf_refused())
    return form


def csrf_refused() -> Response:
    body = (
        "<!doctype html><title>Refused</title><h1>403: form refused</h1>"
        "<p>The form's security token is missing or stale. Go back, reload the page "
        "and try again.</p>"
    )
    return Response(body, 403, media_type="text/html")
