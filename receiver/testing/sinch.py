"""Build Sinch SMS delivery-report callbacks, signed the way Sinch signs them.

payload = sinch_recipient_report(batch_id="01W4FFL35P4NC4K35SMSBATCH9",
                                 recipient="12017777777", status="Delivered", code=0)
request = sinch_request(payload, secret="KayakingTheSwell")       # auth = "hmac"
request = sinch_request(payload, credentials="sinch:s3cret")      # auth = "basic"
httpx.post(base_url + request.path, content=request.body, headers=request.headers)
"""

from __future__ import annotations

import functools
import json
import random
import secrets
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

from receiver.core.signatures import basic_auth
from receiver.core.signatures import sinch as sinch_signature
from receiver.testing.base import (
    ULID_ALPHABET,
    Build,
    Context,
    Journey,
    SignedRequest,
    Simulation,
    journey,
    random_phone,
)


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


class SinchSimulation(Simulation):
    """``receiver simulate``'s Sinch messages: recipient delivery reports, HMAC-signed or
    with Basic credentials as the provider's ``auth`` says."""

    kind = "sinch"
    journeys = (
        journey(70, "Queued Dispatched Delivered"),
        journey(10, "Queued Dispatched Failed", ("402", "Message unroutable"), ("404", "x")),
        journey(5, "Queued Dispatched Expired", ("406", "Internal expiry")),
        journey(5, "Queued Rejected", ("408", "Internal reject"), ("413", "Blocked")),
        journey(2, "Queued Cancelled", ("407", "Cancelled")),
        journey(8, "Queued Dispatched"),
    )
    slow = frozenset({"Delivered", "Failed"})
    expiring = frozenset({"Expired"})
    placeholder_secret = "simulate:placeholder"  # noqa: S105 - a stand-in, never a real secret
    codes: ClassVar[dict[str, int]] = {"Queued": 400, "Dispatched": 401, "Delivered": 0}
    """The status code of each word that carries no error."""

    def message(
        self, rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
    ) -> list[Build]:
        batch_id = "01" + "".join(rng.choice(ULID_ALPHABET) for _ in range(24))
        recipient = random_phone(rng)
        basic = getattr(ctx.provider.config, "auth", "hmac") == "basic"
        secret = ctx.secret or ""
        builds: list[Build] = []
        for step in self.steps(rng, journey, sent_at):
            report = sinch_recipient_report(
                batch_id=batch_id,
                recipient=recipient,
                status=step.word,
                code=int(step.error) if step.error else self.codes.get(step.word, 0),
                at=step.at,
                client_reference=f"order-{index}",
            )
            if basic:
                build = functools.partial(sinch_request, report, credentials=secret)
            else:
                build = functools.partial(sinch_request, report, secret=secret)
            builds.append(functools.partial(build, provider=ctx.name))
        return builds
