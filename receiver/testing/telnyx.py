"""Build Telnyx delivery-update webhooks, signed with Ed25519 as Telnyx signs them.

Telnyx signs with its private key and you configure its public key, so a test makes
its own key pair::

    private_key = Ed25519PrivateKey.generate()
    config = {"type": "telnyx", "public_key": telnyx_public_key(private_key)}
    request = telnyx_request(private_key, telnyx_event("40385f64-...", "delivered"))
    httpx.post(base_url + request.path, content=request.body, headers=request.headers)
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from receiver.core.signatures import telnyx_ed25519
from receiver.testing.base import SignedRequest

# Where each recipient status is reported: the final words come with message.finalized.
_FINAL_WORDS = frozenset(
    {"delivered", "read", "delivery_failed", "sending_failed", "expired", "delivery_unconfirmed"}
)


def telnyx_public_key(private_key: Ed25519PrivateKey) -> str:
    """The base64 public key for ``public_key`` in config, as the Telnyx portal shows it."""
    return telnyx_ed25519.public_key_text(private_key)


def telnyx_event(
    message_id: str,
    status: str,
    *,
    to: str = "+18665550001",
    recipients: Sequence[tuple[str, str]] | None = None,
    event_type: str | None = None,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    errors: Sequence[dict[str, Any]] = (),
    sender: str = "+18445550001",
    attempt: int = 1,
) -> dict[str, Any]:
    """A delivery-update event body for message ``message_id``.

    ``recipients`` (pairs of phone number and status) replaces ``to``/``status`` for a
    message with several recipients. ``event_type`` defaults to ``message.finalized``
    for a final status and ``message.sent`` otherwise; ``errors`` are
    ``{"code", "title", "detail"}`` objects.
    """
    pairs = list(recipients) if recipients is not None else [(to, status)]
    if event_type is None:
        final = all(word in _FINAL_WORDS for _, word in pairs)
        event_type = "message.finalized" if final else "message.sent"
    stamp = (occurred_at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")
    final_event = event_type == "message.finalized"
    return {
        "data": {
            "record_type": "event",
            "id": event_id or str(uuid.uuid4()),
            "event_type": event_type,
            "occurred_at": stamp,
            "payload": {
                "record_type": "message",
                "direction": "outbound",
                "id": message_id,
                "type": "SMS",
                "from": {"phone_number": sender, "carrier": "TELNYX LLC", "line_type": "VoIP"},
                "to": [
                    {
                        "phone_number": number,
                        "status": word,
                        "carrier": "T-MOBILE USA, INC.",
                        "line_type": "Wireless",
                    }
                    for number, word in pairs
                ],
                "cc": [],
                "text": "Hello, World!",
                "encoding": "GSM-7",
                "parts": 1,
                "tags": [],
                "sent_at": stamp,
                "completed_at": stamp if final_event else None,
                "valid_until": None,
                "errors": list(errors),
            },
        },
        "meta": {"attempt": attempt, "delivered_to": "https://dlr.example.com/webhooks/telnyx"},
    }


def telnyx_request(
    private_key: Ed25519PrivateKey,
    event: dict[str, Any] | bytes,
    *,
    provider: str = "telnyx",
    timestamp: int | None = None,
) -> SignedRequest:
    """A POST to ``/webhooks/{provider}`` carrying ``event`` (a dict, or raw JSON bytes),
    signed with ``private_key`` at ``timestamp`` (default: now)."""
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    sent_at = int(time.time()) if timestamp is None else timestamp
    return SignedRequest(
        path=f"/webhooks/{provider}",
        body=body,
        headers={
            "content-type": "application/json",
            telnyx_ed25519.TIMESTAMP_HEADER: str(sent_at),
            telnyx_ed25519.SIGNATURE_HEADER: telnyx_ed25519.sign(private_key, sent_at, body),
        },
    )


__all__ = ["telnyx_event", "telnyx_public_key", "telnyx_request"]
