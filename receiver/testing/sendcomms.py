"""Build SendComms webhooks, signed the way SendComms signs them.

    event = sendcomms_event("sms.delivered", "sms_mjhw8xkw_6f97ab63ff91", to="+233540800994")
    request = sendcomms_request("whsec_21be983f359112f9e07658ed2bddcee3", event)
    httpx.post(base_url + request.path, content=request.body, headers=request.headers)

The body is what the server's ``sendWebhook`` posts: ``{...payload, transaction_id,
timestamp}`` as compact JSON (``JSON.stringify``), so ``event`` and ``data`` come first;
the signature is ``sha256=`` + hex HMAC-SHA256 of those exact bytes.
"""

from __future__ import annotations

import functools
import json
import random
from datetime import UTC, datetime
from typing import Any

from receiver.core.signatures import sendcomms as sendcomms_signature
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

USER_AGENT = "SendComms-Webhook/1.0"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def sendcomms_transaction_id(moment: datetime, suffix: str) -> str:
    """An id shaped like SendComms' (``generateTransactionId("sms")``): ``sms_``, the
    time in milliseconds in base 36, ``_`` and ``suffix`` (12 random hex digits)."""
    number = int(moment.timestamp() * 1000)
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = _BASE36[digit] + digits
        if not number:
            return f"sms_{digits}_{suffix}"


def sendcomms_time(moment: datetime) -> str:
    """JavaScript's ``toISOString()``: ``2026-01-01T10:30:00.123Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def sendcomms_event(
    event: str,
    transaction_id: str,
    *,
    to: str | None = "+233540800994",
    timestamp: datetime | None = None,
    message_id: str | None = None,
    error: str | None = None,
    segments: int = 1,
    country: str = "Ghana",
    region: str = "africa",
    cost: float = 0.035,
    reference: str | None = None,
) -> dict[str, Any]:
    """An SMS webhook body as the send route builds it: ``data.status`` is the event's
    word (``sms.sent`` -> ``sent``); ``timestamp`` defaults to now. Fields left None
    are left out, as ``JSON.stringify`` drops undefined ones. ``reference`` (in
    ``data``) is not sent by the server today; it is there to test an echo of ours."""
    data: dict[str, Any] = {
        "transaction_id": transaction_id,
        "type": "sms",
        "status": event.removeprefix("sms."),
        "to": to,
        "segments": segments,
        "message_id": message_id,
        "country": country,
        "region": region,
        "cost": cost,
        "error": error,
        "reference": reference,
    }
    return {
        "event": event,
        "data": {key: value for key, value in data.items() if value is not None},
        "transaction_id": transaction_id,
        "timestamp": sendcomms_time(timestamp or datetime.now(UTC)),
    }


def sendcomms_body(payload: dict[str, Any]) -> bytes:
    """The bytes SendComms posts for ``payload``: compact JSON, UTF-8."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def sendcomms_request(
    secret: str | None, payload: dict[str, Any] | bytes, *, provider: str = "sendcomms"
) -> SignedRequest:
    """A webhook to ``/webhooks/{provider}`` signed with ``secret`` (None: unsigned, as
    SendComms posts when the account has no webhook secret)."""
    body = payload if isinstance(payload, bytes) else sendcomms_body(payload)
    headers = {"content-type": "application/json", "user-agent": USER_AGENT}
    if secret is not None:
        headers[sendcomms_signature.SIGNATURE_HEADER] = sendcomms_signature.signature(secret, body)
    return SignedRequest(path=f"/webhooks/{provider}", body=body, headers=headers)


class SendCommsSimulation(Simulation):
    """``receiver simulate``'s SendComms messages. The send route posts ``sms.sent`` or
    ``sms.failed`` at submission; ``sms.delivered`` is documented (no producer in
    SendComms' server yet). Failures carry text, no code."""

    kind = "sendcomms"
    journeys = (
        journey(70, "sms.sent sms.delivered"),
        journey(20, "sms.sent"),
        journey(
            10,
            "sms.failed",
            ("", "Africa SMS server unavailable"),
            ("", "This recipient has opted out of receiving messages from this number."),
        ),
    )
    slow = frozenset({"sms.delivered"})
    placeholder_secret = "simulate-placeholder-secret"  # noqa: S105 - a stand-in, never a real secret

    def message(
        self, rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
    ) -> list[Build]:
        transaction_id = sendcomms_transaction_id(sent_at, random_hex(rng, 12))
        to = "+" + random_phone(rng, "233")
        carrier_id = "SM" + random_hex(rng, 32)
        builds: list[Build] = []
        for step in self.steps(rng, journey, sent_at):
            failed = step.word == "sms.failed"
            payload = sendcomms_event(
                step.word,
                transaction_id,
                to=to,
                timestamp=step.at,
                message_id=None if failed else carrier_id,
                error=step.detail if failed else None,
            )
            builds.append(
                functools.partial(sendcomms_request, ctx.secret, payload, provider=ctx.name)
            )
        return builds


__all__ = [
    "SendCommsSimulation",
    "sendcomms_body",
    "sendcomms_event",
    "sendcomms_request",
    "sendcomms_time",
    "sendcomms_transaction_id",
]
