"""Build FutureSMS DLR callbacks, for integration tests and tooling.

FutureSMS signs nothing; the URL we give it as ``dlr_address`` carries the provider's
``url_token``, so pass the same ``token``::

    request = futuresms_request(
        futuresms_report("SDPS260325103012A1B2C3D", "DELIVRD", client_order_id=message_id),
        provider="futuresms",
        token=url_token,
    )
    httpx.post(base_url + request.path, content=request.body, headers=request.headers)
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from receiver.core.signatures import url_token
from receiver.testing.base import (
    Build,
    Context,
    Journey,
    SignedRequest,
    Simulation,
    journey,
    random_phone,
)


def futuresms_time(moment: datetime) -> str:
    """A FutureSMS date-time: UTC, ISO 8601, whole seconds, ``Z`` ("Date and Time")."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def futuresms_report(
    order_id: str,
    message_status: str,
    *,
    client_order_id: str | None = None,
    phone_number: str = "+639171234567",
    sender_value: str = "testsms",
    reported_at: datetime | str | None = None,
) -> dict[str, Any]:
    """The fields of one DLR callback, in the order of FutureSMS's Delivery Reports page;
    ``reported_at`` defaults to now."""
    if not isinstance(reported_at, str):
        reported_at = futuresms_time(reported_at or datetime.now(UTC))
    return {
        "order_id": order_id,
        "client_order_id": client_order_id,
        "message_status": message_status,
        "phone_number": phone_number,
        "sender_value": sender_value,
        "reported_at": reported_at,
    }


def futuresms_request(
    report: Mapping[str, Any], *, provider: str = "default", token: str | None = None
) -> SignedRequest:
    """A DLR callback to ``/webhooks/{provider}`` (``?token=`` when ``token`` is given),
    posted as JSON."""
    path = url_token.with_token(f"/webhooks/{provider}", token)
    body = json.dumps(dict(report)).encode()
    return SignedRequest(path=path, body=body, headers={"content-type": "application/json"})


class FutureSmsSimulation(Simulation):
    """``receiver simulate``'s FutureSMS messages: a DLR once a delivery report is
    matched to the order, in SMPP receipt states (docs/providers/futuresms.md), no error
    codes. Signs nothing: the ``url_token``, if set, is the configured one."""

    kind = "futuresms"
    journeys = (
        journey(72, "DELIVRD"),
        journey(8, "ENROUTE DELIVRD"),
        journey(8, "UNDELIV"),
        journey(5, "EXPIRED"),
        journey(4, "REJECTD"),
        journey(3, "UNKNOWN"),
    )
    slow = frozenset({"DELIVRD", "UNDELIV"})
    expiring = frozenset({"EXPIRED"})

    def message(
        self, rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
    ) -> list[Build]:
        order_id = f"SDPS{sent_at:%y%m%d%H%M%S}{rng.randint(0, 9_999_999):07d}"
        reference = f"sim-order-{index:06d}"  # a client_order_id, 12-128 characters
        to = "+" + random_phone(rng, "63")
        token = ctx.provider.config.url_token  # carried in the dlr_address FutureSMS calls
        builds: list[Build] = []
        for step in self.steps(rng, journey, sent_at):
            report = futuresms_report(
                order_id, step.word, client_order_id=reference, phone_number=to, reported_at=step.at
            )
            builds.append(
                functools.partial(futuresms_request, report, provider=ctx.name, token=token)
            )
        return builds


__all__ = ["FutureSmsSimulation", "futuresms_report", "futuresms_request", "futuresms_time"]
