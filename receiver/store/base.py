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
class RawRequest:
    """The request that carried reports, kept for export and replay."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
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
        """The delivery aggregates (contract section 13) of messages created in
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

    async def release_held(self, message_id: str, resend: bool, reason: str, now: datetime) -> bool:
        """Settle a held row: ``resend`` (a person checked that the provider never got it)
        queues it again, not in doubt; otherwise it fails (``given_up``) with ``reason``.
        False if the message has no held row."""
