"""The HTTP edge: Starlette app, routes, pure-ASGI middleware, problem+json."""

from receiver.http.app import create_app

__all__ = ["create_app"]
