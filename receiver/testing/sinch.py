"""Build Sinch SMS delivery-report callbacks, signed the way Sinch signs them.

payload = sinch_recipient_report(batch_id="01W4FFL35P4NC4K35SMSBATCH9",
                                 recipient="12017777777", status="Delivered", code=0)
request = sinch_request(payload, secret="KayakingTheSwell")       # auth = "hmac"
request = sinch_request(payload, credentials="sinch:s3cret")      # auth = "basic"
httpx.post(base_url + request.path, content=request.body, headers=request.headers)
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from receiver.core.signatures import basic_auth
from receiver.core.signatures import sinch as sinch_signature
from receiver.testing.base import SignedRequest


def _iso(value: datetime) -> str:
    """Sinch's format: ``YYYY-MM-DDThh:mm:ss.SSSZ`` in UTC."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def sinch_recipient_report(
    *,
    batch_id: str,
    recipient: str,
    status: str,
    code: int,
    at: datetime | None = None,
    operator_status_at: datetime | None = None,
    client_reference: str | None = None,
    type: str = "recipient_delivery_report_sms",
) -> dict[str, Any]:
    """A per-recipient delivery report; ``at`` defaults to now."""
    report: dict[str, Any] = {
        "type": type,
        "batch_id": batch_id,
        "recipient": recipient,
        "code": code,
        "status": status,
        "at": _iso(at or datetime.now(UTC)),
    }
    if operator_status_at is not None:
        report["operator_status_at"] = _iso(operator_status_at)
    if client_reference is not None:
        report["client_reference"] = client_reference
    return report


def sinch_status(
    *, status: str, code: int, recipients: list[str] | None = None, count: int | None = None
) -> dict[str, Any]:
    """One entry of a batch report's ``statuses``; ``count`` defaults to len(recipients)."""
    entry: dict[str, Any] = {"code": code, "status": status}
    entry["count"] = count if count is not None else len(recipients or [])
    if recipients is not None:
        entry["recipients"] = recipients
    return entry


def sinch_batch_report(
    *,
    batch_id: str,
    statuses: list[dict[str, Any]],
    total_message_count: int | None = None,
    client_reference: str | None = None,
    type: str = "delivery_report_sms",
) -> dict[str, Any]:
    """A batch delivery report (``summary``, or ``full`` when statuses list recipients)."""
    total = sum(int(s.get("count", 0)) for s in statuses)
    report: dict[str, Any] = {
        "type": type,
        "batch_id": batch_id,
        "statuses": statuses,
        "total_message_count": total if total_message_count is None else total_message_count,
    }
    if client_reference is not None:
        report["client_reference"] = client_reference
    return report


def sinch_request(
    payload: dict[str, Any] | bytes,
    *,
    secret: str | None = None,
    credentials: str | None = None,
    provider: str = "sinch",
    nonce: str | None = None,
    timestamp: int | None = None,
) -> SignedRequest:
    """A callback to ``/webhooks/{provider}``: HMAC-signed with ``secret`` (``auth =
    "hmac"``) or carrying Basic ``credentials`` ``"user:password"`` (``auth = "basic"``).
    """
    if (secret is None) == (credentials is None):
        raise ValueError("give exactly one of secret (hmac) or credentials (basic)")
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"content-type": "application/json"}
    if credentials is not None:
        headers["authorization"] = basic_auth.header(credentials)
    elif secret is not None:
        headers |= sinch_signature.sign(
            secret,
            body,
            nonce or secrets.token_hex(13),
            int(time.time()) if timestamp is None else timestamp,
        )
    return SignedRequest(path=f"/webhooks/{provider}", body=body, headers=headers)
