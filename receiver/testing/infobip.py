"""Build Infobip delivery-report requests (HTTP Basic), for integration tests and tooling.

request = infobip_request(
    "infobip:s3cret", [infobip_result(message_id="MESSAGE-ID-123-xyz", to="41793026727")]
)
httpx.post(base_url + request.path, content=request.body, headers=request.headers)
"""

from __future__ import annotations

import functools
import json
import random
from datetime import UTC, datetime
from typing import Any

from receiver.core.signatures import basic_auth
from receiver.providers.infobip import GROUP_IDS, KNOWN_STATUSES
from receiver.testing.base import (
    Build,
    Context,
    Journey,
    SignedRequest,
    Simulation,
    journey,
    random_hex,
    random_phone,
    random_uuid,
)


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
    mcc_mnc: str | None = None,
) -> dict[str, Any]:
    """One report of the ``results`` array, shaped like Infobip's documented example.

    ``status`` is the status name; its id and group come from the documented table, or
    from ``status_id``/``group_name`` for other names. ``error_id`` 0 (``NO_ERROR``,
    group 0 ``OK``) means no error; give the group of a real error if it matters.
    ``mcc_mnc`` is the recipient's network, as Infobip writes it (``"22801"``).
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
    if mcc_mnc is not None:
        result["mccMnc"] = mcc_mnc
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


class InfobipSimulation(Simulation):
    """``receiver simulate``'s Infobip messages: one result per request, failures in the
    handset error group."""

    kind = "infobip"
    journeys = (
        journey(70, "PENDING_ACCEPTED PENDING_ENROUTE DELIVERED_TO_HANDSET"),
        journey(5, "PENDING_ENROUTE DELIVERED_TO_OPERATOR DELIVERED_TO_HANDSET"),
        journey(
            10,
            "PENDING_ACCEPTED PENDING_ENROUTE UNDELIVERABLE_NOT_DELIVERED",
            ("1", "EC_UNKNOWN_SUBSCRIBER"),
            ("5", "EC_UNIDENTIFIED_SUBSCRIBER"),
            ("27", "EC_ABSENT_SUBSCRIBER"),
        ),
        journey(
            5, "PENDING_ACCEPTED PENDING_ENROUTE EXPIRED_EXPIRED", ("27", "EC_ABSENT_SUBSCRIBER")
        ),
        journey(
            5,
            "PENDING_ACCEPTED UNDELIVERABLE_REJECTED_OPERATOR",
            ("11", "EC_TELESERVICE_NOT_PROVISIONED"),
        ),
        journey(5, "PENDING_ACCEPTED PENDING_ENROUTE"),
    )
    slow = frozenset({"DELIVERED_TO_HANDSET", "UNDELIVERABLE_NOT_DELIVERED"})
    expiring = frozenset({"EXPIRED_EXPIRED"})

    def message(
        self, rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
    ) -> list[Build]:
        message_id = random_uuid(rng)
        bulk_id = f"BULK-{index // 50:05d}-{random_hex(rng, 8)}"
        to = random_phone(rng, "41")
        builds: list[Build] = []
        for step in self.steps(rng, journey, sent_at):
            error: dict[str, Any] = {}
            if step.error:
                error = {
                    "error_id": int(step.error),
                    "error_name": step.detail or "EC_UNKNOWN",
                    "error_group_id": 1,
                    "error_group_name": "HANDSET_ERRORS",
                    "permanent": step.word != "EXPIRED_EXPIRED",
                }
            result = infobip_result(
                message_id=message_id,
                status=step.word,
                to=to,
                bulk_id=bulk_id,
                sent_at=sent_at,
                done_at=step.at,
                callback_data=f"order-{index}",
                **error,
            )
            builds.append(
                functools.partial(infobip_request, ctx.secret, [result], provider=ctx.name)
            )
        return builds


__all__ = ["InfobipSimulation", "infobip_request", "infobip_result", "infobip_time"]
