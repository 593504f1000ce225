"""A change as JSON (pull API, SSE, webhook body) and the Standard Webhooks headers of a
delivery. Sans-IO."""

from __future__ import annotations

from receiver import __version__
from receiver.core.signatures import standard_webhooks
from receiver.records import ChangeRecord
from receiver.services.messages import message_json
from receiver.services.schemas import ChangeCause, ChangeNotification, ChangeOut

SUBSCRIBER_ROLE = "admin"
"""A subscriber sees a message as a sender or admin does (numbers whole): it is the
application that sent it, configured by an admin."""


def change_json(change: ChangeRecord, role: str) -> ChangeOut:
    """``change`` as ``role`` may see it (a viewer gets the number masked)."""
    return ChangeOut(
        change_id=change.change_id,
        seq=change.seq,
        previous_status=change.previous_status,
        status=change.status,
        changed_at=change.changed_at,
        cause=ChangeCause.model_validate(
            {"source": change.cause_source, "event_id": change.cause_event_id}
        ),
        message=message_json(change.message, role),
    )


def webhook_body(change: ChangeRecord) -> bytes:
    """The JSON body POSTed to a subscriber."""
    notification = ChangeNotification(
        type="message.status_changed", data=change_json(change, SUBSCRIBER_ROLE)
    )
    return notification.model_dump_json().encode()


def signed_headers(key: bytes, change_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Standard Webhooks v1 headers: ``webhook-id`` is the change id (the same on every
    attempt, so the subscriber can drop a repeat), signed with ``key``."""
    return {
        "content-type": "application/json",
        "user-agent": f"receiver/{__version__}",
        "webhook-id": change_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_webhooks.signature(key, change_id, timestamp, body),
    }
