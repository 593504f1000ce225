"""Build MessageBird status reports signed with ``MessageBird-Signature-JWT``.

    report = bird_report(message_id="e8077d803532c0b5937c639b60216938", status="delivered")
    request = bird_request(signing_key=KEY, report=report,
                           public_base_url="https://dlr.example.com", provider="bird")
    httpx.request(request.method, base_url + request.path, headers=request.headers)

The token signs the *public* URL (``public_base_url`` + path + query), so pass the
``public_base_url`` the receiver is configured with (or the address it serves on).
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import urlencode

from receiver.core.signatures import messagebird_jwt
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


def bird_report(
    *,
    message_id: str,
    status: str,
    recipient: str = "31612345678",
    reference: str | None = "order-8821",
    status_datetime: datetime | None = None,
    status_reason: str | None = None,
    status_error_code: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The parameters of one status report, in the order MessageBird sends them.

    ``status_datetime`` defaults to now (UTC, whole seconds); ``extra`` adds parameters
    such as ``mccmnc`` or ``price[amount]``.
    """
    stamp = status_datetime or datetime.now(UTC).replace(microsecond=0)
    report = {"id": message_id}
    if reference is not None:
        report["reference"] = reference
    report |= {"recipient": recipient, "status": status, "statusDatetime": stamp.isoformat()}
    if status_reason is not None:
        report["statusReason"] = status_reason
    if status_error_code is not None:
        report["statusErrorCode"] = status_error_code
    report |= dict(extra or {})
    return report


def bird_request(
    *,
    signing_key: str,
    report: Mapping[str, str],
    public_base_url: str = "http://127.0.0.1:8000",
    provider: str = "default",
    method: str = "GET",
    now: float | None = None,
    algorithm: str = "HS256",
    token_id: str | None = None,
) -> SignedRequest:
    """A status report to ``/webhooks/{provider}`` signed with ``signing_key``.

    ``method="GET"`` puts the report in the query string (what MessageBird does);
    ``"POST"`` sends it as a form body. ``now`` (Unix seconds) sets the token's ``nbf``;
    it expires 60 s later, as MessageBird's do.
    """
    method = method.upper()
    if method not in ("GET", "POST"):
        raise ValueError("method must be GET or POST")
    encoded = urlencode(list(report.items()))
    path = f"/webhooks/{provider}"
    headers: dict[str, str] = {}
    body = b""
    if method == "GET":
        path += "?" + encoded
    else:
        body = encoded.encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    headers["MessageBird-Signature-JWT"] = messagebird_jwt.sign(
        signing_key,
        url=public_base_url.rstrip("/") + path,
        body=body,
        now=time.time() if now is None else now,
        algorithm=algorithm,
        token_id=token_id,
    )
    return SignedRequest(path=path, body=body, headers=headers, method=method)


class BirdSimulation(Simulation):
    """``receiver simulate``'s MessageBird messages: status reports with a reason, a
    network and a price, signed with a JWT over the public URL."""

    kind = "bird"
    journeys = (
        journey(65, "sent delivered"),
        journey(10, "scheduled sent buffered delivered"),
        journey(
            12,
            "sent delivery_failed",
            ("1", "unknown subscriber"),
            ("27", "absent subscriber"),
            ("104", "carrier rejected"),
        ),
        journey(5, "sent buffered expired", ("27", "absent subscriber")),
        journey(8, "sent buffered"),
    )
    slow = frozenset({"delivered", "buffered", "delivery_failed"})
    expiring = frozenset({"expired"})
    placeholder_secret = "placeholder"  # noqa: S105 - a stand-in, never a real secret
    reasons: ClassVar[dict[str, str]] = {
        "delivered": "successfully delivered",
        "sent": "pending",
        "scheduled": "pending",
        "buffered": "pending",
    }
    """The ``statusReason`` of each word that carries no error."""

    def message(
        self, rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
    ) -> list[Build]:
        message_id = random_hex(rng, 32)
        recipient = random_phone(rng, "31")
        builds: list[Build] = []
        for step in self.steps(rng, journey, sent_at):
            report = bird_report(
                message_id=message_id,
                status=step.word,
                recipient=recipient,
                reference=f"order-{index}",
                status_datetime=step.at.replace(microsecond=0),
                status_reason=step.detail or self.reasons.get(step.word),
                status_error_code=step.error,
                extra={
                    "mccmnc": "20408",
                    "ported": "0",
                    "price[amount]": "0.070",
                    "price[currency]": "EUR",
                },
            )
            builds.append(
                functools.partial(
                    bird_request,
                    signing_key=ctx.secret or "",
                    report=report,
                    public_base_url=ctx.public_base_url,
                    provider=ctx.name,
                )
            )
        return builds


__all__ = ["BirdSimulation", "bird_report", "bird_request"]
