"""The store's one small interface and shared helpers (its records: ``receiver.records``).

Implementations: ``receiver.store.sqlite`` (embedded default). Every method that can
fail for reasons outside the request raises ``StoreUnavailable``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Protocol

from ulid import ULID

from receiver.core.delivery import Bucket, DeliveryCells
from receiver.core.ratelimit import Rate, RateLimitDecision
from receiver.core.reports import Outcome, Report
from receiver.core.status import Status
from receiver.records import (
    Acknowledged,
    Admitted,
    CarriedRequest,
    ChangeRecord,
    Delivery,
    DeliveryRecord,
    Erasure,
    EventRecord,
    FailureReason,
    HeldSend,
    KeyClaim,
    Looked,
    MessageFilter,
    MessageRecord,
    NewSend,
    OutboxItem,
    OverdueCount,
    OverdueMessage,
    Position,
    Pruned,
    RawRequest,
    ReconcileWindow,
    RenderAnswer,
    Reprocessed,
    SendAnswer,
    StaffMember,
    StatusCount,
    SubscriberHealth,
    SubscriberRoute,
)
from receiver.store.tx import Dialect

_SECTION = re.compile(r"^-- version: (\d+)(?: (sqlite|postgresql))?[ \t]*$", re.MULTILINE)


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


def migrations(dialect: Dialect) -> list[tuple[int, str]]:
    """The sections of ``schema.sql`` that ``dialect`` runs, as (version, SQL), in order:
    the shared ones and its own (``-- version: N`` and ``-- version: N {dialect}``)."""
    text = resources.files("receiver.store").joinpath("schema.sql").read_text("utf-8")
    parts = _SECTION.split(text)
    return [
        (int(parts[i]), parts[i + 2])
        for i in range(1, len(parts), 3)
        if parts[i + 1] in (None, dialect.name)
    ]


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

    async def take_rate(self, key: str, rate: Rate, now: int) -> RateLimitDecision:
        """Count one request of ``key`` at ``now`` (ns of the Unix epoch) if ``rate``
        allows it, in state every process on the database shares; the verdict."""

    async def admit(self, rate_key: str, rate: Rate, now: int, claim: KeyClaim | None) -> Admitted:
        """``take_rate``, and when allowed ``claim`` the request's Idempotency-Key in the
        same transaction (``claimed`` False: another request holds it)."""

    async def release_claim(self, claim: KeyClaim) -> None:
        """Give up ``claim`` (its request failed); nothing if it no longer holds it."""

    async def prune_idempotency_keys(self, now: datetime) -> int:
        """Delete expired Idempotency-Key answers (and claims); how many answers."""

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

    async def deliveries_due(self, subscriber: str, now: datetime) -> bool:
        """Whether ``subscriber`` may have a delivery to claim: one pending and due, or
        one whose lease ran out (a read: no commit; a claim finds which)."""

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

    async def passed_deliveries(
        self, subscriber: str, owner: str, upto: int, taken: Collection[int], now: datetime
    ) -> list[Delivery]:
        """Deliveries leased to ``owner`` at or before cursor ``upto`` that are not in
        ``taken`` (cursors): on PostgreSQL a change whose id was drawn before one already
        picked up can commit after it, behind ``leased_deliveries``' cursor (a read)."""

    async def delivery_done(
        self, delivery: Delivery, owner: str, now: datetime, lease_seconds: float
    ) -> Acknowledged:
        """The subscriber acknowledged it (2xx); the message's next change, if it was
        waiting for this one, comes back leased to ``owner`` for ``lease_seconds``."""

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
