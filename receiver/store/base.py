"""The store's one small interface, its record types and shared helpers.

Implementations: ``receiver.store.sqlite`` (embedded default). Every method that can
fail for reasons outside the request raises ``StoreUnavailable``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Protocol

from ulid import ULID

from receiver.core.delivery import Bucket, DeliveryCells
from receiver.core.reports import FinalOutcome, Outcome, Report
from receiver.core.status import FINAL, Status

_SECTION = re.compile(r"^-- version: (\d+)\s*$", re.MULTILINE)


def to_text(moment: datetime) -> str:
    """A UTC timestamp as fixed-width text (``2026-11-23T09:59:58.000000Z``), so that
    text order is time order."""
    # isoformat rather than strftime: the same text, a third cheaper (the writer calls
    # this several times per report; docs/performance.md).
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def from_text(text: str) -> datetime:
    """The inverse of ``to_text`` (``fromisoformat`` reads the ``Z`` as UTC, at a
    twentieth of the cost of ``strptime``)."""
    return datetime.fromisoformat(text)


def new_id(prefix: str) -> str:
    """A fresh time-ordered id such as ``msg_01M83W4W6P5BT4957GZMXWPSSY``."""
    return prefix + str(ULID())


def migrations() -> list[tuple[int, str]]:
    """The sections of ``schema.sql`` as (version, SQL), in order."""
    text = resources.files("receiver.store").joinpath("schema.sql").read_text("utf-8")
    parts = _SECTION.split(text)
    return [(int(parts[i]), parts[i + 1]) for i in range(1, len(parts), 2)]


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


class Store(Protocol):
    """What the HTTP edge and the CLI need from a store."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    async def ingest(self, provider: str, raw: RawRequest, reports: Sequence[Report]) -> Outcome:
        """Apply reports durably; return only once committed to disk."""

    async def get_message(self, message_id: str) -> MessageRecord | None: ...
    async def find_messages(
        self, where: MessageFilter, limit: int, after: Position | None
    ) -> list[MessageRecord]: ...
    async def message_events(self, message_id: str) -> list[EventRecord]: ...
    async def add_staff(self, name: str, role: str, token_hash: str) -> StaffMember: ...
    async def list_staff(self) -> list[StaffMember]: ...
    async def revoke_staff(self, name: str) -> bool: ...
    async def staff_by_token_hash(self, token_hash: str) -> StaffMember | None: ...
    async def staff_by_id(self, staff_id: str) -> StaffMember | None:
        """The active (not revoked) member with this id, or None."""

    async def staff_password_hash(self, name: str) -> tuple[StaffMember, str | None] | None:
        """The active member named ``name`` and their console password hash (None if
        no password was set), or None."""

    async def set_staff_password(self, name: str, password_hash: str, now: datetime) -> bool:
        """Set the active member's password hash and end their console sessions;
        False if there is no active member of that name."""

    async def end_staff_sessions(self, staff_id: str, now: datetime) -> None:
        """End every console session of the member that began before ``now``."""

    def iter_raw_requests(
        self,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        message_id: str | None = None,
    ) -> AsyncIterator[RawRequest]:
        """Stored raw requests, oldest first (``received_at``, id), streamed in batches."""
        ...

    async def raw_request_for_event(self, provider: str, event_id: str) -> RawRequest | None:
        """The stored request that carried event ``event_id`` of ``provider``, or None.
        Raises Gone (``RAW_REQUEST_DELETED``) when the event is known but its request
        was deleted by retention or erasure."""

    async def raw_requests_for_message(self, message_id: str) -> list[CarriedRequest]:
        """The stored requests that carried the message's events, oldest first, each with
        the ids of the message's events it carried (outbound events have none)."""

    async def status_counts(self, since: datetime) -> list[StatusCount]:
        """Messages updated (``updated_at``) at or after ``since``, counted by provider
        and current status."""

    async def failure_reasons(self, since: datetime, limit: int) -> list[FailureReason]:
        """Messages updated at or after ``since`` whose status is a failure, counted by
        provider, status and error code; the ``limit`` largest counts, largest first."""

    async def delivery_cells(
        self, since: datetime, until: datetime, group_by: Sequence[str], bucket: Bucket | None
    ) -> DeliveryCells:
        """The delivery aggregates (README "Delivery health") of messages created in
        [since, until) (whole hours), summed by bucket and the ``group_by`` keys: status
        counts and latency histograms."""

    async def reprocess(
        self, provider: str, raw: RawRequest, reports: Sequence[Report]
    ) -> Reprocessed:
        """Apply ``reports``, re-parsed from the stored request ``raw``, in one
        transaction: new event ids as on ingest, known ones rewritten if they differ."""

    async def create_send(self, send: NewSend, render: RenderAnswer) -> SendAnswer:
        """Commit the message (``queued``), its outbox row and the Idempotency-Key's
        answer in one transaction; or the stored answer for the same key and request.
        Raises IdempotencyKeyReused (same key, other request) and ClientReferenceTaken."""

    async def prune_idempotency_keys(self, now: datetime) -> int:
        """Delete expired Idempotency-Key answers; how many."""

    async def claim_outbox(
        self, owner: str, now: datetime, lease_seconds: float, limit: int
    ) -> list[OutboxItem]:
        """Lease up to ``limit`` due outbox rows to ``owner`` (safe with several
        workers). A row whose lease ran out is claimed again, marked in doubt."""

    async def outbox_retry(
        self, item: OutboxItem, owner: str, at: datetime, error: str, in_doubt: bool
    ) -> bool:
        """Give the row back for another attempt at ``at``; ``in_doubt`` if this one may
        have reached the provider (it stays in doubt). False if the lease was lost."""

    async def outbox_sent(
        self,
        item: OutboxItem,
        owner: str,
        provider_message_id: str | None,
        provider_status: str,
        now: datetime,
    ) -> bool:
        """The provider has the message: record its id (merging a message its reports
        created first), an ``outbound`` timeline event, and finish the row. With
        ``provider_message_id`` None the provider took it but did not say its id (a
        FutureSMS CONFLICT): a report naming our reference completes the record."""

    async def outbox_failed(
        self,
        item: OutboxItem,
        owner: str,
        status: Status,
        error_code: str | None,
        error_message: str,
        now: datetime,
    ) -> bool:
        """The message will not be sent (``rejected`` by the provider, or ``failed``
        when given up): an ``outbound`` timeline event with that status; finish the row."""

    async def prune_raw_requests(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` of the oldest raw requests received before ``before``,
        in one short transaction; their events stay (they are the processed set) without
        a request. How many were deleted."""

    async def prune_messages(self, before: datetime, now: datetime, limit: int) -> Pruned:
        """Delete up to ``limit`` messages last changed (``updated_at``) before ``before``
        with their events, outbox rows and Idempotency-Key answers, in one short
        transaction. A message whose outbox row is not done, or whose key has not expired
        at ``now``, is kept."""

    async def count_prunable(
        self, raw_before: datetime | None, messages_before: datetime | None, now: datetime
    ) -> Pruned:
        """What ``prune_raw_requests`` and ``prune_messages`` would delete, by the same
        rules, without deleting anything (None: that kind is kept forever)."""

    async def erase_recipient(self, number: str, requested_by: str, now: datetime) -> Erasure:
        """Erase the E.164 ``number``: blank it (pinned, so no later report brings it
        back) and the outbox bodies of every message to it, delete the stored requests
        that carried their reports or name the number, and record an audit row without
        the number. Statuses, counts and timelines stay. Running it again changes no
        message data (it records another audit row)."""

    async def outbox_hold(self, item: OutboxItem, owner: str, reason: str, now: datetime) -> bool:
        """An attempt may have reached the provider and nothing can settle it (no lookup,
        an idempotency key past its lifetime): hold the row for a person, and put an
        ``outbound`` event with status ``unknown`` in the timeline. False if the lease
        was lost."""

    async def held_outbox(self) -> list[HeldSend]:
        """The rows held for a person, oldest first."""

    async def claim_overdue(
        self,
        provider: str,
        overdue_before: datetime,
        owner: str,
        now: datetime,
        lease_seconds: float,
        limit: int,
        window: ReconcileWindow,
    ) -> list[OverdueMessage]:
        """Lease up to ``limit`` overdue messages of ``provider``, oldest change first
        (receiver.store.reconcile)."""

    async def record_lookups(
        self, provider: str, owner: str, looked: Sequence[Looked]
    ) -> list[str | None]:
        """In one transaction, for each lookup: merge its report (``source = 'lookup'``),
        count it, schedule the next; each report's outcome (``applied``,
        ``superseded``, ``duplicates``; None: no report), ``lost`` if the lease is gone."""

    async def release_overdue(
        self,
        message_id: str,
        owner: str,
        next_at: datetime,
        outcome: str | None = None,
        error: str | None = None,
    ) -> bool:
        """Hand a leased overdue message back, due at ``next_at``, no lookup counted."""

    async def give_up_report(
        self,
        provider: str,
        message_id: str,
        owner: str,
        gave_up_before: datetime,
        reason: str,
        now: datetime,
    ) -> bool:
        """Record our verdict (unknown, ``NO_FINAL_REPORT``); False if it no longer applies."""

    async def overdue_messages(
        self, provider: str, overdue_before: datetime, window: ReconcileWindow, limit: int
    ) -> list[OverdueMessage]:
        """The overdue messages of ``provider`` created in ``window``, oldest change first."""

    async def overdue_counts(
        self, overdue_before: Mapping[str, datetime], window: ReconcileWindow | None = None
    ) -> list[OverdueCount]:
        """Per provider: how many messages (created in ``window``) are overdue, the
        oldest, and why."""

    async def release_held(self, message_id: str, resend: bool, reason: str, now: datetime) -> bool:
        """Settle a held row: ``resend`` (a person checked that the provider never got it)
        queues it again, not in doubt; otherwise it fails (``given_up``) with ``reason``.
        False if the message has no held row."""

    # The status change feed (README "Status change feed").

    async def sync_subscribers(self, routes: Sequence[SubscriberRoute]) -> None:
        """Record the configured subscribers' filters, which route every later change."""

    async def changes_after(self, cursor: int, limit: int) -> list[ChangeRecord]:
        """Up to ``limit`` changes after ``cursor``, in commit order."""

    async def message_changes(self, message_id: str) -> list[ChangeRecord]:
        """The changes of one message, by ``seq``."""

    async def message_deliveries(self, message_id: str) -> list[DeliveryRecord]:
        """Where each change of one message stands with each subscriber."""

    async def subscriber_health(self) -> list[SubscriberHealth]:
        """Every configured subscriber's backlog, dead letters and last error."""

    async def claim_deliveries(
        self, subscriber: str, owner: str, now: datetime, lease_seconds: float, limit: int
    ) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries of ``subscriber``, each message's in
        ``seq`` order (one at a time per message)."""

    async def subscriber_heartbeat(
        self, subscriber: str, owner: str, until: datetime, lease_until: datetime
    ) -> None:
        """``owner`` takes the subscriber's new changes as they are written (leased until
        ``lease_until``) while it beats again before ``until``."""

    async def leased_deliveries(
        self, subscriber: str, owner: str, after: int, now: datetime
    ) -> list[Delivery]:
        """Deliveries leased to ``owner`` as their changes were written, after cursor
        ``after`` (a read: no commit)."""

    async def delivery_done(self, delivery: Delivery, owner: str, now: datetime) -> bool:
        """The subscriber acknowledged it (2xx). False if the lease was lost."""

    async def delivery_failed(
        self, delivery: Delivery, owner: str, error: str, retry_at: datetime | None, now: datetime
    ) -> bool:
        """An attempt failed: again at ``retry_at``, or dead-lettered (None)."""

    async def delivery_handed_back(self, delivery: Delivery, owner: str) -> bool:
        """The worker is stopping: due again at once, the attempt not counted."""

    async def disable_subscriber(self, name: str, reason: str, now: datetime) -> None:
        """Stop delivering to ``name`` until it is redelivered (it answered 410 Gone)."""

    async def redeliver(
        self, name: str, since: datetime | None, dead_only: bool, now: datetime
    ) -> int:
        """Queue changes for ``name`` again (``store.changes.redeliver``); how many."""

    def watch_changes(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` on the event loop after a commit that may have written changes."""
