"""The JSON API's routes (README "HTTP API"), mounted by ``receiver.app``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from receiver.http import admin, changes, health, ops, sends, staff, webhooks


async def messages(request: Request) -> Response:
    """``/v1/messages``: one route for both methods, so that a 405 (``OPTIONS``, say)
    names both in ``Allow``; Starlette would answer from the first route alone."""
    if request.method == "POST":
        return await sends.send_message(request)
    return await staff.list_messages(request)


def api_routes() -> list[BaseRoute]:
    """Webhooks, the ``/v1`` API and the operations routes."""
    return [
        Route("/webhooks/{provider}", webhooks.WebhookEndpoint(), methods=["GET", "POST"]),
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
    ]
