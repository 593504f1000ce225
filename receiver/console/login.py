"""Log in (a staff token, or name and password) and log out.

The login form carries a CSRF token like every other form: the session exists (empty
but for that token) before login, and a successful login replaces it entirely, so no
value chosen before login survives (session fixation). Nothing in the session is a
secret: it holds the member's id, never the token or the password.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from receiver.auth import PASSWORD_MAX_LENGTH, hash_token
from receiver.console.passwords import PasswordChecks, TooManyAttempts
from receiver.console.web import (
    LOGIN_PATH,
    ConsoleError,
    app_state,
    checked_form,
    current_staff,
    render,
    safe_next,
    start_session,
)
from receiver.records import StaffMember

_NOTICES = {
    "expired": "Your session expired. Log in again.",
    "ended": "Your session has ended. Log in again.",
    "out": "You are logged out.",
}


def _page(request: Request, next_path: str, error: str | None, status_code: int) -> Response:
    notice = _NOTICES.get(request.query_params.get("reason", ""))
    context = {"next": next_path, "error": error, "notice": notice}
    return render(request, "login.html", context, status_code)


async def login_page(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    if "staff" in request.session:
        try:
            await current_staff(request)
        except ConsoleError:
            request.session.clear()  # expired or ended: show the form (and its notice)
        else:
            return RedirectResponse(next_path, status_code=303)
    return _page(request, next_path, None, 200)


def _password_checks(request: Request) -> PasswordChecks:
    """The app's password limits and hashing threads (tokens are 256 random bits and
    a plain hash: not limited)."""
    checks: PasswordChecks | None = getattr(request.app.state, "console_passwords", None)
    if checks is None:
        checks = PasswordChecks(app_state(request).config.settings)
        request.app.state.console_passwords = checks
    return checks


async def login(request: Request) -> Response:
    form = await checked_form(request)
    next_path = safe_next(str(form.get("next") or ""))
    token = str(form.get("token") or "").strip()
    name = str(form.get("name") or "").strip()
    password = str(form.get("password") or "")
    member: StaffMember | None
    if token:
        member = await app_state(request).store.staff_by_token_hash(hash_token(token))
    elif name and password and len(password) <= PASSWORD_MAX_LENGTH:
        state = app_state(request)
        address = request.client.host if request.client else "unknown"  # ForwardedHeaders
        try:
            member = await _password_checks(request).check(state.store, address, name, password)
        except TooManyAttempts as refused:
            wait = max(1, math.ceil(refused.retry_after))
            answer = _page(request, next_path, f"Too many attempts: wait {wait} s.", 429)
            answer.headers["retry-after"] = str(wait)
            return answer
    else:
        return _page(request, next_path, "Enter your name and password, or your token.", 400)
    if member is None:
        return _page(request, next_path, "That did not match an active staff member.", 403)
    start_session(request, member)
    return RedirectResponse(next_path, status_code=303)


async def logout(request: Request) -> Response:
    """Ends every console session of the member (a copied cookie stops working too)."""
    await checked_form(request)
    staff_id = request.session.get("staff")
    if isinstance(staff_id, str):
        await app_state(request).store.end_staff_sessions(staff_id, datetime.now(UTC))
    request.session.clear()
    return RedirectResponse(LOGIN_PATH + "?reason=out", status_code=303)
