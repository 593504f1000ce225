"""Build correctly signed webhook requests, for integration tests and tooling.

request = standard_request(secret, standard_report("prov-1", "delivered"))
httpx.post(base_url + request.path, content=request.body, headers=request.headers)
"""

from __future__ import annotations

import base64
import functools
import json
import random
import time
import uuid
from datetime import datetime
from typing import Any

from receiver.core.signatures import standard_webhooks
from receiver.testing.base import (
    Build,
    Context,
    Journey,
    SignedRequest,
    Simulation,
    journey,
    random_hex,
    random_phone,
)


def standard_report(
    message_id: str,
    status: str,
    *,
    occurred_at: datetime | None = None,
    to: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    client_reference: str | None = None,
    network: str | None = None,
) -> dict[str, Any]:
    """One report of a ``standard`` payload's ``data``."""
    report: dict[str, Any] = {"message_id": message_id, "status": status}
    if occurred_at is not None:
        report["occurred_at"] = occurred_at.isoformat()
    optional = {
        "to": to,
        "error_code": error_code,
        "error_message": error_message,
        "client_reference": client_reference,
        "network": network,
    }
    report.update({key: value for key, value in optional.items() if value is not None})
    return report


def standard_request(
    secret: str,
    data: dict[str, Any] | list[dict[str, Any]],
    *,
    provider: str = "default",
    event_id: str | None = None,
    timestamp: int | None = None,
) -> SignedRequest:
    """A Standard Webhooks v1 request to ``/webhooks/{provider}`` signed with ``secret``."""
    body = json.dumps({"type": "message.status", "data": data}).encode()
    msg_id = event_id or f"msg_{uuid.uuid4().hex}"
    sent_at = int(time.time()) if timestamp is None else timestamp
    key = standard_webhooks.decode_secret(secret)
    return SignedRequest(
        path=f"/webhooks/{provider}",
        body=body,
        headers={
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(sent_at),
            "webhook-signature": standard_webhooks.signature(key, msg_id, sent_at, body),
        },
    )


class StandardSimulation(Simulation):
    """``receiver simulate``'s Standard Webhooks messages: one report per request."""

    kind = "standard"
    journeys = (
        journey(70, "queued sent delivered"),
        journey(10, "queued sent undelivered", ("absent_subscriber", "Absent subscriber")),
        journey(5, "queued sent expired", ("validity_expired", "Validity period expired")),
        journey(5, "queued rejected", ("blocked", "Blocked by the destination network")),
        journey(5, "queued failed", ("invalid_destination", "Invalid destination number")),
        journey(5, "queued sent"),
    )
    slow = frozenset({"delivered", "undelivered", "failed"})
    expiring = frozenset({"expired"})
    placeholder_secret = "whsec_" + base64.b64encode(b"simulate-placeholder-key").decode()

    def message(
        self, rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
    ) -> list[Build]:
        message_id = f"sim-{random_hex(rng, 12)}"
        to = "+" + random_phone(rng)
        builds: list[Build] = []
        secret = ctx.secret or ""
        for step in self.steps(rng, journey, sent_at):
            report = standard_report(
                message_id,
                step.word,
                occurred_at=step.at,
                to=to,
                error_code=step.error,
                error_message=step.detail,
                client_reference=f"order-{index}",
            )
            event_id = f"msg_{random_hex(rng, 24)}"
            builds.append(
                functools.partial(
                    standard_request, secret, report, provider=ctx.name, event_id=event_id
                )
            )
        return builds
