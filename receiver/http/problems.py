"""RFC 9457 problem+json: the one place errors become HTTP answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from receiver.errors import ReceiverError

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_BASE = "https://receiver.dev/problems/"


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    request_id: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = {
        "type": _TYPE_BASE + code.lower().replace("_", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id,
        **extra,
    }
    return Response(json.dumps(body), status, headers, media_type=PROBLEM_MEDIA_TYPE)


def request_id_of(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def for_error(error: ReceiverError, request_id: str) -> Response:
    """The problem+json answer for one of our own errors."""
    return problem_response(
        error.status,
        error.code,
        error.title,
        error.detail,
        request_id,
        error.headers(),
        **error.extensions(),
    )


async def receiver_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ReceiverError)
    return for_error(exc, request_id_of(request))


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (no such route, wrong method) as problem+json."""
    assert isinstance(exc, HTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    code = phrase.upper().replace(" ", "_").replace("-", "_")
    headers = dict(exc.headers or {})
    if "Allow" in headers:  # Starlette joins a set: the same answer in the same order
        headers["Allow"] = ", ".join(sorted(m.strip() for m in headers["Allow"].split(",")))
    return problem_response(
        exc.status_code, code, phrase, str(exc.detail), request_id_of(request), headers
    )
