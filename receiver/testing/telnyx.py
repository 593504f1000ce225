"""Build Telnyx delivery-update webhooks, signed with Ed25519 as Telnyx signs them.

Telnyx signs with its private key and you configure its public key, so a test makes
its own key pair::

    private_key = Ed25519PrivateKey.generate()
    config = {"type": "telnyx", "public_key": telnyx_public_key(private_key)}
    request = telnyx_request(private_key, telnyx_event("40385f64-...", "delivered"))
    httpx.post(base_url + request.path, content=request.body, headers=request.headers)
"""

from __future__ import annotations

import base64
import functools
import json
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from receiver.core.signatures import telnyx_ed25519
from receiver.providers.base import Provider
from receiver.testing.base import (
    Build,
    Context,
    Journey,
    SignedRequest,
    Simulation,
    SimulationError,
    journey,
    random_phone,
    random_uuid,
)

# Where each recipient status is reported: the final words come with message.finalized.
_FINAL_WORDS = frozenset(
    {"delivered", "read", "delivery_failed", "sending_failed", "expired", "delivery_unconfirmed"}
)


def telnyx_public_key(private_key: Ed25519PrivateKey) -> str:
    """The base64 public key for ``public_key`` in config, as the Telnyx portal shows it."""
    return telnyx_ed25519.public_key_text(private_key)


def telnyx_event(
    message_id: str,
    status: str,
    *,
    to: str = "+18665550001",
    recipients: Sequence[tuple[str, str]] | None = None,
    event_type: str | None = None,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    errors: Sequence[dict[str, Any]] = (),
    sender: str = "+18445550001",
    attempt: int = 1,
) -> dict[str, Any]:
    """A delivery-update event body for message ``message_id``.

    ``recipients`` (pairs of phone number and status) replaces ``to``/``status`` for a
    message with several recipients. ``event_type`` defaults to ``message.finalized``
    for a final status and ``message.sent`` otherwise; ``errors`` are
    ``{"code", "title", "detail"}`` objects.
    """
    pairs = list(recipients) if recipients is not None else [(to, status)]
    if event_type is None:
        final = all(word in _FINAL_WORDS for _, word in pairs)
        event_type = "message.finalized" if final else "message.sent"
    stamp = (occurred_at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")
    final_event = event_type == "message.finalized"
    return {
        "data": {
            "record_type": "event",
            "id": event_id or str(uuid.uuid4()),
            "event_type": event_type,
            "occurred_at": stamp,
            "payload": {
                "record_type": "message",
                "direction": "outbound",
                "id": message_id,
                "type": "SMS",
                "from": {"phone_number": sender, "carrier": "TELNYX LLC", "line_type": "VoIP"},
                "to": [
                    {
                        "phone_number": number,
                        "status": word,
                        "carrier": "T-MOBILE USA, INC.",
                        "line_type": "Wireless",
                    }
                    for number, word in pairs
                ],
                "cc": [],
                "text": "Hello, World!",
                "encoding": "GSM-7",
                "parts": 1,
                "tags": [],
                "sent_at": stamp,
                "completed_at": stamp if final_event else None,
                "valid_until": None,
                "errors": list(errors),
            },
        },
        "meta": {"attempt": attempt, "delivered_to": "https://dlr.example.com/webhooks/telnyx"},
    }


def telnyx_request(
    private_key: Ed25519PrivateKey,
    event: dict[str, Any] | bytes,
    *,
    provider: str = "telnyx",
    timestamp: int | None = None,
) -> SignedRequest:
    """A POST to ``/webhooks/{provider}`` carrying ``event`` (a dict, or raw JSON bytes),
    signed with ``private_key`` at ``timestamp`` (default: now)."""
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    sent_at = int(time.time()) if timestamp is None else timestamp
    return SignedRequest(
        path=f"/webhooks/{provider}",
        body=body,
        headers={
            "content-type": "application/json",
            telnyx_ed25519.TIMESTAMP_HEADER: str(sent_at),
            telnyx_ed25519.SIGNATURE_HEADER: telnyx_ed25519.sign(private_key, sent_at, body),
        },
    )


class TelnyxSimulation(Simulation):
    """``receiver simulate``'s Telnyx messages, signed with the private key whose public
    key the provider is configured with (``--telnyx-private-key``)."""

    kind = "telnyx"
    journeys = (
        journey(70, "queued sent delivered"),
        journey(
            12,
            "queued sent delivery_failed",
            ("40001", "Not routable"),
            ("40008", "Undeliverable"),
        ),
        journey(5, "queued sending_failed", ("40300", "Blocked as spam")),
        journey(5, "queued sent expired", ("40006", "Recipient server unavailable")),
        journey(8, "queued sent"),
    )
    slow = frozenset({"delivered", "delivery_failed"})
    expiring = frozenset({"expired"})

    def message(
        self, rng: random.Random, ctx: Context, index: int, journey: Journey, sent_at: datetime
    ) -> list[Build]:
        message_id = random_uuid(rng)
        to = "+" + random_phone(rng)
        key = ctx.private_key
        if key is None:  # private_key() is asked before generation
            raise SimulationError("a telnyx stream needs --telnyx-private-key")
        builds: list[Build] = []
        for step in self.steps(rng, journey, sent_at):
            errors = (
                [{"code": step.error, "title": step.detail, "detail": step.detail}]
                if step.error
                else []
            )
            event = telnyx_event(
                message_id,
                step.word,
                to=to,
                event_id=random_uuid(rng),
                occurred_at=step.at,
                errors=errors,
            )
            builds.append(functools.partial(telnyx_request, key, event, provider=ctx.name))
        return builds

    def private_key(self, path: str | None, provider: Provider) -> Ed25519PrivateKey:
        """Telnyx's key from ``path`` (PEM, or the base64 of its 32 raw bytes), whose
        public key must be configured when the provider verifies."""
        if path is None:
            raise SimulationError(
                f"provider {provider.name!r} is telnyx, which signs with Telnyx's private key "
                "that receiver does not hold: pass --telnyx-private-key FILE (an Ed25519 key "
                "whose public key is configured)"
            )
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SimulationError(f"--telnyx-private-key {path}: {exc.strerror}") from None
        key: Any
        try:
            if b"-----BEGIN" in data:
                key = serialization.load_pem_private_key(data, password=None)
            else:
                raw = base64.b64decode(data.strip(), validate=True)
                key = Ed25519PrivateKey.from_private_bytes(raw)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, Ed25519PrivateKey):
            raise SimulationError(
                f"--telnyx-private-key {path}: not an Ed25519 private key "
                "(PEM, or the base64 of its 32 raw bytes)"
            )
        configured = getattr(provider.config, "public_key", None) or []
        if provider.verifies and telnyx_ed25519.public_key_text(key) not in configured:
            raise SimulationError(
                f"--telnyx-private-key {path}: its public key is not in "
                f"providers.{provider.name}.public_key, so the receiver would refuse the stream"
            )
        return key


__all__ = ["TelnyxSimulation", "telnyx_event", "telnyx_public_key", "telnyx_request"]
