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

import json
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

from receiver.core.signatures import twilio as twilio_signature
from receiver.testing.base import SignedRequest

# The placeholder account of Twilio's documented example callback.
EXAMPLE_ACCOUNT_SID = "ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

Params = Mapping[str, str] | Sequence[tuple[str, str]]


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


__all__ = ["EXAMPLE_ACCOUNT_SID", "twilio_report", "twilio_request"]
