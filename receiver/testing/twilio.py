"""Build correctly signed Twilio status callbacks, for integration tests and tooling.

Twilio signs the public URL it calls, so tell the builder the ``public_base_url`` your
receiver is configured with (or the address it serves on when none is set)::

    request = twilio_request(
        auth_token,
        twilio_report("SM1342fe1b2c904d1ab04f0fc7a58abca9", "delivered", to="+15558675310"),
        public_base_url="https://dlr.example.com",
        provider="twilio",
    )
    httpx.post(local_base_url + request.path, content=request.body, headers=request.headers)
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Mapping, Sequence
from datetime import datetime
from urllib.parse import urlencode

from receiver.core.signatures import twilio as twilio_signature
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

# The placeholder account of Twilio's documented example callback.
EXAMPLE_ACCOUNT_SID = "ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

Params = Mapping[str, str] | Sequence[tuple[str, str]]


def twilio_message_sid(rng: random.Random) -> str:
    """A message SID in Twilio's shape (``SM`` and 32 hex digits) drawn from ``rng``."""
    return "SM" + random_hex(rng, 32)


def twilio_report(
    message_sid: str,
    status: str,
    *,
    account_sid: str = EXAMPLE_ACCOUNT_SID,
    to: str | None = None,
    from_: str | None = "+15017250604",
    error_code: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The form parameters of one status callback, shaped like Twilio's (``SmsSid`` and
    ``SmsStatus`` repeat ``MessageSid`` and ``MessageStatus``; ``ApiVersion`` is set)."""
    params = {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "MessageSid": message_sid,
        "MessageStatus": status,
        "SmsSid": message_sid,
        "SmsStatus": status,
    }
    for key, value in (("To", to), ("From", from_), ("ErrorCode", error_code)):
        if value is not None:
            params[key] = value
    params.update(extra or {})
    return params


def twilio_request(
    auth_token: str,
    params: Params,
    *,
    public_base_url: str,
    provider: str = "default",
    query: str = "",
    json_body: bool = False,
    algorithm: str = twilio_signature.HMAC_SHA1,
    shared_key_sid: str | None = None,
) -> SignedRequest:
    """A status callback to ``/webhooks/{provider}`` signed as Twilio signs it.

    ``public_base_url`` + the path (+ ``?query``) is the URL signed. By default the body
    is form-encoded and every parameter is signed. ``json_body=True`` sends the params as
    a JSON object instead, with ``bodySHA256`` appended to the query and the URL alone
    signed. ``algorithm="HMAC_SHA256"`` with ``shared_key_sid`` signs as a SharedKey
    webhook does (``auth_token`` is then the SharedKey secret).
    """
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    headers: dict[str, str] = {}
    if json_body:
        body = json.dumps(dict(pairs)).encode()
        hash_param = f"{twilio_signature.BODY_HASH_PARAM}={twilio_signature.body_sha256(body)}"
        query = f"{query}&{hash_param}" if query else hash_param
        headers["content-type"] = "application/json"
        signed_pairs: list[tuple[str, str]] = []
    else:
        body = urlencode(pairs).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
        signed_pairs = pairs
    path = f"/webhooks/{provider}" + (f"?{query}" if query else "")
    url = public_base_url.rstrip("/") + path
    headers["x-twilio-signature"] = twilio_signature.signature(
        auth_token, url, signed_pairs, algorithm=algorithm
    )
    if shared_key_sid is not None or algorithm != twilio_signature.HMAC_SHA1:
        settings = f"algorithm={algorithm}"
        headers["x-twilio-webhooks-signature-settings"] = (
            f"key={shared_key_sid},{settings}" if shared_key_sid else settings
        )
    return SignedRequest(path=path, body=body, headers=headers)


class TwilioSimulation(Simulation):
    """``receiver simulate``'s Twilio messages: one status callback per request, the
    final ones with ``RawDlrDoneDate``."""

    kind = "twilio"
    journeys = (
        journey(65, "queued sending sent delivered"),
        journey(5, "accepted queued sent delivered"),
        journey(
            12,
            "queued sent undelivered",
            ("30003", "Unreachable destination handset"),
            ("30005", "Unknown destination handset"),
            ("30006", "Landline or unreachable carrier"),
            ("30007", "Message filtered"),
        ),
        journey(
            8,
            "queued failed",
            ("30008", "Unknown error"),
            ("21610", "Attempt to send to unsubscribed recipient"),
            ("30034", "Message from an unregistered number"),
        ),
        journey(10, "queued sending sent"),
    )
    slow = frozenset({"delivered", "undelivered", "failed"})
    placeholder_secret = "0" * 32

    def message(
        self, rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
    ) -> list[Build]:
        sid = twilio_message_sid(rng)
        to = "+" + random_phone(rng)
        builds: list[Build] = []
        for step in self.steps(rng, journey, sent_at):
            params = twilio_report(sid, step.word, to=to, error_code=step.error)
            if step.word in ("delivered", "undelivered"):
                params["RawDlrDoneDate"] = step.at.strftime("%y%m%d%H%M")
            builds.append(
                functools.partial(
                    twilio_request,
                    ctx.secret or "",
                    params,
                    public_base_url=ctx.public_base_url,
                    provider=ctx.name,
                )
            )
        return builds


__all__ = [
    "EXAMPLE_ACCOUNT_SID",
    "TwilioSimulation",
    "twilio_message_sid",
    "twilio_report",
    "twilio_request",
]
