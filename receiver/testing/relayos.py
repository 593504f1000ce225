"""Build RelayOS status callbacks, for integration tests and tooling.

RelayOS signs nothing: its callbacks are authenticated by the secret ``url_token`` in
the URL you set as the project's ``callbackUrl``, so the builder puts it in the query::

    request = relayos_request(
        relayos_report("msg_01hwz3k8j2fxqbv9r4tp6d", "DELIVERED", to="+5511999998888"),
        url_token=token,
        provider="relayos",
    )
    httpx.post(base_url + request.path, content=request.body, headers=request.headers)
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from receiver.core.signatures import url_token as url_token_scheme
from receiver.testing.base import (
    ULID_ALPHABET,
    Build,
    Context,
    Journey,
    SignedRequest,
    Simulation,
    journey,
    random_hex,
)

EXAMPLE_TEMPLATE = "lembrete_consulta"
"""The template of RelayOS's documented examples."""


def relayos_time(moment: datetime) -> str:
    """A moment as RelayOS writes ``occurred_at``: UTC with ``Z``, to the second
    (``2026-05-14T14:22:10Z``), milliseconds only when there are some."""
    utc = moment.astimezone(UTC)
    spec = "milliseconds" if utc.microsecond else "seconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def relayos_report(
    message_id: str,
    status: str,
    *,
    to: str | None = "+5511999998888",
    template: str = EXAMPLE_TEMPLATE,
    occurred_at: datetime | None = None,
    meta_message_id: str | None = None,
    event: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One callback's JSON, shaped like the webhooks guide's example: ``event`` is
    ``message.`` + the lower-case ``status`` unless given, ``meta_message_id`` a
    ``wamid.`` id derived from ``message_id``, ``occurred_at`` now unless given."""
    wamid = "wamid.HBgM" + hashlib.sha256(message_id.encode()).hexdigest()[:32].upper()
    payload: dict[str, Any] = {
        "event": event or f"message.{status.lower()}",
        "message_id": message_id,
        "to": to,
        "template": template,
        "status": status,
        "meta_message_id": meta_message_id or wamid,
        "occurred_at": relayos_time(occurred_at or datetime.now(UTC)),
    }
    payload.update(extra or {})
    return payload


def relayos_request(
    report: Mapping[str, Any], *, url_token: str | None = None, provider: str = "default"
) -> SignedRequest:
    """A callback to ``/webhooks/{provider}``, with ``?token=`` when ``url_token`` is
    given (what the ``callbackUrl`` we tell RelayOS carries)."""
    path = url_token_scheme.with_token(f"/webhooks/{provider}", url_token)
    body = json.dumps(dict(report)).encode()
    return SignedRequest(path=path, body=body, headers={"content-type": "application/json"})


class RelayOSSimulation(Simulation):
    """``receiver simulate``'s RelayOS WhatsApp messages: callbacks start at ``SENT``,
    ``FAILED`` carries no error code. Signs nothing: the ``url_token`` goes in the query."""

    kind = "relayos"
    journeys = (
        journey(55, "SENT DELIVERED READ"),
        journey(25, "SENT DELIVERED"),
        journey(10, "SENT FAILED"),
        journey(3, "FAILED"),
        journey(7, "SENT"),
    )
    slow = frozenset({"DELIVERED", "READ", "FAILED"})

    def message(
        self, rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
    ) -> list[Build]:
        message_id = "msg_01" + "".join(rng.choice(ULID_ALPHABET) for _ in range(24)).lower()
        to = f"+55119{rng.randint(60000000, 99999999)}"  # a São Paulo mobile
        wamid = f"wamid.HBgN{random_hex(rng, 32).upper()}"
        builds: list[Build] = []
        for step in self.steps(rng, journey, sent_at):
            report = relayos_report(
                message_id, step.word, to=to, occurred_at=step.at, meta_message_id=wamid
            )
            builds.append(
                functools.partial(
                    relayos_request,
                    report,
                    url_token=ctx.provider.config.url_token,
                    provider=ctx.name,
                )
            )
        return builds


__all__ = [
    "EXAMPLE_TEMPLATE",
    "RelayOSSimulation",
    "relayos_report",
    "relayos_request",
    "relayos_time",
]
