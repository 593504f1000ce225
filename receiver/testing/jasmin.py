"""Build Jasmin DLR requests (GET query or POST form, HTTP Basic), for tests and tooling.

request = jasmin_request("jasmin:s3cret", jasmin_dlr(message_id=msg_id, message_status="DELIVRD"))
answer = httpx.request(request.method, base_url + request.path, content=request.body,
                       headers=request.headers)
assert answer.text == "ACK/Jasmin"
"""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime
from urllib.parse import urlencode

from receiver.core.signatures import basic_auth
from receiver.testing.base import (
    Build,
    Context,
    Journey,
    SignedRequest,
    Simulation,
    journey,
    random_uuid,
)

USER_AGENT = "Jasmin gateway/1.0 DLRThrower"


def smpp_date(moment: datetime) -> str:
    """The SMPP receipt date format ``YYMMDDhhmm``, in UTC."""
    return moment.astimezone(UTC).strftime("%y%m%d%H%M")


def jasmin_dlr(
    *,
    message_id: str,
    message_status: str,
    level: int | None = None,
    id_smsc: str = "2567",
    subdate: datetime | None = None,
    donedate: datetime | None = None,
    err: str = "000",
    text: str = "Hello foo bar",
    sub: str = "001",
    dlvrd: str | None = None,
) -> dict[str, str]:
    """A DLR's parameters in the order Jasmin's DLRThrower sends them.

    ``level`` defaults to 1 for an ``ESME_*`` command status (SMS-C level: only ``id``,
    ``level`` and ``message_status``) and to 2 for a receipt state such as ``DELIVRD``.
    """
    if level is None:
        level = 1 if message_status.startswith("ESME_") else 2
    params = {"id": message_id, "level": str(level), "message_status": message_status}
    if level in (2, 3):
        done = donedate or datetime.now(UTC)
        if dlvrd is None:
            dlvrd = "001" if message_status == "DELIVRD" else "000"
        params |= {
            "id_smsc": id_smsc,
            "sub": sub,
            "dlvrd": dlvrd,
            "subdate": smpp_date(subdate or done),
            "donedate": smpp_date(done),
            "err": err,
            "text": text[:20],
        }
    return params


def jasmin_request(
    credentials: str | None,
    params: dict[str, str],
    *,
    provider: str = "jasmin",
    method: str = "POST",
) -> SignedRequest:
    """A DLR to ``/webhooks/{provider}`` as Jasmin throws it: ``GET`` with the query, or
    ``POST`` with a form body; Basic credentials (``"user:password"``) unless None."""
    method = method.upper()
    if method not in ("GET", "POST"):
        raise ValueError("Jasmin throws DLRs with GET or POST")
    encoded = urlencode(params)
    headers = {
        # Jasmin sends these on GET too.
        "content-type": "application/x-www-form-urlencoded",
        "accept": "text/plain",
        "user-agent": USER_AGENT,
    }
    if credentials is not None:
        headers["authorization"] = basic_auth.header(credentials)
    if method == "GET":
        return SignedRequest(f"/webhooks/{provider}?{encoded}", b"", headers, "GET")
    return SignedRequest(f"/webhooks/{provider}", encoded.encode(), headers, "POST")


class JasminSimulation(Simulation):
    """``receiver simulate``'s Jasmin messages: the submit's ``ESME_*`` answer, then
    SMPP delivery receipts."""

    kind = "jasmin"
    journeys = (
        journey(70, "ESME_ROK DELIVRD"),
        journey(5, "ESME_ROK ENROUTE DELIVRD"),
        journey(10, "ESME_ROK UNDELIV", ("001", "x"), ("00B", "x"), ("045", "x")),
        journey(5, "ESME_ROK EXPIRED", ("027", "x")),
        journey(3, "ESME_ROK REJECTD", ("00D", "x")),
        journey(3, "ESME_RINVDSTADR"),
        journey(4, "ESME_ROK"),
    )
    slow = frozenset({"DELIVRD", "UNDELIV"})
    expiring = frozenset({"EXPIRED"})

    def message(
        self, rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
    ) -> list[Build]:
        message_id = random_uuid(rng)
        builds: list[Build] = []
        for step in self.steps(rng, journey, sent_at):
            if step.word.startswith("ESME_"):
                params = jasmin_dlr(message_id=message_id, message_status=step.word)
            else:
                params = jasmin_dlr(
                    message_id=message_id,
                    message_status=step.word,
                    id_smsc=str(rng.randint(1000, 99999)),
                    subdate=sent_at,
                    donedate=step.at,
                    err=step.error or "000",
                    text=f"Your code is {rng.randint(0, 999999):06d}",
                )
            builds.append(functools.partial(jasmin_request, ctx.secret, params, provider=ctx.name))
        return builds


__all__ = ["JasminSimulation", "jasmin_dlr", "jasmin_request", "smpp_date"]
