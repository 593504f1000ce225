"""Build signed Plivo message status callbacks, for integration tests and tooling.

report = plivo_report("2b7c8a42-...", "delivered", to="14155550123", sequence=3)
request = plivo_request(auth_token, report, public_base_url="https://dlr.example.com")
httpx.request(request.method, base_url + request.path, content=request.body,
              headers=request.headers)

The signature covers the public URL, so ``public_base_url`` must be the receiver's
``public_base_url`` setting (or the URL it is reached at).
"""

from __future__ import annotations

import functools
import random
import secrets
from datetime import datetime
from typing import Literal
from urllib.parse import urlencode

from receiver.core.signatures import plivo as plivo_signature
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

FORM = "application/x-www-form-urlencoded"


def _plivo_time(value: datetime) -> str:
    """Plivo's ``YYYY-mm-dd HH:MM:SS.SSSSSS`` (the value as given, no zone)."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def plivo_report(
    message_uuid: str,
    status: str,
    *,
    to: str = "14155550123",
    from_: str = "14155550100",
    error_code: str | None = None,
    sequence: int | str | None = None,
    message_time: datetime | None = None,
    queued_time: datetime | None = None,
    sent_time: datetime | None = None,
    delivery_report_time: datetime | None = None,
    units: int = 1,
    total_rate: str = "0.00550",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The parameters of one status callback, named and formatted as Plivo sends them
    (unset times and ``ErrorCode`` are sent blank, as Plivo does)."""
    times = {
        "MessageTime": message_time,
        "QueuedTime": queued_time,
        "SentTime": sent_time,
        "DeliveryReportTime": delivery_report_time,
    }
    params = {
        "MessageUUID": message_uuid,
        "ParentMessageUUID": message_uuid,
        "PartInfo": "",
        "Status": status,
        "To": to,
        "From": from_,
        "Type": "sms",
        "Units": str(units),
        "TotalRate": total_rate,
        "TotalAmount": f"{float(total_rate) * units:.5f}",
        "MCC": "310",
        "MNC": "260",
        "ErrorCode": error_code or "",
        "Sequence": "" if sequence is None else str(sequence),
        "PowerpackUUID": "",
    }
    params.update({k: "" if v is None else _plivo_time(v) for k, v in times.items()})
    params.update(extra or {})
    return params


def plivo_request(
    auth_token: str,
    params: dict[str, str],
    *,
    provider: str = "default",
    public_base_url: str = "http://127.0.0.1:8000",
    method: Literal["POST", "GET"] = "POST",
    query: str = "",
    version: Literal["v3", "v2"] = "v3",
    main_account: bool = False,
    nonce: str | None = None,
) -> SignedRequest:
    """A callback to ``/webhooks/{provider}`` signed with ``auth_token``.

    POST sends ``params`` as a form body, GET in the query (after ``query``, a raw query
    of your own callback URL). ``version`` picks the V3 or V2 scheme; ``main_account``
    uses the ``-Ma-`` header, which Plivo signs with the main account's token.
    """
    nonce = nonce or str(secrets.randbelow(10**20)).zfill(20)
    pairs = list(params.items())
    if method == "GET":
        query = "&".join(part for part in (query, urlencode(pairs)) if part)
        body, form = b"", []
    else:
        body, form = urlencode(pairs).encode(), pairs
    path = f"/webhooks/{provider}" + (f"?{query}" if query else "")
    url = public_base_url.rstrip("/") + path
    infix = "-Ma" if main_account else ""
    if version == "v3":
        signature = plivo_signature.sign_v3(auth_token, method, url, nonce, form)
    else:
        signature = plivo_signature.sign_v2(auth_token, url, nonce)
    headers = {
        f"X-Plivo-Signature{infix}-{version.upper()}": signature,
        f"X-Plivo-Signature-{version.upper()}-Nonce": nonce,
    }
    if method == "POST":
        headers["Content-Type"] = FORM
    return SignedRequest(path=path, body=body, headers=headers, method=method)


class PlivoSimulation(Simulation):
    """``receiver simulate``'s Plivo messages: each callback carries the times so far."""

    kind = "plivo"
    journeys = (
        journey(70, "queued sent delivered"),
        journey(
            12,
            "queued sent undelivered",
            ("20", "Network Error"),
            ("50", "Invalid Destination Number"),
        ),
        journey(5, "queued failed", ("10", "Invalid Message"), ("40", "Invalid Source Number")),
        journey(5, "queued rejected", ("30", "Spam Detected")),
        journey(8, "queued sent"),
    )
    slow = frozenset({"delivered", "undelivered", "failed"})
    placeholder_secret = "placeholder-auth-token"  # noqa: S105 - a stand-in, never a real secret

    def message(
        self, rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
    ) -> list[Build]:
        message_uuid = random_uuid(rng)
        to = random_phone(rng)
        builds: list[Build] = []
        times: dict[str, datetime] = {}
        for sequence, step in enumerate(self.steps(rng, journey, sent_at), 1):
            times.setdefault("message_time", sent_at)
            if step.word == "queued":
                times["queued_time"] = step.at
            elif step.word == "sent":
                times["sent_time"] = step.at
            else:
                times["delivery_report_time"] = step.at
            params = plivo_report(
                message_uuid,
                step.word,
                to=to,
                error_code=step.error or "000",
                sequence=sequence,
                message_time=times.get("message_time"),
                queued_time=times.get("queued_time"),
                sent_time=times.get("sent_time"),
                delivery_report_time=times.get("delivery_report_time"),
            )
            builds.append(
                functools.partial(
                    plivo_request,
                    ctx.secret or "",
                    params,
                    provider=ctx.name,
                    public_base_url=ctx.public_base_url,
                )
            )
        return builds


__all__ = ["PlivoSimulation", "plivo_report", "plivo_request"]
