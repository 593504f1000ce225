"""The OpenAPI 3.1 document, generated from the pydantic models of every route."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from receiver import __version__
from receiver.core import idempotency
from receiver.core.network import NETWORK_FILTER_PATTERN
from receiver.core.status import Status
from receiver.http.health import StatsOut
from receiver.http.sends import SendRequest
from receiver.providers.standard import StandardPayload
from receiver.services.schemas import (
    ChangeList,
    ChangeNotification,
    EventList,
    Health,
    IngestResult,
    MessageList,
    MessageOut,
    Problem,
    ReprocessResult,
    SentMessage,
)

_REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    responses: dict[int, type[BaseModel] | str]
    body: type[BaseModel] | None = None
    parameters: list[dict[str, Any]] = field(default_factory=list)
    staff: bool = False
    headers: dict[int, dict[str, str]] = field(default_factory=dict)
    """Response header fields by status: name -> description."""


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _header(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": schema,
    }


_DATE_TIME = {"type": "string", "format": "date-time"}
"""RFC 3339 with its offset, as ``receiver.core.timestamps.parse_rfc3339`` reads it."""


_RATE_HEADERS = {
    "RateLimit-Policy": 'The client\'s send quota, e.g. `"send";q=20;w=2` '
    "(draft-ietf-httpapi-ratelimit-headers).",
    "RateLimit": 'What is left of it, e.g. `"send";r=19;t=1` (seconds until all of it is back).',
}


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


_COUNTRY = {"type": "string", "pattern": "^([A-Za-z]{2}|unknown)$"}
_NETWORK = {"type": "string", "pattern": NETWORK_FILTER_PATTERN}

_MESSAGE_FILTERS = [
    _query("provider", "Provider name."),
    _query(
        "provider_message_id",
        "The provider's id of the message; also finds the messages filed as `ID:recipient`"
        " (every message of a Sinch batch by the batch id).",
    ),
    _query("to", "Recipient, E.164."),
    _query("client_reference", "The sender's business reference."),
    _query("status", "Current status.", {"type": "string", "enum": [s.value for s in Status]}),
    _query("country", "Destination country, ISO 3166-1 alpha-2 (`PH`); `unknown`: none.", _COUNTRY),
    _query(
        "network",
        "Mobile network a report named, `MCC-MNC` (`515-02`); `unknown`: none named.",
        _NETWORK,
    ),
    _query("since", "Created at or after this RFC 3339 date-time.", _DATE_TIME),
    _query("until", "Created before this RFC 3339 date-time.", _DATE_TIME),
]
_WHOLE_HOUR = "RFC 3339 date-time on a whole hour (the figures are kept per hour)"

OPERATIONS = [
    Operation(
        "post",
        "/webhooks/{provider}",
        "Receive a signed delivery report (for type `standard`, the body shown).",
        {
            200: IngestResult,
            400: Problem,
            401: Problem,
            404: Problem,
            413: Problem,
            415: Problem,
            503: Problem,
        },
        body=StandardPayload,
        parameters=[_path("provider", "The provider's name in the config file.")],
    ),
    Operation(
        "get",
        "/webhooks/{provider}",
        "Receive a report carried in the query string (provider types that use GET).",
        {200: IngestResult, 400: Problem, 401: Problem, 404: Problem, 405: Problem, 503: Problem},
        parameters=[_path("provider", "The provider's name in the config file.")],
    ),
    Operation(
        "get",
        "/v1/messages",
        "Search messages, newest first.",
        {200: MessageList, 400: Problem, 401: Problem, 403: Problem},
        parameters=[
            *_MESSAGE_FILTERS,
            _query(
                "overdue",
                "`true`: only messages whose final report is overdue (not final, no report"
                " or send step for the provider's `report_timeout_seconds`); `false`: any.",
                {"type": "boolean"},
            ),
            _query(
                "limit",
                "Page size, 1-200 (default 50).",
                {"type": "integer", "minimum": 1, "maximum": 200},
            ),
            _query("cursor", "The previous page's next_cursor."),
        ],
        staff=True,
    ),
    Operation(
        "post",
        "/v1/messages",
        "Sender or admin: queue a message to send (committed with its outbox entry).",
        {
            202: SentMessage,
            400: Problem,
            401: Problem,
            403: Problem,
            409: Problem,
            413: Problem,
            415: Problem,
            422: Problem,
            429: Problem,
            503: Problem,
        },
        body=SendRequest,
        parameters=[
            _header(
                "Idempotency-Key",
                "1-255 printable ASCII characters, per client token"
                " (draft-ietf-httpapi-idempotency-key-header): the same request again gets"
                " the stored answer. Required without a client_reference.",
                {"type": "string", "pattern": idempotency.KEY_PATTERN},
            )
        ],
        staff=True,
        headers={
            202: {
                "Location": "The message: `/v1/messages/{id}`.",
                "Idempotent-Replayed": "`true` when this is the stored answer to the key.",
                **_RATE_HEADERS,
            },
            409: {"Retry-After": "With IDEMPOTENCY_KEY_IN_USE: when to ask again."},
            429: {"Retry-After": "Seconds until one more send is allowed.", **_RATE_HEADERS},
        },
    ),
    Operation(
        "get",
        "/v1/messages.csv",
        "The messages a search finds, newest first, streamed as CSV with a header row"
        " (cells that would start a spreadsheet formula get a leading `'`).",
        {200: "text/csv", 400: Problem, 401: Problem, 403: Problem},
        parameters=_MESSAGE_FILTERS,
        staff=True,
    ),
    Operation(
        "get",
        "/v1/stats/delivery",
        "Delivery rate, pending share and report latency by bucket and group (viewer and up).",
        {200: StatsOut, 400: Problem, 401: Problem, 403: Problem},
        parameters=[
            _query(
                "since",
                f"Messages created at or after this {_WHOLE_HOUR}; default a day before until.",
                _DATE_TIME,
            ),
            _query(
                "until",
                f"Messages created before this {_WHOLE_HOUR}; default the end of the current hour.",
                _DATE_TIME,
            ),
            _query(
                "group_by",
                "Comma-separated keys: provider, country, network.",
                {
                    "type": "string",
                    "pattern": "^(provider|country|network)(,(provider|country|network))*$",
                },
            ),
            _query("bucket", "One row per hour or day.", {"type": "string", "enum": ["1h", "1d"]}),
        ],
        staff=True,
    ),
    Operation(
        "get",
        "/v1/messages/{message_id}",
        "One message.",
        {200: MessageOut, 401: Problem, 403: Problem, 404: Problem},
        parameters=[_path("message_id", "Our message id.")],
        staff=True,
    ),
    Operation(
        "get",
        "/v1/messages/{message_id}/events",
        "A message's timeline, oldest first.",
        {200: EventList, 401: Problem, 403: Problem, 404: Problem},
        parameters=[_path("message_id", "Our message id.")],
        staff=True,
    ),
    Operation(
        "post",
        "/v1/events/{provider}/{event_id}/reprocess",
        "Admin: re-run an event's stored request through the current parser.",
        {
            200: ReprocessResult,
            401: Problem,
            403: Problem,
            404: Problem,
            410: Problem,
            422: Problem,
        },
        parameters=[
            _path("provider", "The provider's name in the config file."),
            _path("event_id", "The event id, as in the message's timeline."),
        ],
        staff=True,
    ),
    Operation(
        "get",
        "/v1/changes",
        "The status change feed, in commit order: follow `next` to miss no change.",
        {200: ChangeList, 400: Problem, 401: Problem, 403: Problem},
        parameters=[
            _query(
                "after",
                "A cursor: the `next` of the previous page, or an SSE `id:` (default: the"
                " beginning).",
                {"type": "string", "pattern": "^(0|[1-9][0-9]{0,17})?$"},
            ),
            _query(
                "limit",
                "Page size, 1-1000 (default 100).",
                {"type": "integer", "minimum": 1, "maximum": 1000},
            ),
        ],
        staff=True,
    ),
    Operation(
        "get",
        "/v1/changes/stream",
        "The change feed as Server-Sent Events: `id:` is the cursor, `data:` a change"
        " (as in `/v1/changes`); it stays open and sends each new change as it commits.",
        {200: "text/event-stream", 400: Problem, 401: Problem, 403: Problem},
        parameters=[
            _query(
                "after",
                "Start after this cursor (default: the beginning).",
                {"type": "string", "pattern": "^(0|[1-9][0-9]{0,17})?$"},
            ),
            _header(
                "Last-Event-ID",
                "Resume after this cursor (sent by a reconnecting EventSource); takes"
                " precedence over `after`.",
                {"type": "string", "pattern": "^(0|[1-9][0-9]{0,17})?$"},
            ),
        ],
        staff=True,
    ),
    Operation("get", "/healthz", "The process is alive.", {200: Health}),
    Operation("get", "/readyz", "The store is reachable.", {200: Health, 503: Problem}),
    Operation("get", "/metrics", "Prometheus metrics.", {200: "text/plain"}),
    Operation("get", "/openapi.json", "This document.", {200: "application/json"}),
]


def _response(model: type[BaseModel] | str, status: int, headers: dict[str, str]) -> dict[str, Any]:
    if isinstance(model, str):  # a media type whose body no model describes
        schema = {"type": "object"} if model == "application/json" else {"type": "string"}
        return {"description": "OK", "content": {model: {"schema": schema}}}
    media = "application/problem+json" if model is Problem else "application/json"
    description = "Error" if model is Problem else "OK"
    response: dict[str, Any] = {
        "description": description if status >= 400 else "OK",
        "content": {media: {"schema": {"$ref": _REF.format(model=model.__name__)}}},
    }
    if headers:
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return response


def build_document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    bodies = {op.body for op in OPERATIONS if op.body}
    models = (
        bodies
        | {ChangeNotification}
        | {m for op in OPERATIONS for m in op.responses.values() if not isinstance(m, str)}
    )
    _, schemas = models_json_schema(
        [(m, "validation" if m in bodies else "serialization") for m in models],
        ref_template=_REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        entry: dict[str, Any] = {
            "summary": op.summary,
            "parameters": op.parameters,
            "responses": {
                str(s): _response(m, s, op.headers.get(s, {})) for s, m in op.responses.items()
            },
        }
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": _REF.format(model=op.body.__name__)}}
                },
            }
        if op.staff:
            entry["security"] = [{"bearer": []}]
        paths.setdefault(op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "receiver",
            "version": __version__,
            "description": "SMS delivery-report webhooks and the staff API.",
        },
        "paths": paths,
        "webhooks": {
            "message.status_changed": {
                "post": {
                    "summary": "A status change, POSTed to each [subscribers.NAME] url whose"
                    " filters match; signed with Standard Webhooks v1 (`webhook-id` is the"
                    " change id). Any 2xx acknowledges it.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": _REF.format(model="ChangeNotification")}
                            }
                        },
                    },
                    "responses": {"200": {"description": "Acknowledged (any 2xx)."}},
                }
            }
        },
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
