"""The normalized delivery report every provider parser produces."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from receiver.core.status import Status


@dataclass(frozen=True, slots=True)
class Report:
    """One delivery report, as the provider stated it and as we understood it.

    ``status`` is None when the provider's word maps to none of ours; the word is
    always kept in ``provider_status``. ``occurred_at`` is timezone-aware UTC.
    """

    event_id: str
    provider_message_id: str
    status: Status | None
    provider_status: str
    occurred_at: datetime
    to: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    client_reference: str | None = None
    message_reference: str | None = None
    """Our own message id, when the report echoes back the reference we sent with the
    message (FutureSMS ``client_order_id``, Smstools ``reference``): the report then
    completes that message even before we learned the provider's id for it."""
    network: str | None = None
    """The mobile network the report names, as ``"MCC-MNC"`` (``receiver.core.network``);
    None when it names none. Never guessed from the number."""
    hand_over: bool = False
    """Our own ``sent_to_provider`` step: the moment the provider took the message, from
    which report latency is counted (as from a ``sent`` report)."""


@dataclass(frozen=True, slots=True)
class FinalOutcome:
    """A report that made its message's status a final one (for the metrics):
    ``latency_seconds`` from the hand-over to a ``delivered`` report, when known."""

    status: Status
    country: str | None
    latency_seconds: float | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What committing one request's reports did (the 200 answer's counts)."""

    received: int = 0
    applied: int = 0
    duplicates: int = 0
    superseded: int = 0
    finals: tuple[FinalOutcome, ...] = field(default=(), compare=False)
    """The reports among them that set a final status, once committed."""


def derived_event_id(*parts: str | None) -> str:
    """A deterministic event id for a provider that sends none: the same report
    (same identifying fields) always gets the same id, so redeliveries are caught."""
    joined = "\x1f".join("" if part is None else part for part in parts)
    return "d_" + hashlib.sha256(joined.encode()).hexdigest()[:40]
