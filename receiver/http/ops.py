"""Operations routes (README "HTTP API"): health, readiness, metrics, OpenAPI."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from receiver.errors import StoreUnavailable
from receiver.http.openapi import build_document
from receiver.http.problems import for_error, request_id_of
from receiver.services.state import AppState


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


async def _refresh_store_gauges(state: AppState) -> None:
    """The gauge read from the store at each scrape: is it up. (Overdue messages per
    provider are counted by the reconciler at each pass.)"""
    try:
        await state.store.ping()
    except StoreUnavailable:
        state.metrics.store_up.set(0)
        return
    state.metrics.store_up.set(1)


async def openapi(request: Request) -> Response:
    return JSONResponse(build_document())
