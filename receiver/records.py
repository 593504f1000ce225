"""The records the store keeps and hands out, and what callers hand it: plain data,
shared by the HTTP edge, the providers, the workers and every store backend."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, dataclass, field
from datetime import datetime

from receiver.core.ratelimit import RateLimitDecision
from receiver.core.reports import FinalOutcome, Outcome, Report
from receiver.core.status import FINAL, Status


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A webhook request as data, to send or as captured: ``path`` includes any query
    string.

    What the testing builders return (``receiver.testing.SignedRequest``), what
    ``receiver replay`` reads from a capture file and sends, and what a provider's
    ``resign`` signs afresh. A provider verifies and parses an ``InboundRequest``
    (``InboundRequest.captured`` makes one of this).
    """

    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"


@dataclass(frozen=True, slots=True, kw_only=True)
class RawRequest(WebhookRequest):
    """A received webhook request as the store keeps it (``path`` less any
    ``url_token``), for export, replay and re-processing: made by
    ``InboundRequest.stored``, read back by the store."""

    received_at: datetime
    id: str | None = None
    """The stored row's id; None for a request not stored yet."""


@dataclass(frozen=True, slots=True)
class CarriedRequest:
    """A stored raw request and the events of one message it carried (console)."""

    raw: RawRequest
    event_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StatusCount:
    """How many messages of ``provider`` are in ``status`` (None: no known status yet)."""

    provider: str
    status: Status | None
    count: int


@dataclass(frozen=True, slots=True)
class FailureReason:
    """How many messages of ``provider`` failed as ``status`` with ``error_code``
    (None: no code given); ``error_message`` is one of their provider's messages."""

    provider: str
    status: Status
    error_code: str | None
    error_message: str | None
    count: int


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: str
    provider: str
    provider_message_id: str | None
    to: str | None
    status: Status | None
    error_code: str | None
    error_message: str | None
    client_reference: str | None
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime | None
    report_count: int
    client_id: str | None = None
    """The staff member (token) that sent it; None for a message known only from reports."""
    sender: str | None = None
    segments: int | None = None
    country: str | None = None
    """ISO 3166-1 alpha-2 region of ``to`` (kept when the number is erased)."""
    network: str | None = None
    """``"MCC-MNC"`` when a report named it."""

    @property
    def final(self) -> bool:
        return self.status in FINAL


@dataclass(frozen=True, slots=True)
class EventRecord:
    event_id: str
    status: Status | None
    provider_status: str
    error_code: str | None
    error_message: str | None
    occurred_at: datetime
    received_at: datetime
    outcome: str
    deliveries: int
    reprocessed_at: datetime | None = None
    source: str = "webhook"
    """``webhook`` for a provider's report, ``outbound`` for our own send steps."""
    raw_deleted: bool = False
    """A provider's report whose stored request is gone (retention or erasure)."""


@dataclass(frozen=True, slots=True)
class StaffMember:
    id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None
    sessions_after: datetime | None = None
    """Console sessions that began before this are over (set by logout and passwd)."""


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Conditions of a message search; None means "any"."""

    provider: str | None = None
    provider_message_id: str | None = None
    to: str | None = None
    client_reference: str | None = None
    status: Status | None = None
    country: str | None = None
    """ISO 3166-1 alpha-2, or ``"unknown"``: no country (no number)."""
    network: str | None = None
    """``"MCC-MNC"``, or ``"unknown"``: no report named one."""
    since: datetime | None = None
    until: datetime | None = None
    overdue_before: Mapping[str, datetime] | None = None
    """Only overdue messages: per provider, a last change before this (README "Missing reports")."""


@dataclass(frozen=True, slots=True)
class Position:
    """Where a newest-first page ended: the last item's ``created_at`` and ``id``."""

    created_at: str
    id: str


@dataclass(slots=True)
class OutcomeCounter:
    """Accumulates one request's counts while its reports are applied."""

    counts: dict[str, int] = field(
        default_factory=lambda: {"applied": 0, "duplicates": 0, "superseded": 0}
    )
    finals: list[FinalOutcome] = field(default_factory=list)

    def add(self, kind: str) -> None:
        self.counts[kind] += 1

    def outcome(self) -> Outcome:
        return Outcome(received=sum(self.counts.values()), finals=tuple(self.finals), **self.counts)


@dataclass(frozen=True, slots=True)
class Reprocessed:
    """What re-running a stored request through the current parser did, per report."""

    reports: int
    applied: int = 0
    """New to the processed set, and it changed its message's status."""
    superseded: int = 0
    """New to the processed set, kept in the timeline; the status stood."""
    corrected: int = 0
    """Already processed but now read differently: the event was rewritten and its
    message recomputed from all of its events."""
    unchanged: int = 0
    """Already processed and read the same."""


@dataclass(frozen=True, slots=True)
class Template:
    """An approved template to send instead of a text body (providers that send only
    templates: FutureSMS, RelayOS). ``variables`` fill its placeholders by name."""

    id: str
    language: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"id": self.id, "language": self.language, "variables": dict(self.variables)},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Template:
        data = json.loads(text)
        return cls(data["id"], data.get("language"), dict(data.get("variables") or {}))


@dataclass(frozen=True, slots=True)
class NewSend:
    """A validated ``POST /v1/messages`` to commit with its outbox row (and key): a text
    ``body`` or a ``template``, never both."""

    client_id: str
    provider: str
    to: str
    body: str | None
    sender: str | None
    client_reference: str | None
    segments: int | None
    idempotency_key: str | None
    fingerprint: str | None
    key_expires_at: datetime | None
    now: datetime
    template: Template | None = None
    claim_token: str | None = None
    """The request's claim on its Idempotency-Key (``receiver.store.limits``), settled
    by the transaction that commits the send."""


@dataclass(frozen=True, slots=True)
class SendAnswer:
    """The answer to a send: the new one, or the one stored under its Idempotency-Key."""

    status_code: int
    body: str
    replayed: bool
    message_id: str | None


@dataclass(frozen=True, slots=True)
class HeldSend:
    """An outbox row held for a person (``receiver outbox held``)."""

    message_id: str
    provider: str
    attempts: int
    held_at: datetime
    reason: str | None


@dataclass(frozen=True, slots=True)
class SubscriberRoute:
    """A configured subscriber's filters as the writer routes by them (None: any)."""

    name: str
    providers: Sequence[str] | None
    statuses: Sequence[str] | None
    clients: Sequence[str] | None


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One change of a message's status or error (the change feed), with the message
    as the change left it."""

    cursor: int
    """Its position in commit order: ``GET /v1/changes?after=`` takes it."""
    change_id: str
    message_id: str
    seq: int
    """1, 2, 3, ... per message, without gaps."""
    previous_status: Status | None
    status: Status | None
    error_code: str | None
    error_message: str | None
    changed_at: datetime
    cause_source: str
    cause_event_id: str | None
    message: MessageRecord


@dataclass(frozen=True, slots=True)
class Delivery:
    """A change leased to a delivery worker for one subscriber."""

    subscriber: str
    change: ChangeRecord
    attempts: int
    """Including this one."""
    queued_at: datetime
    """When it was queued (at the change, or by a redelivery): the horizon counts from it."""


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """A delivery recorded as acknowledged (its subscriber answered 2xx)."""

    settled: bool
    """False: the worker's lease ran out and another may have it (nothing recorded)."""
    next: Delivery | None
    """The message's next change for the subscriber, if it was waiting for this one and
    is due: leased to the same worker by the same transaction, to be sent now."""


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """Where one change stands with one subscriber (console)."""

    subscriber: str
    cursor: int
    state: str
    """``pending``, ``sending``, ``delivered`` or ``dead``."""
    attempts: int
    last_error: str | None
    delivered_at: datetime | None
    next_attempt_at: datetime


@dataclass(frozen=True, slots=True)
class SubscriberHealth:
    """A subscriber's delivery state (``receiver subscribers list``, console, metrics)."""

    name: str
    disabled_at: datetime | None
    disabled_reason: str | None
    backlog: int
    """Deliveries pending or in flight."""
    oldest_pending: datetime | None
    """When the oldest of them was queued."""
    dead: int
    last_error: str | None
    last_error_at: datetime | None


RenderAnswer = Callable[[MessageRecord], tuple[int, str]]
"""Makes the (status code, JSON body) answer for a newly created message."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A claimed outbox row: what the worker needs to send (or reconcile) one message."""

    message_id: str
    provider: str
    to: str
    body: str | None
    """The text to send; None for a template send."""
    sender: str | None
    attempts: int
    """Including this one."""
    in_doubt: bool
    """An earlier attempt may have reached the provider: look it up before resending."""
    created_at: datetime
    last_error: str | None = None
    """Why the previous attempt did not finish it."""
    template: Template | None = None
    first_attempt_at: datetime | None = None
    """When the first attempt that may have reached the provider left (this one, if it
    is the first): a provider's idempotency key protects a resend only for its lifetime
    after that."""


@dataclass(frozen=True, slots=True)
class OverdueMessage:
    """A message whose final report is overdue, and what the reconciler did about it."""

    id: str
    provider: str
    provider_message_id: str | None
    to: str | None
    status: Status
    created_at: datetime
    updated_at: datetime
    """The last report or send step: overdue is counted from here."""
    lookups: int = 0
    last_outcome: str | None = None
    """The last lookup: ``pending`` (the provider says not final yet), ``not_found``,
    ``failed`` (no answer), ``no_lookup`` (the provider cannot be asked); None: none yet."""
    last_error: str | None = None
    last_lookup_at: datetime | None = None

    @property
    def why(self) -> str:
        """``no report``, ``lookup failed`` or ``looked up, still pending``."""
        if self.last_outcome == "failed":
            return "lookup failed"
        if self.last_outcome in ("pending", "not_found"):
            return "looked up, still pending"
        return "no report"


@dataclass(frozen=True, slots=True)
class Looked:
    """What one lookup of an overdue message found, to be stored: the provider's answer
    as a report (None: no such message, or no answer), the outcome for the console
    (``final``, ``pending``, ``not_found``, ``failed``), and when to ask again."""

    message_id: str
    report: Report | None
    outcome: str
    error: str | None
    next_at: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class ReconcileWindow:
    """Which overdue messages a reconcile pass looks at: ``created_at`` in [since,
    until), and (``due_only``) only those whose next lookup is due; by hand
    (``receiver reconcile``) every one is asked about again."""

    since: datetime | None = None
    until: datetime | None = None
    due_only: bool = True
    started: datetime | None = None
    """When the pass began: a message it claimed once is not claimed again in it."""


@dataclass(frozen=True, slots=True)
class OverdueCount:
    """How many messages of ``provider`` are overdue, the oldest last change, and why."""

    provider: str
    overdue: int
    oldest: datetime | None
    no_report: int
    lookup_failed: int
    still_pending: int


@dataclass(frozen=True, slots=True)
class Pruned:
    """Rows one retention pass removed (or, in a dry run, would remove)."""

    raw_requests: int = 0
    messages: int = 0
    events: int = 0
    """Timeline rows (the processed set) that went with their messages."""
    outbox: int = 0
    idempotency_keys: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True, slots=True)
class Erasure:
    """What ``erase_recipient`` changed; its audit row (``erasures``) says the same."""

    id: str
    messages: int
    """Messages whose number was blanked."""
    raw_requests: int
    """Stored webhook requests deleted."""


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """One request's claim on an Idempotency-Key of a client, until ``expires_at``."""

    client_id: str
    key: str
    token: str
    """The claiming request's own (random), so that only it settles the claim."""
    now: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Admitted:
    """A request's verdict on its rate and, when allowed, whether it holds its key."""

    decision: RateLimitDecision
    claimed: bool
