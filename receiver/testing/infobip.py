"""Build Infobip delivery-report requests (HTTP Basic), for integration tests and tooling.

request = infobip_request(
    "infobip:s3cret", [infobip_result(message_id="MESSAGE-ID-123-xyz", to="41793026727")]
)
httpx.post(base_url + request.path, content=request.body, headers=request.headers)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from receiver.core.signatures import basic_auth
from receiver.providers.infobip import GROUP_IDS, KNOWN_STATUSES
from receiver.testing.base import SignedRequest


def infobip_time(moment: datetime) -> str:
    """Infobip's timestamp format: ``2019-11-09T16:00:00.000+0000`` (sent in UTC here)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _error_object(
    error_id: int,
    name: str,
    description: str | None,
    group_id: int | None,
    group_name: str | None,
    permanent: bool,
) -> dict[str, Any]:
    if error_id == 0:
        group_id, group_name = 0, "OK"
        description = description or "No Error"
    error = {
        "groupId": group_id,
        "groupName": group_name,
        "id": error_id,
        "name": name,
        "description": description or name.replace("_", " ").capitalize(),
        "permanent": permanent,
    }
    return {key: value for key, value in error.items() if value is not None}


def infobip_result(
    *,
    message_id: str,
    status: str = "DELIVERED_TO_HANDSET",
    status_id: int | None = None,
    group_name: str | None = None,
    to: str | None = "41793026727",
    bulk_id: str | None = None,
    sent_at: datetime | None = None,
    done_at: datetime | None = None,
    error_id: int = 0,
    error_name: str = "NO_ERROR",
    error_description: str | None = None,
    error_group_id: int | None = None,
    error_group_name: str | None = None,
    permanent: bool = False,
    callback_data: str | None = None,
) -> dict[str, Any]:
    """One report of the ``results`` array, shaped like Infobip's documented example.

    ``status`` is the status name; its id and group come from the documented table, or
    from ``status_id``/``group_name`` for other names. ``error_id`` 0 (``NO_ERROR``,
    group 0 ``OK``) means no error; give the group of a real error if it matters.
    """
    known_id, known_group = KNOWN_STATUSES.get(status, (None, None))
    group = group_name or known_group
    status_object: dict[str, Any] = {
        "groupId": GROUP_IDS.get(group) if group else None,
        "groupName": group,
        "id": status_id if status_id is not None else known_id,
        "name": status,
        "description": status.replace("_", " ").capitalize(),
    }
    done = done_at or datetime.now(UTC)
    result: dict[str, Any] = {
        "bulkId": bulk_id,
        "messageId": message_id,
        "to": to,
        "sentAt": infobip_time(sent_at or done),
        "doneAt": infobip_time(done),
        "smsCount": 1,
        "price": {"pricePerMessage": 0.01, "currency": "EUR"},
        "status": status_object,
        "error": _error_object(
            error_id, error_name, error_description, error_group_id, error_group_name, permanent
        ),
    }
    if callback_data is not None:
        result["callbackData"] = callback_data
    return {key: value for key, value in result.items() if value is not None}


def infobip_request(
    credentials: str | None,
    results: list[dict[str, Any]] | dict[str, Any],
    *,
    provider: str = "infobip",
) -> SignedRequest:
    """A ``POST /webhooks/{provider}`` of ``{"results": [...]}`` with Basic credentials
    (``"user:password"``; None sends none, for a provider that trusts ``allowed_ips``)."""
    items = [results] if isinstance(results, dict) else results
    headers = {"content-type": "application/json"}
    if credentials is not None:
        headers["authorization"] = basic_auth.header(credentials)
    return SignedRequest(
        path=f"/webhooks/{provider}",
        body=json.dumps({"results": items}).encode(),
        headers=headers,
    )


__all__ = ["infobip_request", "infobip_result", "infobip_time"]
