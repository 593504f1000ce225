"""Build correctly signed Vonage webhooks, for integration tests and tooling.

SMS API delivery receipts carry a ``sig`` parameter (the account's signature method);
Messages API status webhooks a bearer JWT. Neither signs the URL::

    request = vonage_sms_request(
        signature_secret,
        vonage_sms_report("0B00000127FDBC63", "delivered", msisdn="447547232824"),
        signature_method="sha256",
        provider="vonage",
    )
    request = vonage_messages_request(
        signature_secret,
        vonage_message_status("aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab", "delivered"),
        provider="vonage",
    )
    httpx.request(request.method, base_url + request.path,
                  content=request.body, headers=request.headers)
"""

from __future__ import annotations

import functools
import json
import random
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlencode

from receiver.core.signatures import vonage as vonage_signature
from receiver.providers.vonage import VonageConfig
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

# The placeholder API key of Vonage's documentation.
EXAMPLE_API_KEY = "abcd1234"

Transport = Literal["form", "json", "query"]


def vonage_sms_report(
    message_id: str,
    status: str,
    *,
    msisdn: str | None = None,
    to: str | None = None,
    network_code: str | None = None,
    price: str | None = None,
    err_code: str | None = None,
    scts: datetime | str | None = None,
    message_timestamp: datetime | str | None = None,
    client_ref: str | None = None,
    api_key: str | None = EXAMPLE_API_KEY,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The fields of one SMS API delivery receipt, named as Vonage names them
    (``msisdn`` is the recipient, ``to`` the sender id; ``message_timestamp`` is UTC,
    ``scts`` the carrier's ``YYMMDDhhmm``)."""
    if isinstance(scts, datetime):
        scts = scts.astimezone(UTC).strftime("%y%m%d%H%M")
    if isinstance(message_timestamp, datetime):
        message_timestamp = message_timestamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    fields = {"messageId": message_id, "status": status}
    for key, value in (
        ("msisdn", msisdn),
        ("to", to),
        ("network-code", network_code),
        ("price", price),
        ("err-code", err_code),
        ("scts", scts),
        ("message-timestamp", message_timestamp),
        ("client-ref", client_ref),
        ("api-key", api_key),
    ):
        if value is not None:
            fields[key] = value
    fields.update(extra or {})
    return fields


def vonage_message_id(rng: random.Random) -> str:
    """An SMS API message id in Vonage's shape (16 uppercase hex digits) drawn from
    ``rng``."""
    return random_hex(rng, 16).upper()


def vonage_sms_request(
    signature_secret: str,
    report: Mapping[str, str],
    *,
    provider: str = "default",
    signature_method: vonage_signature.SignatureMethod = vonage_signature.DEFAULT_SIGNATURE_METHOD,
    transport: Transport = "form",
    timestamp: int | None = None,
    nonce: str | None = None,
) -> SignedRequest:
    """A delivery receipt to ``/webhooks/{provider}`` signed as Vonage signs it.

    ``timestamp`` (default: now) and ``nonce`` (default: a fresh UUID) are added and
    signed with ``sig``. ``transport`` is the dashboard's choice: ``form`` (POST
    form-encoded), ``json`` (POST JSON) or ``query`` (GET).
    """
    params = dict(report)
    params["timestamp"] = str(int(time.time()) if timestamp is None else timestamp)
    params["nonce"] = nonce or str(uuid.uuid4())
    params["sig"] = vonage_signature.sms_signature(params, signature_secret, signature_method)
    path = f"/webhooks/{provider}"
    if transport == "query":
        return SignedRequest(path=f"{path}?{urlencode(params)}", body=b"", method="GET")
    if transport == "json":
        return SignedRequest(
            path=path,
            body=json.dumps(params).encode(),
            headers={"content-type": "application/json"},
        )
    return SignedRequest(
        path=path,
        body=urlencode(params).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


def vonage_message_status(
    message_uuid: str,
    status: str,
    *,
    to: str | None = "447700900000",
    from_: str | None = "447700900001",
    timestamp: datetime | str | None = None,
    channel: str = "sms",
    client_ref: str | None = None,
    error: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One Messages API status webhook body (``timestamp`` default: now, UTC)."""
    if timestamp is None:
        timestamp = datetime.now(UTC)
    if isinstance(timestamp, datetime):
        timestamp = timestamp.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    payload: dict[str, Any] = {"message_uuid": message_uuid}
    for key, value in (("to", to), ("from", from_)):
        if value is not None:
            payload[key] = value
    payload.update({"timestamp": timestamp, "status": status, "channel": channel})
    if client_ref is not None:
        payload["client_ref"] = client_ref
    if error is not None:
        payload["error"] = dict(error)
    payload.update(extra or {})
    return payload


def vonage_messages_request(
    signature_secret: str,
    payload: Mapping[str, Any],
    *,
    provider: str = "default",
    api_key: str = EXAMPLE_API_KEY,
    application_id: str | None = None,
    issued_at: int | None = None,
    jti: str | None = None,
    signed: bool = True,
) -> SignedRequest:
    """A Messages API status webhook to ``/webhooks/{provider}`` with the bearer JWT
    Vonage signs it with (``issued_at`` default: now). ``signed=False`` leaves the
    Authorization header out, as Vonage does after a rare internal error."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"content-type": "application/json"}
    if signed:
        token = vonage_signature.messages_token(
            body,
            signature_secret,
            issued_at=int(time.time()) if issued_at is None else issued_at,
            jti=jti or str(uuid.uuid4()),
            api_key=api_key,
            application_id=application_id,
        )
        headers["authorization"] = f"Bearer {token}"
    return SignedRequest(path=f"/webhooks/{provider}", body=body, headers=headers)


def vonage_request(
    signature_secret: str, payload: Mapping[str, Any], **options: Any
) -> SignedRequest:
    """A Messages API webhook when ``payload`` has a ``message_uuid``, else an SMS API
    receipt; ``options`` go to ``vonage_messages_request`` / ``vonage_sms_request``."""
    if "message_uuid" in payload:
        return vonage_messages_request(signature_secret, payload, **options)
    return vonage_sms_request(signature_secret, payload, **options)


class VonageSimulation(Simulation):
    """``receiver simulate``'s Vonage messages: SMS API delivery receipts, and some
    Messages API status webhooks (``submitted``, ``undeliverable``) on the same account."""

    kind = "vonage"
    journeys = (
        journey(55, "accepted delivered"),
        journey(10, "accepted buffered delivered"),
        journey(
            10,
            "accepted failed",
            ("2", "Absent Subscriber - Temporary"),
            ("3", "Absent Subscriber - Permanent"),
            ("9", "Illegal Number"),
            ("12", "Destination Unreachable"),
        ),
        journey(5, "accepted buffered expired", ("1", "Unknown")),
        journey(5, "rejected", ("6", "Anti-Spam Rejection"), ("14", "Number Blocked by Carrier")),
        journey(5, "accepted"),
        # The Messages API, on the same account.
        journey(7, "submitted delivered"),
        journey(
            3,
            "submitted undeliverable",
            ("1320", "Message failed because the number is not reachable"),
            ("1340", "Message failed because the recipient blocked it"),
        ),
    )
    slow = frozenset({"delivered", "buffered", "failed"})
    expiring = frozenset({"expired"})
    placeholder_secret = "placeholder"  # noqa: S105 - a stand-in, never a real secret

    def message(
        self, rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
    ) -> list[Build]:
        msisdn = random_phone(rng, "44")
        if journey.words[0] == "submitted":
            return self._messages_api(rng, ctx, index, journey, sent_at, msisdn)
        config = ctx.provider.config
        method = config.signature_method if isinstance(config, VonageConfig) else "md5hash"
        secret = ctx.secret or ""
        builds: list[Build] = []
        message_id = vonage_message_id(rng)
        network = rng.choice(["23410", "23415", "23420", "23430"])
        for step in self.steps(rng, journey, sent_at):
            err = step.error or (
                "0" if step.word in ("delivered", "accepted", "buffered") else "99"
            )
            report = vonage_sms_report(
                message_id,
                step.word,
                msisdn=msisdn,
                to="Acme",
                network_code=network,
                price="0.03330000",
                err_code=err,
                scts=step.at,
                message_timestamp=step.at,
                client_ref=f"order-{index}",
            )
            builds.append(
                functools.partial(
                    vonage_sms_request, secret, report, provider=ctx.name, signature_method=method
                )
            )
        return builds

    def _messages_api(
        self,
        rng: random.Random,
        ctx: Context,
        index: int,
        journey: Journey,
        sent_at: datetime,
        to: str,
    ) -> list[Build]:
        secret = ctx.secret or ""
        builds: list[Build] = []
        message_uuid = random_uuid(rng)
        for step in self.steps(rng, journey, sent_at):
            error = None
            if step.error:
                error = {
                    "type": f"https://developer.vonage.com/api-errors/messages#{step.error}",
                    "title": step.error,
                    "detail": step.detail,
                    "instance": random_uuid(rng),
                }
            payload = vonage_message_status(
                message_uuid,
                step.word,
                to=to,
                from_="Acme",
                timestamp=step.at,
                client_ref=f"order-{index}",
                error=error,
            )
            builds.append(
                functools.partial(vonage_messages_request, secret, payload, provider=ctx.name)
            )
        return builds


__all__ = [
    "EXAMPLE_API_KEY",
    "VonageSimulation",
    "vonage_message_id",
    "vonage_message_status",
    "vonage_messages_request",
    "vonage_request",
    "vonage_sms_report",
    "vonage_sms_request",
]
