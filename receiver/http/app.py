"""The Starlette application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from itsdangerous import URLSafeSerializer
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from receiver import console, retention
from receiver.config import Config
from receiver.errors import ReceiverError
from receiver.feed.metrics import FeedMetrics
from receiver.feed.worker import DeliveryWorker
from receiver.http import admin, changes, health, ops, sends, staff, webhooks
from receiver.http.admission import Admission
from receiver.http.edge import EDGE_STATE_KEY, Edge
from receiver.http.metrics import Metrics
from receiver.http.middleware import ForwardedHeaders, RequestContext
from receiver.http.problems import http_error, receiver_error
from receiver.http.state import AppState
from receiver.outbound.reconcile import Reconciler
from receiver.outbound.worker import OutboxWorker
from receiver.store.sqlite import SqliteStore


async def messages(request: Request) -> Response:
    """``/v1/messages``: one route for both methods, so that a 405 (``OPTIONS``, say)
    names both in ``Allow``; Starlette would answer from the first route alone."""
    if request.method == "POST":
        return await sends.send_message(request)
    return await staff.list_messages(request)


def create_app(config: Config) -> Starlette:
    """The app for one configuration; the store opens and drains with its lifespan."""
    metrics = Metrics()
    store = SqliteStore(config.sqlite_path, on_commit=metrics.observe_commit)
    state = AppState(
        config=config,
        store=store,
        metrics=metrics,
        cursors=URLSafeSerializer(config.settings.session_secret, salt="receiver.cursor"),
        admission=Admission(config.settings.send_rate_limits),
    )

    metrics.watch_wal(store.wal_bytes)
    feed_metrics = FeedMetrics(metrics.registry, list(config.settings.subscribers))
    store.watch_changes(state.change_signal.notify)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        edge = Edge(config.settings.server, metrics)  # per process: RLIMIT_NOFILE is
        await store.open()
        pruning = asyncio.create_task(sends.prune_idempotency_keys(store))
        retaining = asyncio.create_task(
            retention.keep_pruning(
                store, config.settings.retention, lambda: datetime.now(UTC), metrics.observe_pruned
            )
        )
        worker = OutboxWorker(store, config)
        sending = asyncio.create_task(worker.run())
        reconciler = Reconciler(store, config, worker, metrics=metrics.reconcile)
        reconciling = asyncio.create_task(reconciler.run())
        deliverer = DeliveryWorker(store, config, feed_metrics)
        delivering = asyncio.create_task(deliverer.run())
        try:
            yield {EDGE_STATE_KEY: edge}  # lifespan state: how EdgeProtocol finds its limits
        finally:
            worker.stop()
            reconciler.stop()
            deliverer.stop()
            await sending  # in-flight sends finish (or are handed back) before the store closes
            await reconciling
            await delivering
            for task in (pruning, retaining):
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            await store.close()  # the writer drains every queued report first

    routes = [
        Route("/webhooks/{provider}", webhooks.receive_webhook, methods=["GET", "POST"]),
        Route("/v1/messages", messages, methods=["GET", "POST"]),
        Route("/v1/messages.csv", health.messages_csv, methods=["GET"]),
        Route("/v1/stats/delivery", health.delivery_stats, methods=["GET"]),
        Route("/v1/messages/{message_id}", staff.get_message, methods=["GET"]),
        Route("/v1/messages/{message_id}/events", staff.list_events, methods=["GET"]),
        Route(
            "/v1/events/{provider}/{event_id}/reprocess", admin.reprocess_event, methods=["POST"]
        ),
        Route("/v1/changes", changes.list_changes, methods=["GET"]),
        Route("/v1/changes/stream", changes.stream_changes, methods=["GET"]),
        Route("/healthz", ops.healthz, methods=["GET"]),
        Route("/readyz", ops.readyz, methods=["GET"]),
        Route("/metrics", ops.metrics, methods=["GET"]),
        Route("/openapi.json", ops.openapi, methods=["GET"]),
        console.mount(config),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(ForwardedHeaders, trusted=config.settings.trusted_proxies),
            Middleware(RequestContext),
        ],
        exception_handlers={ReceiverError: receiver_error, HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.receiver = state
    return app
