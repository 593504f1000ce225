"""The change feed for consumers that pull (README "Status change feed"): ``GET /v1/changes``
and its Server-Sent Events twin ``GET /v1/changes/stream``, viewer and up.

The cursor is a change's position in commit order (its row id, as decimal text). On
SQLite the one writer commits transactions one after another, so a reader that sees a
change also sees every change before it: reading ``id > cursor`` in id order never
skips a change committed later with a smaller id, and never repeats one
(docs/design.md, "The change feed's cursor", says what PostgreSQL needs).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from receiver.errors import BadRequest
from receiver.feed.payload import change_json
from receiver.http.edge import EDGE_STATE_KEY, Edge
from receiver.http.staff import _json, authenticate
from receiver.records import ChangeRecord
from receiver.services.schemas import ChangeList
from receiver.services.state import AppState

_CURSOR = re.compile(r"0|[1-9][0-9]{0,17}")
STREAM_BATCH = 100
POLL_SECONDS = 1.0
"""How often an idle stream looks for changes committed by other processes."""
KEEPALIVE_POLLS = 15


class ChangesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: str | None = None
    limit: int = Field(default=100, ge=1, le=1000)


def parse_cursor(value: str | None, field: str) -> int:
    """A cursor from ``after`` or ``Last-Event-ID`` (none: the beginning)."""
    if value is None or value == "":
        return 0
    if not _CURSOR.fullmatch(value):
        raise BadRequest(
            f"{field}: is not a cursor this service issued", code="CURSOR_INVALID", field=field
        )
    return int(value)


def _query(request: Request, allowed: set[str]) -> ChangesQuery:
    params = dict(request.query_params)
    try:
        unknown = next(name for name in params if name not in allowed)
    except StopIteration:
        pass
    else:
        raise BadRequest(
            f"{unknown}: is not a known parameter", code="FILTER_INVALID", field=unknown
        )
    try:
        return ChangesQuery.model_validate(params)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"])
        raise BadRequest(f"{field}: {message}", code="FILTER_INVALID", field=field) from None


async def list_changes(request: Request) -> Response:
    member = await authenticate(request)
    state: AppState = request.app.state.receiver
    query = _query(request, {"after", "limit"})
    cursor = parse_cursor(query.after, "after")
    changes = await state.store.changes_after(cursor, query.limit)
    items = [change_json(change, member.role) for change in changes]
    following = changes[-1].cursor if changes else cursor
    return _json(ChangeList(items=items, next=str(following)))


def _event(change: ChangeRecord, role: str) -> bytes:
    data = change_json(change, role).model_dump_json()
    return f"id: {change.cursor}\nevent: message.status_changed\ndata: {data}\n\n".encode()


async def stream_changes(request: Request) -> Response:
    """Every change after the cursor, then each new one as it commits. ``Last-Event-ID``
    (sent by a reconnecting EventSource) takes precedence over ``after``. An idle
    stream gets a comment every KEEPALIVE_POLLS polls, and ends once the token is
    revoked or the server begins to shut down (within a poll)."""
    member = await authenticate(request)
    state: AppState = request.app.state.receiver
    query = _query(request, {"after"})
    resume = request.headers.get("last-event-id")
    cursor = (
        parse_cursor(resume, "Last-Event-ID")
        if resume is not None
        else parse_cursor(query.after, "after")
    )

    edge = request.scope.get("state", {}).get(EDGE_STATE_KEY)
    closing = edge.closing if isinstance(edge, Edge) else asyncio.Event()

    async def events() -> AsyncIterator[bytes]:
        position, idle = cursor, 0
        yield b"retry: 1000\n\n"
        while not closing.is_set():  # the server shuts down: the client reconnects
            signal = state.change_signal.current()
            batch = await state.store.changes_after(position, STREAM_BATCH)
            for change in batch:
                yield _event(change, member.role)
                position, idle = change.cursor, 0
            if len(batch) == STREAM_BATCH or await state.change_signal.wait(signal, POLL_SECONDS):
                continue
            idle += 1
            if idle % KEEPALIVE_POLLS == 0:
                if await state.store.staff_by_id(member.id) is None:
                    return
                yield b": keep-alive\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
