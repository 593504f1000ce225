"""Operations routes (contract section 8): health, readiness, metrics, OpenAPI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from receiver.core.delivery import summarize
from receiver.errors import StoreUnavailable
from receiver.http.openapi import build_document
from receiver.http.problems import for_error, request_id_of
from receiver.http.state import AppState


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state: AppState = request.app.state.receiver
    try:
        await state.store.ping()
    except StoreUnavailable as exc:
        return for_error(exc, request_id_of(request))
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    state: AppState = request.app.state.receiver
    await _refresh_store_gauges(state)
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


OVERDUE_AFTER = timedelta(hours=1)
OVERDUE_LOOKBACK = timedelta(days=7)


async def _refresh_store_gauges(state: AppState) -> None:
    """The gauges read from the store at each scrape: is it up, and how many messages
    are overdue per provider (not final an hour after they were created)."""
    try:
        await state.store.ping()
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        cells = await state.store.delivery_cells(
            now - OVERDUE_LOOKBACK, now - OVERDUE_AFTER, ("provider",), None
        )
    except StoreUnavailable:
        state.metrics.store_up.set(0)
        return
    state.metrics.store_up.set(1)
    pending = {name: 0 for name in state.config.providers}
    for row in summarize(cells, ("provider",), None):
        pending[row["provider"]] = row["pending"]
    for provider, count in pending.items():
        state.metrics.overdue.labels(provider).set(count)


async def openapi(request: Request) -> Response:
    return JSONResponse(build_document())
