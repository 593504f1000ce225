"""Build Txtly webhook deliveries, signed or tokened, for integration tests and tooling.

Txtly documents no SMS delivery event (docs/providers/txtly.md): ``txtly_event`` builds
the documented envelope with an ``sms.*`` type and the ``data`` fields the ``txtly``
parser reads. ``txtly_request`` signs it with the webhook's signing secret
(``txtly-signature``, the scheme of ``receiver.core.signatures.txtly``) and/or adds the
provider's ``url_token``::

    event = txtly_event("a1b2c3d4-e5f6-7890-abcd-ef1234567890", "delivered", to="+61412345678")
    request = txtly_request(signing_secret, event, provider="txtly")
    httpx.post(base_url + request.path, content=request.body, headers=request.headers)
"""

from __future__ import annotations

import functools
import json
import random
import uuid
from datetime import UTC, datetime
from typing import Any

from receiver.core.signatures import txtly as txtly_signature
from receiver.core.signatures import url_token as url_token_scheme
from receiver.testing.base import (
    Build,
    Context,
    Journey,
    SignedRequest,
    Simulation,
    journey,
    random_hex,
    random_uuid,
)


def txtly_event(
    sms_id: str,
    status: str,
    *,
    event_id: str | None = None,
    created_at: datetime | None = None,
    to: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> dict[str, Any]:
    """An ``sms.{status}`` event about Txtly's SMS ``sms_id`` (the ``id`` its send
    answered); ``event_id`` defaults to a fresh ``evt_...``, ``created_at`` to now."""
    data: dict[str, Any] = {"sms_id": sms_id}
    optional = {"to": to, "error_code": error_code, "error_message": error_message}
    data.update({key: value for key, value in optional.items() if value is not None})
    moment = created_at or datetime.now(UTC)
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "type": f"sms.{status}",
        "created_at": moment.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }


def txtly_request(
    secret: str | None,
    event: dict[str, Any],
    *,
    provider: str = "default",
    url_token: str | None = None,
) -> SignedRequest:
    """A delivery of ``event`` to ``/webhooks/{provider}``: signed with ``secret`` (a
    ``whsec_`` signing secret; None: unsigned), with ``?token=`` when ``url_token``."""
    body = json.dumps(event).encode()
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers[txtly_signature.HEADER] = txtly_signature.signature(secret, body)
    path = url_token_scheme.with_token(f"/webhooks/{provider}", url_token)
    return SignedRequest(path=path, body=body, headers=headers)


class TxtlySimulation(Simulation):
    """``receiver simulate``'s Txtly messages. Txtly documents no SMS events: these are
    the ``sms.*`` words its parser reads (docs/providers/txtly.md). Without secrets the
    reports go unsigned, with the ``url_token`` if one is set."""

    kind = "txtly"
    journeys = (
        journey(70, "sent delivered"),
        journey(8, "sent delivery_delayed delivered"),
        journey(10, "sent bounced"),
        journey(5, "sent failed"),
        journey(7, "sent"),
    )
    slow = frozenset({"delivered", "failed"})

    def message(
        self, rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
    ) -> list[Build]:
        sms_id = random_uuid(rng)
        token = ctx.provider.config.url_token
        to = f"+614{rng.randint(0, 99_999_999):08d}"
        builds: list[Build] = []
        for step in self.steps(rng, journey, sent_at):
            event = txtly_event(
                sms_id, step.word, event_id=f"evt_{random_hex(rng, 24)}", created_at=step.at, to=to
            )
            builds.append(
                functools.partial(
                    txtly_request, ctx.secret, event, provider=ctx.name, url_token=token
                )
            )
        return builds


__all__ = ["TxtlySimulation", "txtly_event", "txtly_request"]
