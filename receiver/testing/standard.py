"""Build correctly signed webhook requests, for integration tests and tooling.

request = standard_request(secret, standard_report("prov-1", "delivered"))
httpx.post(base_url + request.path, content=request.body, headers=request.headers)
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

from receiver.core.signatures import standard_webhooks
from receiver.testing.base import SignedRequest


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
