"""The support console: server-rendered pages for staff under ``/console``.

Notes for page authors (the message and overview pages build on this):

- Routes: add yours in ``_page_routes()`` below (the marked block); paths are relative
  to ``/console`` (``Route("/messages/{message_id}", message.page)``).
- In a handler, from ``receiver.console.web``:
  ``staff = await current_staff(request)`` first (``current_staff(request, "admin")``
  for admin-only pages/actions): it redirects to the login page (303) without a live
  session and answers a 403 page when the role is too low;
  ``form = await checked_form(request)`` for every POST (CSRF; a plain 403 otherwise);
  ``render(request, "page.html", {...})`` answers (adds ``staff``, ``csrf_token``);
  ``app_state(request)`` is the ``AppState`` (store, config);
  ``error_page(request, 404, "Not found", "No message with this id.")``.
- In templates: ``{% extends "base.html" %}`` with blocks ``title`` and ``content``;
  ``{{ csrf_field() }}`` inside each ``<form method="post">``; ``{{ number|phone }}``
  masks a phone number for the member's role (``mask_phone(number, role)`` in
  ``receiver.core.phone`` for Python); ``{{ moment|when }}`` formats a datetime in
  UTC; ``{{ status|tone }}`` is a badge class (``<span class="badge {{ s|tone }}">``);
  ``{{ prefix }}`` is ``/console``. Static files: ``{{ prefix }}/static/NAME``.
  No inline ``<script>``/``style=``: the CSP refuses them.
- Every answer gets the security headers and ``Cache-Control: no-store`` from
  ``receiver.console.middleware``.
"""

from __future__ import annotations

from importlib import resources

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from receiver.config import Config
from receiver.console import feed, health, login, message, overdue, overview, search
from receiver.console.middleware import ConsoleMiddleware
from receiver.console.web import PREFIX


def _page_routes() -> list[BaseRoute]:
    """The message and overview pages (part B)."""
    # --- part B: add routes below this line -------------------------------------
    return [
        Route("/", overview.page, methods=["GET"]),
        Route("/messages/{message_id}", message.page, methods=["GET"]),
        Route("/messages/{message_id}/reprocess", message.reprocess, methods=["POST"]),
        Route("/overdue", overdue.page, methods=["GET"]),
        Route("/subscribers", feed.subscribers_page, methods=["GET"]),
    ]
    # --- part B: add routes above this line -------------------------------------


def mount(config: Config) -> Mount:
    """Everything under ``/console``, wrapped in ``ConsoleMiddleware``."""
    base_url = config.settings.public_base_url
    static = str(resources.files("receiver.console").joinpath("static"))
    routes: list[BaseRoute] = [
        Route("/login", login.login_page, methods=["GET"]),
        Route("/login", login.login, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/messages", search.search_page, methods=["GET"]),
        Route("/messages.csv", search.search_csv, methods=["GET"]),
        Route("/health", health.page, methods=["GET"]),
        *_page_routes(),
        Mount("/static", app=StaticFiles(directory=static), name="static"),
    ]
    return Mount(
        PREFIX,
        routes=routes,
        middleware=[
            Middleware(
                ConsoleMiddleware,
                session_secret=config.settings.session_secret,
                always_secure=base_url is not None and base_url.scheme == "https",
            )
        ],
    )


__all__ = ["mount"]
