"""The two comparison servers of ``bench/ingest.py``: the framework's ceiling and the
naive handler. Both are uvicorn factories (``uvicorn --factory apps:ceiling_app``).

``ceiling_app``
    A Starlette endpoint that reads the body and answers a constant 200: what one
    uvicorn worker can do at all, with no verification and no disk.
``hello_app``
    A change-feed subscriber that reads the body and answers 204: the loopback
    "hello-world" endpoint of the ``subscriber`` row (it checks nothing, so what is
    measured is the receiver's side of a delivery).
``receiver_app``
    The receiver itself, for servers other than ``receiver serve``'s uvicorn (the
    ``granian`` row): the config named by ``RECEIVER_CONFIG``, its logs and its
    collector tuning as ``receiver serve`` sets them up.
``naive_app``
    The obvious correct handler: verify the Standard Webhooks signature, parse the
    payload (the service's own verifier and parser, so the difference is only in how
    it stores), then one ``aiosqlite`` transaction per request, serialized by a lock,
    with ``synchronous=FULL`` (so its 200s are as durable as the service's).

Configured by the environment: ``BENCH_SECRET`` (``whsec_...``), ``BENCH_DB`` (a path).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from receiver.core.status import RANK
from receiver.errors import ReceiverError
from receiver.providers.base import InboundRequest, media_type_of
from receiver.providers.standard import StandardConfig, StandardProvider

_ANSWER = b'{"received": 1, "applied": 1, "duplicates": 0, "superseded": 0}'

# The naive store: a processed set that is also the timeline, and one row per message
# whose status only moves up the rank order (the same rule, reduced to SQL).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    provider TEXT NOT NULL, event_id TEXT NOT NULL, provider_message_id TEXT NOT NULL,
    status TEXT, rank INTEGER NOT NULL, occurred_at TEXT NOT NULL, received_at TEXT NOT NULL,
    body BLOB NOT NULL, PRIMARY KEY (provider, event_id));
CREATE TABLE IF NOT EXISTS messages (
    provider TEXT NOT NULL, provider_message_id TEXT NOT NULL, status TEXT,
    rank INTEGER NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (provider, provider_message_id));
"""


async def _ceiling(request: Request) -> Response:
    await request.body()
    return Response(_ANSWER, media_type="application/json")


def ceiling_app() -> Starlette:
    """Read the body, answer a constant 200."""
    return Starlette(routes=[Route("/webhooks/{provider}", _ceiling, methods=["POST"])])


async def _hello(request: Request) -> Response:
    await request.body()
    return Response(status_code=204)


def hello_app() -> Starlette:
    """Read the body, answer 204."""
    return Starlette(routes=[Route("/changes", _hello, methods=["POST"])])


def naive_app() -> Starlette:
    """Verify, parse, then one serialized durable transaction per request."""
    provider = StandardProvider(
        "default",
        StandardConfig(
            type="standard", secrets=[os.environ["BENCH_SECRET"]], tolerance_seconds=172800
        ),
    )
    path = Path(os.environ["BENCH_DB"])
    lock = asyncio.Lock()
    db: aiosqlite.Connection | None = None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal db
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = FULL")
        await db.executescript(_SCHEMA)
        try:
            yield
        finally:
            await db.close()

    async def receive(request: Request) -> Response:
        assert db is not None
        body = await request.body()
        inbound = InboundRequest(
            method=request.method,
            url=str(request.url),
            headers=request.headers,
            query_string=b"",
            body=body,
            media_type=media_type_of(request.headers),
            received_at=datetime.now(UTC),
        )
        try:
            provider.verify(inbound, time.time())
            reports = provider.parse(inbound)
        except ReceiverError as exc:
            return JSONResponse({"detail": str(exc)}, exc.status)
        received = inbound.received_at.isoformat()
        applied = duplicates = 0
        async with lock:
            await db.execute("BEGIN IMMEDIATE")
            try:
                for report in reports:
                    rank = RANK[report.status] if report.status else 0
                    cursor = await db.execute(
                        "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (
                            "default",
                            report.event_id,
                            report.provider_message_id,
                            report.status,
                            rank,
                            report.occurred_at.isoformat(),
                            received,
                            body,
                        ),
                    )
                    if not cursor.rowcount:
                        duplicates += 1
                        continue
                    applied += 1
                    await db.execute(
                        "INSERT INTO messages VALUES (?, ?, ?, ?, ?)"
                        " ON CONFLICT DO UPDATE SET status = excluded.status,"
                        " rank = excluded.rank, updated_at = excluded.updated_at"
                        " WHERE excluded.rank > messages.rank",
                        ("default", report.provider_message_id, report.status, rank, received),
                    )
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise
        return JSONResponse(
            {"received": len(reports), "applied": applied, "duplicates": duplicates}
        )

    return Starlette(
        routes=[Route("/webhooks/{provider}", receive, methods=["POST"])], lifespan=lifespan
    )


def receiver_app() -> Starlette:
    """The receiver as ``receiver serve --workers N`` builds it in each worker process."""
    from receiver import serving

    serving.prepare_process()
    return serving.worker_app()
