"""Build Smstools ``delivery_report`` webhooks, for integration tests and tooling.

Smstools signs nothing: the URL you give it for webhooks carries the provider's
``url_token`` (README "Beyond the contract"), so pass the same token to the builder::

    event = smstools_report("e1qk89exbzgf6fzfunceym2sd67h88", "1", reference=message_id)
    request = smstools_request([event], token=url_token, provider="smstools")
    httpx.post(base_url + request.path, content=request.body, headers=request.headers)
"""

from __future__ import annotations

import functools
import json
import random
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from receiver.core.signatures import url_token
from receiver.testing.base import (
    Build,
    Context,
    Journey,
    SignedRequest,
    Simulation,
    journey,
    random_phone,
    random_uuid,
)

DELIVERY_STATUS: dict[str, str] = {
    "0": "submitted",
    "1": "delivered",
    "2": "not delivered",
    "3": "buffered",
    "4": "rejected",
    "5": "rejected",
    "9": "unknown",
}
"""The words Smstools puts next to each delivery code (its page's status column)."""

EXAMPLE_TIMEZONE = "Europe/Brussels"


def smstools_time(moment: datetime, timezone: str = "UTC") -> str:
    """``moment`` as Smstools writes it in ``timezone``: ``2026-01-01 00:00:00``."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S")


def smstools_report(
    messageid: str,
    delivery_code: str,
    *,
    reference: str | None = None,
    receiver: str = "32470123456",
    sender: str = "yoursender",
    content: str = "here comes your message body",
    sent_at: datetime | None = None,
    status_at: datetime | None = None,
    timezone: str = EXAMPLE_TIMEZONE,
    detail: str | None = None,
    detail_description: str | None = None,
    delivery_status: str | None = None,
    webhook_id: str | None = None,
    username: str = "myusername",
) -> dict[str, Any]:
    """One ``delivery_report`` event, shaped like the example on Smstools' page:
    ``datetime`` and ``delivery_status_datetime`` in ``timezone``, ``datetime_utc`` in
    UTC, absent values as ``""``. ``sent_at`` and ``status_at`` default to now."""
    now = datetime.now(UTC)
    sent = sent_at or now
    return {
        "webhook_id": webhook_id or f"wh_{uuid.uuid4()}",
        "webhook_type": "delivery_report",
        "username": username,
        "timezone": timezone,
        "message": {
            "messageid": messageid,
            "datetime": smstools_time(sent, timezone),
            "datetime_utc": smstools_time(sent),
            "content": content,
            "sender": sender,
            "receiver": receiver,
            "reference": reference or "",
            "delivery_code": delivery_code,
            "delivery_status": delivery_status or DELIVERY_STATUS.get(delivery_code, "unknown"),
            "delivery_status_datetime": smstools_time(status_at or now, timezone),
            "delivery_code_detail": detail or "",
            "delivery_code_detail_description": detail_description or "",
        },
    }


def smstools_request(
    events: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    token: str | None,
    provider: str = "default",
) -> SignedRequest:
    """A webhook request to ``/webhooks/{provider}?token=...``: a JSON array of
    ``events`` (one event is sent as an array of one), as Smstools posts it."""
    batch = [events] if isinstance(events, Mapping) else list(events)
    path = url_token.with_token(f"/webhooks/{provider}", token)
    body = json.dumps(batch).encode()
    return SignedRequest(path=path, body=body, headers={"content-type": "application/json"})


class SmstoolsSimulation(Simulation):
    """``receiver simulate``'s Smstools messages, in its delivery codes: 0 submitted,
    1 delivered, 2 not delivered, 3 buffered, 4/5 rejected (5 with a detail code),
    9 unknown. Signs nothing: the ``url_token`` goes in the path."""

    kind = "smstools"
    journeys = (
        journey(65, "0 1"),
        journey(10, "0 3 1"),
        journey(
            10,
            "0 2",
            ("11", "Receiver is temporarily outside the range of the network"),
            ("10", "Receiver number is invalid or unknown"),
        ),
        journey(3, "0 4"),
        journey(4, "0 5", ("10", "Receiver number is invalid or unknown")),
        journey(3, "0 9"),
        journey(5, "0"),
    )

    def message(
        self, rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
    ) -> list[Build]:
        messageid = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(30))
        receiver = random_phone(rng, "32")
        token = ctx.provider.config.url_token
        builds: list[Build] = []
        for step in self.steps(rng, journey, sent_at):
            event = smstools_report(
                messageid,
                step.word,
                reference=f"order-{index}",
                receiver=receiver,
                content=f"Your code is {rng.randint(0, 999999):06d}",
                sent_at=sent_at,
                status_at=step.at,
                detail=step.error,
                detail_description=step.detail,
                webhook_id=f"wh_{random_uuid(rng)}",
            )
            builds.append(
                functools.partial(smstools_request, [event], token=token, provider=ctx.name)
            )
        return builds


__all__ = [
    "DELIVERY_STATUS",
    "EXAMPLE_TIMEZONE",
    "SmstoolsSimulation",
    "smstools_report",
    "smstools_request",
    "smstools_time",
]
