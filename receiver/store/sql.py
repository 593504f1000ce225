"""The store's methods, once, for every SQL backend.

``SqlStore`` runs the rules (``ingest``, ``outbox``, ``changes``, ``reconcile``,
``retention``) and the reads through four hooks a backend provides: ``_submit`` (a
unit of writes in the next group commit, resolved once committed), ``_query`` (rows of
a read), ``_write`` (one small statement, committed at once) and ``_stream`` (the rows of
a big read, in batches).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from receiver.core.delivery import (
    GROUP_KEYS,
    LATENCY_BOUNDS,
    Bucket,
    Cell,
    DeliveryCells,
    LatencyCell,
    spans,
)
from receiver.core.network import UNKNOWN
from receiver.core.ratelimit import Rate, RateLimitDecision
from receiver.core.reports import Outcome, Report
from receiver.core.status import Status
from receiver.errors import (
    Gone,
)
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
from receiver.store import changes, ingest, limits, outbox, reconcile, retention
from receiver.store.base import from_text, new_id, to_text
from receiver.store.rows import (
    change_record,
    message_record,
    optional_time,
    raw_request,
    staff_member,
)
from receiver.store.tx import SQLITE, Dialect, Row, Tx, Work

_FILTER_COLUMNS = {
    "provider": "provider = ?",
    "provider_message_id": "provider_message_id = ?",
    "to": "to_number = ?",
    "client_reference": "client_reference = ?",
    "status": "status = ?",
    "country": "country = ?",
    "network": "network = ?",
    "since": "created_at >= ?",
    "until": "created_at < ?",
}


_KEY_FILTERS = ("provider_message_id", "to", "client_reference")
"""Filters that find a few messages. With one of them the broad filters (provider,
status) are written ``+column = ?`` on SQLite, which no index can serve, so that the
planner (which has no statistics: we never ANALYZE) reads the few messages of one number
rather than walking every delivered message in ``messages_by_status`` looking for them:
1.9 s at 1,000,000 messages (docs/performance.md, "Store at scale"). PostgreSQL has no
unary plus on text, and autovacuum keeps its statistics: it chooses well unaided."""


_LATENCY_SUMS = tuple(f"sum(l{i})" for i in range(len(LATENCY_BOUNDS)))


_BROAD_FILTERS = ("provider", "status", "country", "network")


BATCH_SEPARATOR = ":"


_AFTER_SEPARATOR = chr(ord(BATCH_SEPARATOR) + 1)


_PROVIDER_ID_OR_BATCH = (
    "(provider_message_id = ? OR (provider_message_id >= ? AND provider_message_id < ?))"
)
"""A search by provider message id also finds the messages filed under ``ID:...``: Sinch
identifies a batch, and each of its messages is ``{batch_id}:{recipient}``, so the batch
id its send API answered finds every message of the batch (both terms read the index)."""


log = logging.getLogger("receiver.store")


def _delivery(subscriber: str, row: Row) -> Delivery:
    """A leased delivery from a ``changes`` row with the delivery's ``attempts`` and
    ``queued_at``."""
    return Delivery(subscriber, change_record(row), row["attempts"], from_text(row["queued_at"]))


class SqlStore(ABC):
    """``receiver.store.base.Store`` over the backend's four hooks."""

    def __init__(self) -> None:
        self._change_watchers: list[Callable[[], None]] = []
        self._acks: list[tuple[changes.Ack, asyncio.Future[Acknowledged]]] = []

    @abstractmethod
    async def open(self, *, ingest: bool = True) -> None:
        """Create or migrate the schema and connect; ``ingest``: start the writer too
        (a command that only reads or writes a little passes False)."""

    @abstractmethod
    async def close(self) -> None:
        """Finish what was submitted, then disconnect; safe to call twice."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless a report could be committed right now."""

    @abstractmethod
    async def _submit(self, work: Work, reports: int = 0) -> Any:
        """Run ``work`` in the next group commit; its result once committed."""

    @abstractmethod
    async def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of one read."""

    @abstractmethod
    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        """Run one statement and commit it; how many rows it changed."""

    @abstractmethod
    def _stream(self, sql: str, params: Sequence[Any], batch: int) -> AsyncIterator[Row]:
        """The rows of a big read, fetched ``batch`` at a time."""

    _dialect: Dialect

    async def _run(self, work: Work) -> Any:
        return await self._submit(work)

    async def ingest(self, provider: str, raw: RawRequest, reports: Sequence[Report]) -> Outcome:
        work = ingest.IngestRequest(provider, raw, reports)
        outcome: Outcome = await self._submit(work, len(reports))
        if outcome.applied:  # a report that changed nothing wrote no change
            self._changes_committed()
        return outcome

    async def reprocess(
        self, provider: str, raw: RawRequest, reports: Sequence[Report]
    ) -> Reprocessed:
        work = functools.partial(
            ingest.reprocess_request, provider=provider, raw=raw, reports=reports
        )
        result: Reprocessed = await self._submit(work, len(reports))
        self._changes_committed()
        return result

    async def iter_raw_requests(
        self,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        message_id: str | None = None,
    ) -> AsyncIterator[RawRequest]:
        """Stored raw requests, oldest first, streamed in batches (never all in memory).

        ``since`` is inclusive, ``until`` exclusive; ``message_id`` keeps the requests
        that brought a report of that message.
        """
        clauses: list[str] = []
        params: list[str] = []
        if provider is not None:
            clauses.append("provider = ?")
            params.append(provider)
        if since is not None:
            clauses.append("received_at >= ?")
            params.append(to_text(since))
        if until is not None:
            clauses.append("received_at < ?")
            params.append(to_text(until))
        if message_id is not None:
            clauses.append("id IN (SELECT request_id FROM events WHERE message_id = ?)")
            params.append(message_id)
        sql = "SELECT id, received_at, method, path, headers, body FROM raw_requests"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY received_at, id"
        async for row in self._stream(sql, params, 500):
            yield raw_request(row)

    async def _raw_requests_naming(self, number: str) -> list[str]:
        """Ids of stored requests whose body holds the number's digits (the database
        narrows by the digits; the pattern then refuses digits that are part of a
        longer number)."""
        pattern = retention.digits_pattern(number)
        digits = number.removeprefix("+").encode()
        where = self._dialect.bytes_hold("body", "?")
        sql = f"SELECT id, body FROM raw_requests WHERE {where}"  # noqa: S608 - fixed clause
        return [
            row["id"]
            async for row in self._stream(sql, (digits,), 100)
            if pattern.search(bytes(row["body"]))
        ]

    async def create_send(self, send: NewSend, render: RenderAnswer) -> SendAnswer:
        answer: SendAnswer = await self._run(
            functools.partial(outbox.create_send, send=send, render=render)
        )
        return answer

    async def take_rate(self, key: str, rate: Rate, now: int) -> RateLimitDecision:
        work = functools.partial(limits.take, key=key, rate=rate, now=now)
        decision: RateLimitDecision = await self._run(work)
        return decision

    async def admit(self, rate_key: str, rate: Rate, now: int, claim: KeyClaim | None) -> Admitted:
        work = functools.partial(limits.admit, rate_key=rate_key, rate=rate, now=now, claim=claim)
        admitted: Admitted = await self._run(work)
        return admitted

    async def release_claim(self, claim: KeyClaim) -> None:
        work = functools.partial(
            limits.settle_claim, client_id=claim.client_id, key=claim.key, token=claim.token
        )
        await self._run(work)

    async def prune_idempotency_keys(self, now: datetime) -> int:
        work = functools.partial(outbox.prune_keys, now=to_text(now))
        pruned: int = await self._run(work)
        return pruned

    async def claim_outbox(
        self, owner: str, now: datetime, lease_seconds: float, limit: int
    ) -> list[OutboxItem]:
        work = functools.partial(
            outbox.claim, owner=owner, now=now, lease_seconds=lease_seconds, limit=limit
        )
        items: list[OutboxItem] = await self._run(work)
        return items

    async def outbox_retry(
        self, item: OutboxItem, owner: str, at: datetime, error: str, in_doubt: bool
    ) -> bool:
        work = functools.partial(
            outbox.retry, item=item, owner=owner, at=at, error=error, in_doubt=in_doubt
        )
        return bool(await self._run(work))

    async def outbox_sent(
        self,
        item: OutboxItem,
        owner: str,
        provider_message_id: str | None,
        provider_status: str,
        now: datetime,
    ) -> bool:
        work = functools.partial(
            outbox.sent,
            item=item,
            owner=owner,
            provider_message_id=provider_message_id,
            provider_status=provider_status,
            now=now,
        )
        return bool(await self._run(work))

    async def outbox_failed(
        self,
        item: OutboxItem,
        owner: str,
        status: Status,
        error_code: str | None,
        error_message: str,
        now: datetime,
    ) -> bool:
        work = functools.partial(
            outbox.failed,
            item=item,
            owner=owner,
            status=status,
            error_code=error_code,
            error_message=error_message,
            now=now,
        )
        return bool(await self._run(work))

    async def outbox_hold(self, item: OutboxItem, owner: str, reason: str, now: datetime) -> bool:
        work = functools.partial(outbox.hold, item=item, owner=owner, reason=reason, now=now)
        return bool(await self._run(work))

    async def held_outbox(self) -> list[HeldSend]:
        held: list[HeldSend] = await self._run(outbox.held)
        return held

    async def release_held(self, message_id: str, resend: bool, reason: str, now: datetime) -> bool:
        work = functools.partial(
            outbox.release_held, message_id=message_id, resend=resend, reason=reason, now=now
        )
        return bool(await self._run(work))

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
        work = functools.partial(
            reconcile.claim,
            provider=provider,
            overdue_before=overdue_before,
            owner=owner,
            now=now,
            lease_seconds=lease_seconds,
            limit=limit,
            window=window,
        )
        claimed: list[OverdueMessage] = await self._run(work)
        return claimed

    async def record_lookups(
        self, provider: str, owner: str, looked: Sequence[Looked]
    ) -> list[str | None]:
        work = functools.partial(reconcile.record, provider=provider, owner=owner, looked=looked)
        merged: list[str | None] = await self._run(work)
        return merged

    async def release_overdue(
        self,
        message_id: str,
        owner: str,
        next_at: datetime,
        outcome: str | None = None,
        error: str | None = None,
    ) -> bool:
        work = functools.partial(
            reconcile.release,
            message_id=message_id,
            owner=owner,
            next_at=next_at,
            outcome=outcome,
            error=error,
        )
        return bool(await self._run(work))

    async def give_up_report(
        self,
        provider: str,
        message_id: str,
        owner: str,
        gave_up_before: datetime,
        reason: str,
        now: datetime,
    ) -> bool:
        work = functools.partial(
            reconcile.give_up,
            provider=provider,
            message_id=message_id,
            owner=owner,
            gave_up_before=gave_up_before,
            reason=reason,
            now=now,
        )
        return bool(await self._run(work))

    async def overdue_messages(
        self, provider: str, overdue_before: datetime, window: ReconcileWindow, limit: int
    ) -> list[OverdueMessage]:
        sql, params = reconcile.overdue_list_sql(
            self._dialect, provider, overdue_before, window, limit
        )
        return [reconcile.overdue_row(row) for row in await self._query(sql, params)]

    async def overdue_counts(
        self, overdue_before: Mapping[str, datetime], window: ReconcileWindow | None = None
    ) -> list[OverdueCount]:
        counts = []
        for provider, before in overdue_before.items():
            sql, params = reconcile.overdue_count_sql(
                self._dialect, provider, before, window or ReconcileWindow()
            )
            rows = await self._query(sql, params)
            counts.append(reconcile.overdue_count(provider, rows[0]))
        return counts

    async def select(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The rows of one read in portable SQL (``?`` placeholders), as dicts by column
        name: for tools and tests that need stored rows no other method returns."""
        return [dict(row) for row in await self._query(sql, params)]

    async def get_message(self, message_id: str) -> MessageRecord | None:
        rows = await self._query("SELECT * FROM messages WHERE id = ?", (message_id,))
        return message_record(rows[0]) if rows else None

    async def find_messages(
        self, where: MessageFilter, limit: int, after: Position | None
    ) -> list[MessageRecord]:
        clauses, params = [], []
        keyed = any(getattr(where, name) is not None for name in _KEY_FILTERS)
        for name, clause in _FILTER_COLUMNS.items():
            value = getattr(where, name)
            if value is None:
                continue
            if name == "provider_message_id":
                clauses.append(_PROVIDER_ID_OR_BATCH)
                params += [value, value + BATCH_SEPARATOR, value + _AFTER_SEPARATOR]
                continue
            if name in ("country", "network") and value == UNKNOWN:
                clauses.append(f"{name} IS NULL")
                continue
            unindexed = keyed and name in _BROAD_FILTERS and self._dialect is SQLITE
            clauses.append("+" + clause if unindexed else clause)
            params.append(to_text(value) if isinstance(value, datetime) else str(value))
        if after is not None:
            clauses.append("(created_at, id) < (?, ?)")
            params += [after.created_at, after.id]
        if where.overdue_before is not None:
            overdue, overdue_params = reconcile.overdue_filter_sql(where.overdue_before)
            clauses.append(overdue)
            params += overdue_params
        sql = "SELECT * FROM messages"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        rows = await self._query(sql, [*params, limit])
        return [message_record(row) for row in rows]

    async def message_events(self, message_id: str) -> list[EventRecord]:
        rows = await self._query(
            "SELECT * FROM events WHERE message_id = ? ORDER BY occurred_at, received_at, event_id",
            (message_id,),
        )
        return [
            EventRecord(
                event_id=row["event_id"],
                status=Status(row["status"]) if row["status"] else None,
                provider_status=row["provider_status"],
                error_code=row["error_code"],
                error_message=row["error_message"],
                occurred_at=from_text(row["occurred_at"]),
                received_at=from_text(row["received_at"]),
                outcome=row["outcome"],
                deliveries=row["deliveries"],
                reprocessed_at=from_text(row["reprocessed_at"]) if row["reprocessed_at"] else None,
                source=row["source"],
                raw_deleted=row["source"] == "webhook" and row["request_id"] is None,
            )
            for row in rows
        ]

    async def add_staff(self, name: str, role: str, token_hash: str) -> StaffMember:
        member = StaffMember(new_id("stf_"), name, role, datetime.now(UTC), None)
        await self._write(
            "INSERT INTO staff (id, name, role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)",
            (member.id, name, role, token_hash, to_text(member.created_at)),
        )
        return member

    async def list_staff(self) -> list[StaffMember]:
        rows = await self._query("SELECT * FROM staff ORDER BY revoked_at IS NOT NULL, name")
        return [staff_member(row) for row in rows]

    async def revoke_staff(self, name: str) -> bool:
        changed = await self._write(
            "UPDATE staff SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            (to_text(datetime.now(UTC)), name),
        )
        return changed > 0

    async def staff_by_token_hash(self, token_hash: str) -> StaffMember | None:
        rows = await self._query(
            "SELECT * FROM staff WHERE token_hash = ? AND revoked_at IS NULL", (token_hash,)
        )
        return staff_member(rows[0]) if rows else None

    async def staff_by_id(self, staff_id: str) -> StaffMember | None:
        rows = await self._query(
            "SELECT * FROM staff WHERE id = ? AND revoked_at IS NULL", (staff_id,)
        )
        return staff_member(rows[0]) if rows else None

    async def staff_password_hash(self, name: str) -> tuple[StaffMember, str | None] | None:
        rows = await self._query(
            "SELECT * FROM staff WHERE name = ? AND revoked_at IS NULL", (name,)
        )
        return (staff_member(rows[0]), rows[0]["password_hash"]) if rows else None

    async def set_staff_password(self, name: str, password_hash: str, now: datetime) -> bool:
        changed = await self._write(
            "UPDATE staff SET password_hash = ?, console_sessions_after = ?"
            " WHERE name = ? AND revoked_at IS NULL",
            (password_hash, to_text(now), name),
        )
        return changed > 0

    async def end_staff_sessions(self, staff_id: str, now: datetime) -> None:
        await self._write(
            "UPDATE staff SET console_sessions_after = ? WHERE id = ?", (to_text(now), staff_id)
        )

    async def raw_request_for_event(self, provider: str, event_id: str) -> RawRequest | None:
        """The stored request that carried event ``event_id`` of ``provider`` (reprocess)."""
        rows = await self._query(
            "SELECT r.id, r.received_at, r.method, r.path, r.headers, r.body, e.source"
            " FROM events e LEFT JOIN raw_requests r ON r.id = e.request_id"
            " WHERE e.provider = ? AND e.event_id = ?",
            (provider, event_id),
        )
        if not rows or rows[0]["source"] != "webhook":
            return None
        if rows[0]["id"] is None:
            raise Gone(
                f"the stored request of event {event_id!r} was deleted (retention or erasure)",
                code="RAW_REQUEST_DELETED",
            )
        return raw_request(rows[0])

    async def raw_requests_for_message(self, message_id: str) -> list[CarriedRequest]:
        """The stored requests that carried the message's events, oldest first (console)."""
        rows = await self._query(
            "SELECT r.id, r.received_at, r.method, r.path, r.headers, r.body, e.event_id"
            " FROM events e JOIN raw_requests r ON r.id = e.request_id"
            " WHERE e.message_id = ? ORDER BY r.received_at, r.id, e.event_id",
            (message_id,),
        )
        requests: dict[str, RawRequest] = {}
        event_ids: dict[str, list[str]] = {}
        for row in rows:
            if row["id"] not in requests:
                requests[row["id"]] = raw_request(row)
            event_ids.setdefault(row["id"], []).append(row["event_id"])
        return [CarriedRequest(raw, tuple(event_ids[key])) for key, raw in requests.items()]

    async def status_counts(self, since: datetime) -> list[StatusCount]:
        """Messages updated since ``since`` by provider and status (console overview).

        ``INDEXED BY`` (SQLite): without statistics the planner would rather walk another
        index in GROUP BY order over the whole table than read only the window's rows.
        """
        rows = await self._query(
            "SELECT provider, status, count(*) AS n FROM messages"  # noqa: S608 - fixed SQL
            + self._dialect.using("messages_by_updated")
            + " WHERE updated_at >= ?"
            " GROUP BY provider, status ORDER BY provider, status",
            (to_text(since),),
        )
        return [
            StatusCount(row["provider"], Status(row["status"]) if row["status"] else None, row["n"])
            for row in rows
        ]

    async def failure_reasons(self, since: datetime, limit: int) -> list[FailureReason]:
        """The most frequent (provider, failure status, error code) since ``since``."""
        rows = await self._query(
            "SELECT provider, status, error_code, max(error_message) AS error_message,"  # noqa: S608 - fixed SQL
            " count(*) AS n FROM messages"
            + self._dialect.using("messages_by_updated")
            + " WHERE updated_at >= ?"
            " AND status IN ('undelivered', 'expired', 'rejected', 'failed')"
            " GROUP BY provider, status, error_code"
            " ORDER BY n DESC, provider, status, error_code LIMIT ?",
            (to_text(since), limit),
        )
        return [
            FailureReason(
                provider=row["provider"],
                status=Status(row["status"]),
                error_code=row["error_code"],
                error_message=row["error_message"],
                count=row["n"],
            )
            for row in rows
        ]

    async def delivery_cells(
        self, since: datetime, until: datetime, group_by: Sequence[str], bucket: Bucket | None
    ) -> DeliveryCells:
        """The delivery aggregates of messages created in [since, until) (whole hours),
        summed in SQL by bucket and the ``group_by`` keys (and status)."""
        period = {None: "''", "1h": "period", "1d": "substr(period, 1, 10)"}[bucket]
        keys = ", ".join(name if name in group_by else "''" for name in GROUP_KEYS)
        sums = ", ".join(_LATENCY_SUMS)
        cells = DeliveryCells([], [])
        for span in spans(since, until, bucket):
            size = "daily" if span.daily else "hourly"
            window = (span.start, span.end)
            rows = await self._query(
                f"SELECT {period}, {keys}, status, sum(messages) FROM delivery_{size}"  # noqa: S608 - fixed names
                " WHERE period >= ? AND period < ? GROUP BY 1, 2, 3, 4, 5",
                window,
            )
            cells.statuses.extend(Cell(*row) for row in rows)
            rows = await self._query(
                f"SELECT {period}, {keys}, {sums} FROM latency_{size}"  # noqa: S608 - fixed names
                " WHERE period >= ? AND period < ? GROUP BY 1, 2, 3, 4",
                window,
            )
            cells.latencies.extend(
                LatencyCell(row[0], row[1], row[2], row[3], tuple(row[4:])) for row in rows
            )
        return cells

    async def prune_raw_requests(self, before: datetime, limit: int) -> int:
        work = functools.partial(retention.prune_raw_batch, before=before, limit=limit)
        deleted: int = await self._run(work)
        return deleted

    async def prune_messages(self, before: datetime, now: datetime, limit: int) -> Pruned:
        work = functools.partial(
            retention.prune_messages_batch, before=before, now=now, limit=limit
        )
        pruned: Pruned = await self._run(work)
        return pruned

    async def count_prunable(
        self, raw_before: datetime | None, messages_before: datetime | None, now: datetime
    ) -> Pruned:
        counts = {}
        for field, (sql, params) in retention.count_queries(
            raw_before, messages_before, now
        ).items():
            counts[field] = (await self._query(sql, params))[0][0]
        return Pruned(**counts)

    async def erase_recipient(self, number: str, requested_by: str, now: datetime) -> Erasure:
        """Three short steps, so ingest never waits behind a scan: blank the messages and
        delete the requests that carried their reports (writer), find the other stored
        requests that name the number (reader, WAL: beside the writer), delete those and
        record the audit row (writer). Interrupted, it can simply be run again."""
        work = functools.partial(retention.erase_messages, number=number, now=now)
        messages, linked = await self._run(work)
        naming = await self._raw_requests_naming(number)
        erasure_id = new_id("era_")

        async def finish(tx: Tx) -> int:
            deleted: int = linked + await retention.delete_raw_requests(tx, naming)
            await retention.record_erasure(tx, erasure_id, now, requested_by, messages, deleted)
            return deleted

        raw_requests: int = await self._run(finish)
        return Erasure(id=erasure_id, messages=messages, raw_requests=raw_requests)

    def watch_changes(self, wake: Callable[[], None]) -> None:
        self._change_watchers.append(wake)

    def _changes_committed(self) -> None:
        for wake in self._change_watchers:
            wake()

    async def sync_subscribers(self, routes: Sequence[SubscriberRoute]) -> None:
        await self._run(functools.partial(changes.sync_subscribers, routes=routes))

    async def changes_after(self, cursor: int, limit: int) -> list[ChangeRecord]:
        rows = await self._query(changes.CHANGES_AFTER, (cursor, limit))
        return [change_record(row) for row in rows]

    async def message_changes(self, message_id: str) -> list[ChangeRecord]:
        rows = await self._query(changes.MESSAGE_CHANGES, (message_id,))
        return [change_record(row) for row in rows]

    async def message_deliveries(self, message_id: str) -> list[DeliveryRecord]:
        rows = await self._query(changes.MESSAGE_DELIVERIES, (message_id,))
        return [
            DeliveryRecord(
                subscriber=row["subscriber"],
                cursor=row["change"],
                state=row["state"],
                attempts=row["attempts"],
                last_error=row["last_error"],
                delivered_at=optional_time(row["delivered_at"]),
                next_attempt_at=from_text(row["next_attempt_at"]),
            )
            for row in rows
        ]

    async def subscriber_health(self) -> list[SubscriberHealth]:
        rows = await self._query(changes.SUBSCRIBER_HEALTH)
        return [
            SubscriberHealth(
                name=row["name"],
                disabled_at=optional_time(row["disabled_at"]),
                disabled_reason=row["disabled_reason"],
                backlog=row["backlog"],
                oldest_pending=optional_time(row["oldest_pending"]),
                dead=row["dead"],
                last_error=row["last_error"],
                last_error_at=optional_time(row["last_error_at"]),
            )
            for row in rows
        ]

    async def claim_deliveries(
        self, subscriber: str, owner: str, now: datetime, lease_seconds: float, limit: int
    ) -> list[Delivery]:
        work = functools.partial(
            changes.claim_deliveries,
            subscriber=subscriber,
            owner=owner,
            now=now,
            lease_seconds=lease_seconds,
            limit=limit,
        )
        rows: list[sqlite3.Row] = await self._run(work)
        return await self._deliveries(subscriber, rows)

    async def deliveries_due(self, subscriber: str, now: datetime) -> bool:
        at = to_text(now)
        return bool(await self._query(changes.DUE, (subscriber, at, subscriber, at)))

    async def subscriber_heartbeat(
        self, subscriber: str, owner: str, until: datetime, lease_until: datetime
    ) -> None:
        work = functools.partial(
            changes.heartbeat, name=subscriber, owner=owner, until=until, lease_until=lease_until
        )
        await self._run(work)

    async def leased_deliveries(
        self, subscriber: str, owner: str, after: int, now: datetime
    ) -> list[Delivery]:
        rows = await self._query(changes.LEASED_TO, (subscriber, owner, after, to_text(now)))
        return await self._deliveries(subscriber, rows)

    async def passed_deliveries(
        self, subscriber: str, owner: str, upto: int, taken: Collection[int], now: datetime
    ) -> list[Delivery]:
        """Their cursors first, through the due index (every delivery in flight of the
        subscriber); the rows only of those not taken, which are rare."""
        leased = await self._query(changes.LEASED_UP_TO, (subscriber, owner, upto, to_text(now)))
        passed = [row[0] for row in leased if row[0] not in taken]
        rows = [
            row
            for cursor in passed
            for row in await self._query(changes.LEASED_ONE, (subscriber, cursor))
        ]
        return await self._deliveries(subscriber, rows)

    async def _deliveries(self, subscriber: str, rows: Iterable[Row]) -> list[Delivery]:
        """The rows as deliveries. One whose change cannot be read (a status this version
        does not know, written by a newer one during an upgrade; a damaged row) is
        dead-lettered with the reason: it neither stops the worker nor holds up the
        message's later changes, and ``redeliver --dead`` sends it again."""
        deliveries = []
        for row in rows:
            try:
                deliveries.append(_delivery(subscriber, row))
            except ValueError as exc:  # JSON, a status, a timestamp
                reason = f"cannot read change {row['change_id']}: {exc}"
                log.error("%s: dead-lettered", reason, extra={"subscriber": subscriber})
                await self._run(
                    functools.partial(
                        changes.dead_letter,
                        leased=(subscriber, row["id"]),
                        error=reason,
                        now=datetime.now(UTC),
                    )
                )
        return deliveries

    async def delivery_done(
        self, delivery: Delivery, owner: str, now: datetime, lease_seconds: float
    ) -> Acknowledged:
        """Acknowledgements of one event-loop iteration are one work unit: per delivery
        a unit of its own cost more than the update (docs/performance.md)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Acknowledged] = loop.create_future()
        if not self._acks:
            loop.call_soon(self._write_acks)
        lease_until = now + timedelta(seconds=lease_seconds)
        leased = (delivery.subscriber, delivery.change.cursor)
        self._acks.append(((leased, owner, now, lease_until), future))
        return await future

    def _write_acks(self) -> None:
        acks, self._acks = self._acks, []
        work = functools.partial(changes.delivered, acks=[ack for ack, _ in acks])
        written = asyncio.ensure_future(self._run(work))

        def settle(done: asyncio.Future[list[tuple[bool, sqlite3.Row | None]]]) -> None:
            for index, (((subscriber, _), *_), future) in enumerate(acks):
                if future.done():  # its caller went away
                    continue
                if done.cancelled():
                    future.cancel()
                elif (error := done.exception()) is not None:
                    future.set_exception(error)
                else:
                    settled, row = done.result()[index]
                    try:
                        following = None if row is None else _delivery(subscriber, row)
                    except ValueError:  # still leased to the worker: its next look finds it
                        following = None
                    future.set_result(Acknowledged(settled, following))

        written.add_done_callback(settle)

    async def delivery_failed(
        self, delivery: Delivery, owner: str, error: str, retry_at: datetime | None, now: datetime
    ) -> bool:
        work = functools.partial(
            changes.failed_attempt,
            leased=(delivery.subscriber, delivery.change.cursor),
            owner=owner,
            error=error,
            retry_at=retry_at,
            now=now,
        )
        return bool(await self._run(work))

    async def delivery_handed_back(self, delivery: Delivery, owner: str) -> bool:
        leased = (delivery.subscriber, delivery.change.cursor)
        return bool(
            await self._run(functools.partial(changes.hand_back, leased=leased, owner=owner))
        )

    async def disable_subscriber(self, name: str, reason: str, now: datetime) -> None:
        await self._run(functools.partial(changes.disable, name=name, reason=reason, now=now))

    async def redeliver(
        self, name: str, since: datetime | None, dead_only: bool, now: datetime
    ) -> int:
        work = functools.partial(
            changes.redeliver, name=name, since=since, dead_only=dead_only, now=now
        )
        queued: int = await self._run(work)
        self._changes_committed()
        return queued
