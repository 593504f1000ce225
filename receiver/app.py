"""The application factory: the JSON API (``receiver.http``) and the support console
(``receiver.console``) side by side on one ``AppState`` (``receiver.services``), with the
background work (outbox, reconcile, change feed, pruning) tied to the app's lifespan."""

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

from receiver import console, retention
from receiver.config import Config
from receiver.errors import ReceiverError
from receiver.feed.metrics import FeedMetrics
from receiver.feed.worker import DeliveryWorker
from receiver.http import sends
from receiver.http.edge import EDGE_STATE_KEY, Edge
from receiver.http.middleware import ForwardedHeaders, RequestContext
from receiver.http.problems import http_error, receiver_error
from receiver.http.routes import api_routes
from receiver.http.webhooks import WebhookShortcut
from receiver.outbound.reconcile import Reconciler
from receiver.outbound.worker import OutboxWorker
from receiver.services.admission import Admission
from receiver.services.metrics import Metrics
from receiver.services.state import AppState
from receiver.store import open_store
from receiver.store.sqlite import SqliteStore


def create_app(config: Config) -> Starlette:
    """The app for one configuration; the store opens and drains with its lifespan."""
    metrics = Metrics()
    store = open_store(config.store_url, on_commit=metrics.observe_commit)
    state = AppState(
        config=config,
        store=store,
        metrics=metrics,
        cursors=URLSafeSerializer(config.settings.session_secret, salt="receiver.cursor"),
        admission=Admission(store, config.settings.send_rate_limits),
    )

    if isinstance(store, SqliteStore):
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
        deliver = config.settings.feed.deliver_in_serve
        deliverer = DeliveryWorker(store, config, feed_metrics, deliver=deliver)
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

    # The JSON API and the console side by side: neither imports the other; what both
    # use lives in receiver.services.
    routes = [*api_routes(), console.mount(config)]
    trusted = config.settings.trusted_proxies
    # No proxy trusted: ForwardedHeaders would pass every request on untouched, one
    # coroutine frame on each (docs/performance.md).
    forwarded = [Middleware(ForwardedHeaders, trusted=trusted)] if trusted else []
    app = Starlette(
        routes=routes,
        middleware=[*forwarded, Middleware(RequestContext), Middleware(WebhookShortcut)],
        exception_handlers={ReceiverError: receiver_error, HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.receiver = state
    return app
