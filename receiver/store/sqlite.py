"""The embedded SQLite store, with a durable group commit on the ingest path.

Theory of operation
-------------------
Ingest: requests verify and parse on the event loop, then ``ingest`` puts their
reports on a queue and awaits a future. One writer thread owns a stdlib ``sqlite3``
connection (WAL, ``synchronous=FULL``). It takes everything waiting, applies it in
one transaction (a savepoint per request, so one request's bug cannot spoil the
others), commits once, and only then resolves each request's future: a 200 always
means "on disk". If the transaction fails, it is rolled back whole and every
request in it gets ``StoreUnavailable`` (503, the provider retries).

Reads and the low-volume staff writes go through one ``aiosqlite`` connection;
WAL lets them run beside the writer.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from receiver.core.delivery import (
    GROUP_KEYS,
    LATENCY_BOUNDS,
    Bucket,
    Cell,
    DeliveryCells,
    LatencyCell,
    latency_bucket,
    spans,
)
from receiver.core.network import UNKNOWN, country_of
from receiver.core.reports import FinalOutcome, Outcome, Report
from receiver.core.status import MessageState, Status, merge
from receiver.errors import (
    ClientReferenceTaken,
    Conflict,
    Gone,
    IdempotencyKeyReused,
    ReceiverError,
    StoreUnavailable,
)
from receiver.records import (
    CarriedRequest,
    ChangeRecord,
    Delivery,
    DeliveryRecord,
    Erasure,
    EventRecord,
    FailureReason,
    HeldSend,
    Looked,
    MessageFilter,
    MessageRecord,
    NewSend,
    OutboxItem,
    OutcomeCounter,
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
    Template,
)
from receiver.store import changes, reconcile, retention
from receiver.store.base import from_text, migrations, new_id, to_text
from receiver.store.files import (
    WAL_KEEP_BYTES,
    ShmGuard,
    WalWatch,
    check_free_space,
    check_writable,
    file_size,
    wal_path,
)
from receiver.store.tx import SQLITE

log = logging.getLogger("receiver.store")

MAX_BATCH_REQUESTS = 512
BUSY_TIMEOUT_MS = 5000
PROBE_FRESH_SECONDS = 1.0
"""A commit this recent proves readiness without a probe commit of its own."""
PROBE_WAIT_SECONDS = 2.0
_UNSTORED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})

CommitObserver = Callable[[int, float], None]
"""Called by the writer after each commit with (reports in the batch, seconds)."""


Work = Callable[[sqlite3.Connection], Any]
"""A unit of writes, run by the writer inside the open transaction (in a savepoint)."""


@dataclass(slots=True)
class _Job:
    work: Work
    reports: int
    """Reports this job applies (for the batch-size metric)."""
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


_STOP = object()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    # The savepoint around each request of a group commit journals the pages it
    # changes; in a temporary file that was 10x the I/O of the commit itself (34 write
    # calls and 72 KB per report; docs/performance.md). In memory it is a few pages.
    conn.execute("PRAGMA temp_store = MEMORY")
    # Once a checkpoint has finished, the WAL restarts and is cut back to this size, so
    # a WAL that grew while checkpoints could not finish does not stay big (files.py).
    conn.execute(f"PRAGMA journal_size_limit = {WAL_KEEP_BYTES}")
    return conn


def _schema_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _statements(sql: str) -> list[str]:
    """Split a schema section into complete SQL statements."""
    statements, pending = [], ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every schema.sql section newer than the database; return the version.

    The version is read under the write lock, so two processes opening a fresh
    file at once cannot both apply the same section.
    """
    sections = migrations(SQLITE)
    newest = sections[-1][0]
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = _schema_version(conn)
        if current > newest:
            raise StoreUnavailable(
                f"database schema version {current} is newer than this receiver ({newest})"
            )
        for version, sql in sections:
            if version > current:
                for statement in _statements(sql):
                    conn.execute(statement)
                if version == COUNTRY_VERSION:
                    _backfill_countries(conn)
                conn.execute("DELETE FROM schema_version")
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                current = version
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return current


COUNTRY_VERSION = 11
"""The schema section that added ``messages.country`` (renumber with it)."""


def _backfill_countries(conn: sqlite3.Connection) -> None:
    """Set the country of the messages stored before ``country`` existed, in the
    migration's transaction (the aggregates' triggers count them in their country).
    libphonenumber is Python, so SQL cannot do it; about 20 us a message."""
    rows = conn.execute(
        "SELECT id, to_number FROM messages WHERE to_number IS NOT NULL AND country IS NULL"
    ).fetchall()
    updates = [(country, row[0]) for row in rows if (country := country_of(row[1]))]
    conn.executemany("UPDATE messages SET country = ? WHERE id = ?", updates)


def _latency(state: MessageState) -> int | None:
    """The latency bucket of a delivered message whose hand-over is known, else None."""
    if state.status is not Status.DELIVERED or state.sent_at is None:
        return None
    assert state.status_changed_at is not None  # set with every status
    return latency_bucket((state.status_changed_at - state.sent_at).total_seconds())


def _state(row: sqlite3.Row | None) -> MessageState:
    if row is None:
        return MessageState()
    return MessageState(
        status=Status(row["status"]) if row["status"] else None,
        status_event_id=row["status_event_id"],
        status_changed_at=from_text(row["status_changed_at"]) if row["status_changed_at"] else None,
        error_code=row["error_code"],
        error_message=row["error_message"],
        to=row["to_number"],
        client_reference=row["client_reference"],
        network=row["network"],
        sent_at=from_text(row["sent_at"]) if row["sent_at"] else None,
    )


def _country(row: sqlite3.Row | None, state: MessageState) -> str | None:
    """The destination country of ``state``'s number; an erased message keeps the one
    it had (a country is not personal data, and the delivery figures keep counting it)."""
    if row is not None and (state.to is None or state.to == row["to_number"]):
        kept: str | None = row["country"]  # unchanged: no need to parse the number again
        return kept
    return country_of(state.to)


def _apply(
    conn: sqlite3.Connection, provider: str, raw: RawRequest, reports: Sequence[Report]
) -> Outcome:
    """Apply one request's reports inside the open transaction."""
    counter = OutcomeCounter()
    received = to_text(raw.received_at)
    request_id: str | None = None
    for report in reports:
        redelivered = conn.execute(
            "UPDATE events SET deliveries = deliveries + 1, last_received_at = ?"
            " WHERE provider = ? AND event_id = ?",
            (received, provider, report.event_id),
        ).rowcount
        if redelivered:
            counter.add("duplicates")
            continue
        if request_id is None:
            request_id = _insert_raw_request(conn, provider, raw)
        counter.add(
            _insert_event(conn, provider, request_id, received, report, finals=counter.finals)
        )
    return counter.outcome()


def _reprocess(
    conn: sqlite3.Connection, provider: str, raw: RawRequest, reports: Sequence[Report]
) -> Reprocessed:
    """Apply one stored request's reports, parsed again, inside the open transaction."""
    if raw.id is None:
        raise ValueError("only a stored request can be reprocessed")
    counts: Counter[str] = Counter()
    now = to_text(datetime.now(UTC))
    for report in reports:
        row = conn.execute(
            "SELECT e.*, m.provider_message_id FROM events e JOIN messages m"
            " ON m.id = e.message_id WHERE e.provider = ? AND e.event_id = ?",
            (provider, report.event_id),
        ).fetchone()
        if row is None:
            received = to_text(raw.received_at)
            counts[_insert_event(conn, provider, raw.id, received, report, cause="reprocess")] += 1
        elif _event_fields(report) == tuple(row[name] for name in _EVENT_FIELDS):
            counts["unchanged"] += 1
        else:
            _correct_event(conn, provider, row["message_id"], report, now)
            counts["corrected"] += 1
    return Reprocessed(reports=len(reports), **counts)


_EVENT_FIELDS = (
    "provider_message_id",
    "status",
    "provider_status",
    "error_code",
    "error_message",
    "occurred_at",
)


def _event_fields(report: Report) -> tuple[str | None, ...]:
    """``report`` as the _EVENT_FIELDS of its stored event row."""
    return (
        report.provider_message_id,
        report.status,
        report.provider_status,
        report.error_code,
        report.error_message,
        to_text(report.occurred_at),
    )


def _insert_raw_request(conn: sqlite3.Connection, provider: str, raw: RawRequest) -> str:
    request_id = new_id("req_")
    headers = {k: v for k, v in raw.headers.items() if k not in _UNSTORED_HEADERS}
    conn.execute(
        "INSERT INTO raw_requests (id, provider, received_at, method, path, headers, body)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            request_id,
            provider,
            to_text(raw.received_at),
            raw.method,
            raw.path,
            json.dumps(headers),
            raw.body,
        ),
    )
    return request_id


_MERGE_FIELDS = (
    "SELECT id, provider_message_id, status, status_event_id, status_changed_at, error_code,"
    " error_message, to_number, client_reference, client_id, erased_at, country, network,"
    " sent_at, latency_bucket FROM messages"
)


def _find_message(conn: sqlite3.Connection, provider: str, report: Report) -> sqlite3.Row | None:
    """The id and merge fields of the message ``report`` is about, if known: the one with
    its provider message id, else the one its ``message_reference`` names (ours, sent
    through this provider, whose id at the provider we have not learned yet)."""
    row: sqlite3.Row | None = conn.execute(
        _MERGE_FIELDS + " WHERE provider = ? AND provider_message_id = ?",
        (provider, report.provider_message_id),
    ).fetchone()
    if row is None and report.message_reference is not None:
        row = conn.execute(
            _MERGE_FIELDS + " WHERE id = ? AND provider = ? AND provider_message_id IS NULL",
            (report.message_reference, provider),
        ).fetchone()
    return row


SETTLED_BY_REPORT = "a report from the provider names this message: the provider has it"


def _settle_doubt(conn: sqlite3.Connection, message_id: str, now: str) -> None:
    """A report filed under ``message_id`` by our reference proves an attempt reached the
    provider: an outbox row held for a person, or waiting in doubt, is done (its next
    attempt would hold it, and a person's ``resend`` would send it twice)."""
    conn.execute(
        "UPDATE outbox SET state = 'done', body = NULL, template = NULL, last_error = ?,"
        " updated_at = ? WHERE message_id = ?"
        " AND (state = 'held' OR (state = 'pending' AND in_doubt = 1))",
        (SETTLED_BY_REPORT, now, message_id),
    )


def _message_row(
    conn: sqlite3.Connection, provider: str, report: Report, now: str
) -> tuple[str, sqlite3.Row | None]:
    """The id and merge fields of the message ``report`` is about, created if new (and
    told its provider message id if it was found by our reference)."""
    row = _find_message(conn, provider, report)
    if row is not None:
        if row["provider_message_id"] is None:
            conn.execute(
                "UPDATE messages SET provider_message_id = ? WHERE id = ?",
                (report.provider_message_id, row["id"]),
            )
            _settle_doubt(conn, row["id"], now)
        return row["id"], row
    message_id = new_id("msg_")
    conn.execute(
        "INSERT INTO messages (id, provider, provider_message_id, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (message_id, provider, report.provider_message_id, now, now),
    )
    return message_id, None


def _save_state(
    conn: sqlite3.Connection,
    message_id: str,
    state: MessageState,
    now: str,
    report_count: int | None = None,
) -> None:
    """Write the merge rule's fields; ``report_count`` None counts one more report."""
    conn.execute(
        "UPDATE messages SET status = ?, status_event_id = ?, status_changed_at = ?,"
        " error_code = ?, error_message = ?, to_number = ?, client_reference = ?,"
        " network = ?, sent_at = ?, latency_bucket = ?, country = coalesce(?, country),"
        " report_count = COALESCE(?, report_count + 1), updated_at = ? WHERE id = ?",
        (
            state.status,
            state.status_event_id,
            to_text(state.status_changed_at) if state.status_changed_at else None,
            state.error_code,
            state.error_message,
            state.to,
            state.client_reference,
            state.network,
            to_text(state.sent_at) if state.sent_at else None,
            _latency(state),
            country_of(state.to),
            report_count,
            now,
            message_id,
        ),
    )


_STATE_COLUMNS = (
    "provider_message_id",  # learned here when the report was filed by our reference
    "status",
    "status_event_id",
    "status_changed_at",
    "error_code",
    "error_message",
    "to_number",
    "client_reference",
    "country",
    "network",
    "sent_at",
    "latency_bucket",
)


def _merge_report(
    conn: sqlite3.Connection,
    provider: str,
    report: Report,
    now: str,
    source: str = "webhook",
    finals: list[FinalOutcome] | None = None,
) -> tuple[str, bool]:
    """Merge a report into its message, created if new: (message id, applied). A
    change of the status or error is written to the change feed with ``source``; a
    final status it sets is added to ``finals`` (the delivery metrics).

    One statement for the message: an INSERT with its state when new, else an UPDATE
    of the columns that changed. Setting an unchanged column still rewrites every index
    that holds it (docs/performance.md)."""
    row = _find_message(conn, provider, report)
    decision = merge(_state(row), report)
    state = _pinned(row, decision.state)
    before = changes.tracked(row)
    cause = changes.Cause(source, report.event_id)
    feed_changed = (state.status, state.error_code, state.error_message) != before
    country = _country(row, state)
    if finals is not None and decision.applied and state.final:
        assert state.status is not None and state.status_changed_at is not None  # final
        latency = None
        if state.status is Status.DELIVERED and state.sent_at is not None:
            latency = max(0.0, (state.status_changed_at - state.sent_at).total_seconds())
        finals.append(FinalOutcome(state.status, country, latency))
    values = (
        report.provider_message_id,
        state.status,
        state.status_event_id,
        to_text(state.status_changed_at) if state.status_changed_at else None,
        state.error_code,
        state.error_message,
        state.to,
        state.client_reference,
        country,
        state.network,
        to_text(state.sent_at) if state.sent_at else None,
        _latency(state),
    )
    if row is None:
        message_id = new_id("msg_")
        conn.execute(
            "INSERT INTO messages (id, provider, provider_message_id, status, status_event_id,"
            " status_changed_at, error_code, error_message, to_number, client_reference,"
            " country, network, sent_at, latency_bucket, report_count, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
            (message_id, provider, *values, now, now),
        )
        if feed_changed:
            changes.record_change(conn, message_id, before, cause, now)
        return message_id, decision.applied
    message_id = row["id"]
    if row["provider_message_id"] is None:  # found by our reference: the provider has it
        _settle_doubt(conn, message_id, now)
    changed = [(c, v) for c, v in zip(_STATE_COLUMNS, values, strict=True) if row[c] != v]
    sets = "".join(f"{column} = ?, " for column, _ in changed)
    conn.execute(
        f"UPDATE messages SET {sets}report_count = report_count + 1, updated_at = ?"  # noqa: S608 - fixed column names
        " WHERE id = ?",
        (*(value for _, value in changed), now, message_id),
    )
    if feed_changed:
        changes.record_change(conn, message_id, before, cause, now)
    return message_id, decision.applied


def _insert_event(
    conn: sqlite3.Connection,
    provider: str,
    request_id: str | None,
    received: str,
    report: Report,
    source: str = "webhook",
    cause: str | None = None,
    finals: list[FinalOutcome] | None = None,
) -> str:
    """Merge a report new to the processed set into its message; its outcome (and, in
    ``finals``, the final status it set). A report the reconciler looked up (``source =
    'lookup'``) has no raw request. ``cause`` is the change feed's cause where it is not
    ``source`` (``reprocess`` when an admin re-ran it)."""
    message_id, applied = _merge_report(conn, provider, report, received, cause or source, finals)
    outcome = "applied" if applied else "superseded"
    conn.execute(
        "INSERT INTO events (provider, event_id, message_id, request_id, source, status,"
        " provider_status, error_code, error_message, occurred_at, received_at,"
        " last_received_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            provider,
            report.event_id,
            message_id,
            request_id,
            source,
            report.status,
            report.provider_status,
            report.error_code,
            report.error_message,
            to_text(report.occurred_at),
            received,
            received,
            outcome,
        ),
    )
    return outcome


def _correct_event(
    conn: sqlite3.Connection, provider: str, old_message_id: str, report: Report, now: str
) -> None:
    """Rewrite a processed event as ``report`` now reads, then recompute its message
    (and the one it left, if the report now names another message) from all events."""
    message_id, _ = _message_row(conn, provider, report, now)
    conn.execute(
        "UPDATE events SET message_id = ?, provider_status = ?, status = ?, error_code = ?,"
        " error_message = ?, occurred_at = ?, reprocessed_at = ?"
        " WHERE provider = ? AND event_id = ?",
        (
            message_id,
            report.provider_status,
            report.status,
            report.error_code,
            report.error_message,
            to_text(report.occurred_at),
            now,
            provider,
            report.event_id,
        ),
    )
    cause = changes.Cause("reprocess", report.event_id)
    if old_message_id != message_id:
        _recompute(conn, old_message_id, now, cause=cause)
    state = _recompute(conn, message_id, now, also=report, cause=cause)
    _settle_outcome(conn, provider, report.event_id, state)


_RECEIVER_CAUSE = changes.Cause("receiver", None)


def _recompute(
    conn: sqlite3.Connection,
    message_id: str,
    now: str,
    also: Report | None = None,
    cause: changes.Cause = _RECEIVER_CAUSE,
) -> MessageState:
    """Fold the merge rule over every event of a message (the record depends only on
    the set of reports). ``to`` and ``client_reference`` are not kept per event: the
    message keeps its own, and ``also`` (a report among them) may add a smaller one.
    A change of the status or error goes to the change feed with ``cause``."""
    kept = conn.execute(
        "SELECT to_number, client_reference, client_id, erased_at, network, status,"
        " error_code, error_message FROM messages WHERE id = ?",
        (message_id,),
    ).fetchone()
    state = MessageState(
        to=kept["to_number"], client_reference=kept["client_reference"], network=kept["network"]
    )
    events = conn.execute("SELECT * FROM events WHERE message_id = ?", (message_id,)).fetchall()
    for event in events:
        state = merge(state, _report(event)).state
    if also is not None:  # already folded in: merging it again only adds to/reference
        state = merge(state, also).state
    state = _pinned(kept, state)
    reports = sum(event["source"] in _REPORT_SOURCES for event in events)
    _save_state(conn, message_id, state, now, reports)
    changes.record_change(conn, message_id, changes.tracked(kept), cause, now)
    return state


_REPORT_SOURCES = frozenset({"webhook", "lookup"})
"""Events that are the provider's word (``report_count``): webhooks and lookups."""


def _pinned(row: sqlite3.Row | None, state: MessageState) -> MessageState:
    """A message we sent keeps the number and reference its client gave, whatever
    references the provider's reports echo back; an erased message keeps no number."""
    if row is None:
        return state
    if row["client_id"] is not None:
        state = replace(state, to=row["to_number"], client_reference=row["client_reference"])
    return replace(state, to=None) if row["erased_at"] is not None else state


def _settle_outcome(
    conn: sqlite3.Connection, provider: str, event_id: str, state: MessageState
) -> None:
    """Mark a rewritten or outbound event applied if it now sets the status."""
    outcome = "applied" if state.status_event_id == event_id else "superseded"
    conn.execute(
        "UPDATE events SET outcome = ? WHERE provider = ? AND event_id = ?",
        (outcome, provider, event_id),
    )


HAND_OVER_STEP = ":sent_to_provider"
"""The event id suffix of our own step "the provider's API took it" (``_sent``)."""


def _report(event: sqlite3.Row) -> Report:
    """A stored event as the merge rule needs it."""
    return Report(
        event_id=event["event_id"],
        provider_message_id="",  # not needed: the events are already grouped by message
        status=Status(event["status"]) if event["status"] else None,
        provider_status=event["provider_status"],
        occurred_at=from_text(event["occurred_at"]),
        error_code=event["error_code"],
        error_message=event["error_message"],
        hand_over=event["source"] == "outbound" and event["event_id"].endswith(HAND_OVER_STEP),
    )


# --------------------------------------------------------------------------- sends


def _create_send(conn: sqlite3.Connection, send: NewSend, render: RenderAnswer) -> SendAnswer:
    """The message, its outbox row and the key's answer, in the open transaction."""
    now = to_text(send.now)
    if send.idempotency_key is not None:
        row = conn.execute(
            "SELECT * FROM idempotency_keys WHERE client_id = ? AND key = ?",
            (send.client_id, send.idempotency_key),
        ).fetchone()
        if row is not None and row["expires_at"] > now:
            if row["fingerprint"] not in (send.fingerprint, retention.ERASED_FINGERPRINT):
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used for a different request; use a new key"
                    " for a new message"
                )
            return SendAnswer(row["status_code"], row["response"], True, row["message_id"])
        if row is not None:  # expired: the key is free again
            conn.execute(
                "DELETE FROM idempotency_keys WHERE client_id = ? AND key = ?",
                (send.client_id, send.idempotency_key),
            )
    if send.client_reference is not None:
        taken = conn.execute(
            "SELECT id FROM messages WHERE client_id = ? AND client_reference = ?",
            (send.client_id, send.client_reference),
        ).fetchone()
        if taken is not None:
            raise ClientReferenceTaken(send.client_reference, taken["id"])
    message_id = new_id("msg_")
    conn.execute(
        "INSERT INTO messages (id, provider, to_number, client_reference, client_id, sender,"
        " segments, country, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            message_id,
            send.provider,
            send.to,
            send.client_reference,
            send.client_id,
            send.sender,
            send.segments,
            country_of(send.to),
            now,
            now,
        ),
    )
    conn.execute(
        "INSERT INTO outbox (message_id, provider, body, template, state, next_attempt_at,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
        (
            message_id,
            send.provider,
            send.body,
            None if send.template is None else send.template.to_json(),
            now,
            now,
            now,
        ),
    )
    _outbound_event(conn, send.provider, message_id, "accepted", Status.QUEUED, now)
    record = _message(conn.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone())
    status_code, body = render(record)
    if send.idempotency_key is not None:
        conn.execute(
            "INSERT INTO idempotency_keys (client_id, key, fingerprint, status_code, response,"
            " message_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                send.client_id,
                send.idempotency_key,
                send.fingerprint,
                status_code,
                body,
                message_id,
                now,
                to_text(send.key_expires_at or send.now),
            ),
        )
    return SendAnswer(status_code, body, False, message_id)


def _prune_keys(conn: sqlite3.Connection, now: str) -> int:
    """Delete the Idempotency-Key answers expired at ``now``; how many."""
    return conn.execute("DELETE FROM idempotency_keys WHERE expires_at <= ?", (now,)).rowcount


_OWN_EVENT_PREFIX = {"outbound": "out", "receiver": "rcv"}


def _outbound_event(
    conn: sqlite3.Connection,
    provider: str,
    message_id: str,
    step: str,
    status: Status,
    now: str,
    error_code: str | None = None,
    error_message: str | None = None,
    provider_status: str | None = None,
    source: str = "outbound",
) -> None:
    """One of our own send steps in the timeline (event id ``out:MESSAGE:STEP``; our
    verdict on a message whose report never came, ``source = 'receiver'``:
    ``rcv:MESSAGE:STEP``), merged like a report; then the message is recomputed.
    ``provider_status`` is the provider's own word for it, if it said one."""
    event_id = f"{_OWN_EVENT_PREFIX[source]}:{message_id}:{step}"
    conn.execute(
        "INSERT INTO events (provider, event_id, message_id, source, status, provider_status,"
        " error_code, error_message, occurred_at, received_at, last_received_at, outcome)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'superseded')",
        (
            provider,
            event_id,
            message_id,
            source,
            status,
            provider_status or step,
            error_code,
            error_message,
            now,
            now,
            now,
        ),
    )
    cause = changes.Cause(source, event_id)
    _settle_outcome(conn, provider, event_id, _recompute(conn, message_id, now, cause=cause))


def _claim(
    conn: sqlite3.Connection, owner: str, now: datetime, lease_seconds: float, limit: int
) -> list[OutboxItem]:
    at = to_text(now)
    rows = conn.execute(
        "SELECT o.*, m.to_number, m.sender, m.erased_at FROM outbox o"
        " JOIN messages m ON m.id = o.message_id"
        " WHERE (o.state = 'pending' AND o.next_attempt_at <= ?)"
        " OR (o.state = 'sending' AND o.lease_until <= ?)"
        " ORDER BY o.next_attempt_at LIMIT ?",
        (at, at, limit),
    ).fetchall()
    lease_until = to_text(now + timedelta(seconds=lease_seconds))
    items = []
    for row in rows:
        if row["erased_at"] is not None:
            _give_up_erased(conn, row["message_id"], row["provider"], at)
            continue
        # A lease that ran out: its worker died mid-attempt, which may have reached the
        # provider. So may any attempt after an ambiguous one.
        in_doubt = bool(row["in_doubt"]) or row["state"] == "sending"
        # Every attempt may reach the provider, so the first one starts the clock of the
        # provider's idempotency key (counted from the claim: a little early, so safe).
        first_attempt_at = row["first_attempt_at"] or at
        conn.execute(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1, in_doubt = ?,"
            " first_attempt_at = ?, lease_owner = ?, lease_until = ?, updated_at = ?"
            " WHERE message_id = ?",
            (in_doubt, first_attempt_at, owner, lease_until, at, row["message_id"]),
        )
        items.append(
            OutboxItem(
                message_id=row["message_id"],
                provider=row["provider"],
                to=row["to_number"],
                body=row["body"],
                sender=row["sender"],
                attempts=row["attempts"] + 1,
                in_doubt=in_doubt,
                created_at=from_text(row["created_at"]),
                last_error=row["last_error"],
                template=Template.from_json(row["template"]) if row["template"] else None,
                first_attempt_at=from_text(first_attempt_at),
            )
        )
    return items


def _give_up_erased(conn: sqlite3.Connection, message_id: str, provider: str, at: str) -> None:
    """Finish the outbox row of a message whose number was erased before it was sent
    (``receiver erase``): it is never sent, and its timeline says why."""
    reason = "the recipient's number was erased before the message was sent"
    conn.execute(
        "UPDATE outbox SET state = 'done', body = NULL, template = NULL, lease_owner = NULL,"
        " lease_until = NULL,"
        " last_error = ?, updated_at = ? WHERE message_id = ?",
        (reason, at, message_id),
    )
    _outbound_event(conn, provider, message_id, "erased", Status.FAILED, at, "ERASED", reason)


def _release(
    conn: sqlite3.Connection, item: OutboxItem, owner: str, sets: str, *params: Any
) -> bool:
    """Update the row if ``owner`` still holds its lease; False if it was lost."""
    return bool(
        conn.execute(
            f"UPDATE outbox SET {sets}, lease_owner = NULL, lease_until = NULL"  # noqa: S608 - fixed column lists
            " WHERE message_id = ? AND lease_owner = ? AND state = 'sending'",
            (*params, item.message_id, owner),
        ).rowcount
    )


def _retry(
    conn: sqlite3.Connection, item: OutboxItem, owner: str, at: datetime, error: str, in_doubt: bool
) -> bool:
    return _release(
        conn,
        item,
        owner,
        "state = 'pending', next_attempt_at = ?, in_doubt = in_doubt OR ?, last_error = ?,"
        " updated_at = ?",
        to_text(at),
        in_doubt,
        error,
        to_text(datetime.now(UTC)),
    )


def _sent(
    conn: sqlite3.Connection,
    item: OutboxItem,
    owner: str,
    provider_message_id: str | None,
    provider_status: str,
    now: datetime,
) -> bool:
    at = to_text(now)
    done = "state = 'done', body = NULL, template = NULL, updated_at = ?"
    if not _release(conn, item, owner, done, at):
        return False
    if provider_message_id is not None:
        _learn_provider_id(conn, item, provider_message_id)
    _outbound_event(
        conn,
        item.provider,
        item.message_id,
        "sent_to_provider",
        Status.QUEUED,
        at,
        provider_status=provider_status,
    )
    return True


def _learn_provider_id(
    conn: sqlite3.Connection, item: OutboxItem, provider_message_id: str
) -> None:
    """Record the provider's id for a sent message, taking over the events of a message
    its reports created before the provider's answer came."""
    earlier = conn.execute(
        "SELECT id, client_id FROM messages WHERE provider = ? AND provider_message_id = ?",
        (item.provider, provider_message_id),
    ).fetchone()
    if earlier is not None and earlier["id"] != item.message_id:
        if earlier["client_id"] is not None:
            raise Conflict(
                f"provider {item.provider!r} answered id {provider_message_id!r}, already"
                f" the id of message {earlier['id']}"
            )
        # Its reports arrived before the provider's answer: they are this message's.
        conn.execute(
            "UPDATE events SET message_id = ? WHERE message_id = ?",
            (item.message_id, earlier["id"]),
        )
        conn.execute("DELETE FROM messages WHERE id = ?", (earlier["id"],))
    conn.execute(
        "UPDATE messages SET provider_message_id = ? WHERE id = ?",
        (provider_message_id, item.message_id),
    )


def _failed(
    conn: sqlite3.Connection,
    item: OutboxItem,
    owner: str,
    status: Status,
    error_code: str | None,
    error_message: str,
    now: datetime,
) -> bool:
    at = to_text(now)
    done = _release(
        conn,
        item,
        owner,
        "state = 'done', body = NULL, template = NULL, last_error = ?, updated_at = ?",
        error_message,
        at,
    )
    if done:
        step = "given_up" if status is Status.FAILED else "rejected_by_provider"
        _outbound_event(
            conn, item.provider, item.message_id, step, status, at, error_code, error_message
        )
    return done


def _touch(conn: sqlite3.Connection) -> None:
    """The readiness probe's write: the database header's ``user_version`` (unused by
    receiver), written back unchanged. It commits one page like any report would."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    conn.execute(f"PRAGMA user_version = {int(version)}")


HELD_ERROR_CODE = "SEND_IN_DOUBT"


def _hold(
    conn: sqlite3.Connection, item: OutboxItem, owner: str, reason: str, now: datetime
) -> bool:
    at = to_text(now)
    held = _release(conn, item, owner, "state = 'held', last_error = ?, updated_at = ?", reason, at)
    if held:
        _outbound_event(
            conn,
            item.provider,
            item.message_id,
            f"held_in_doubt_{item.attempts}",
            Status.UNKNOWN,
            at,
            HELD_ERROR_CODE,
            reason,
            provider_status="held_in_doubt",
        )
    return held


def _held(conn: sqlite3.Connection) -> list[HeldSend]:
    rows = conn.execute(
        "SELECT message_id, provider, attempts, updated_at, last_error FROM outbox"
        " WHERE state = 'held' ORDER BY updated_at, message_id"
    ).fetchall()
    return [
        HeldSend(
            r["message_id"],
            r["provider"],
            r["attempts"],
            from_text(r["updated_at"]),
            r["last_error"],
        )
        for r in rows
    ]


def _release_held(
    conn: sqlite3.Connection, message_id: str, resend: bool, reason: str, now: datetime
) -> bool:
    at = to_text(now)
    row = conn.execute(
        "SELECT provider, attempts FROM outbox WHERE message_id = ? AND state = 'held'",
        (message_id,),
    ).fetchone()
    if row is None:
        return False
    if resend:
        # A person checked with the provider that no attempt arrived: a fresh start.
        conn.execute(
            "UPDATE outbox SET state = 'pending', in_doubt = 0, first_attempt_at = NULL,"
            " next_attempt_at = ?, last_error = ?, updated_at = ? WHERE message_id = ?",
            (at, reason, at, message_id),
        )
        return True
    conn.execute(
        "UPDATE outbox SET state = 'done', body = NULL, template = NULL, last_error = ?,"
        " updated_at = ? WHERE message_id = ?",
        (reason, at, message_id),
    )
    _outbound_event(conn, row["provider"], message_id, "given_up", Status.FAILED, at, None, reason)
    return True


def _resolve(jobs: Sequence[_Job], results: Sequence[Any]) -> None:
    """Hand each job its result on its own loop: one wake-up per loop per batch, not
    one per job (each ``call_soon_threadsafe`` is a lock and a syscall)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Any]]] = {}
    for job, result in zip(jobs, results, strict=True):
        by_loop.setdefault(job.loop, []).append((job, result))
    for loop, settled in by_loop.items():
        loop.call_soon_threadsafe(_resolve_futures, settled)


def _unavailable() -> StoreUnavailable:
    return StoreUnavailable("the store could not commit the reports")


def _resolve_futures(settled: list[tuple[_Job, Any]]) -> None:
    for job, result in settled:
        if job.future.done():  # the request was cancelled (client went away)
            continue
        if isinstance(result, BaseException):
            job.future.set_exception(result)
        else:
            job.future.set_result(result)


class IngestWriter:
    """The one thread that writes reports: group commit over everything waiting."""

    def __init__(
        self,
        path: Path,
        on_commit: CommitObserver | None = None,
        *,
        guard: ShmGuard | None = None,
        wal_watch: WalWatch | None = None,
    ) -> None:
        self._path = path
        self._on_commit = on_commit
        self._guard = guard
        self._wal_watch = wal_watch
        self._queue: queue.SimpleQueue[list[_Job] | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="receiver-writer", daemon=True)
        self._closed = False
        self._lock = threading.Lock()
        self._pending: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        self._carried: list[_Job] = []  # taken from the queue beyond a full batch
        self.healthy = True
        self.committed_at = -PROBE_FRESH_SECONDS
        """``time.monotonic()`` of the last successful commit."""

    def start(self) -> None:
        self._thread.start()

    async def submit(self, work: Work, reports: int = 0) -> Any:
        """Run ``work`` in the next group commit; its result once committed to disk.
        An exception it raises (not an SQLite error) undoes only its own writes and is
        raised here.

        The jobs submitted during one event-loop iteration are handed to the writer
        together, at the end of it: handed over one by one, the writer woke for the
        first and committed it alone while the loop was still parsing the others, so
        every other commit held one request (docs/performance.md)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:  # so no job can land behind the stop marker
            if self._closed:
                raise StoreUnavailable("the service is shutting down")
            pending = self._pending.get(loop)
            if pending is None:
                pending = self._pending[loop] = []
                loop.call_soon(self._hand_over, loop)
            pending.append(_Job(work, reports, future, loop))
        return await future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            jobs = self._pending.pop(loop, None)
            if jobs:  # None: stop() already queued them
                self._queue.put(jobs)

    def stop(self) -> None:
        """Refuse new work, let the writer drain what is queued (and submitted), and
        wait for it."""
        with self._lock:
            self._closed = True
            for jobs in self._pending.values():
                self._queue.put(jobs)
            self._pending.clear()
            self._queue.put(_STOP)
        self._thread.join()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _next_batch(self) -> tuple[list[_Job], bool]:
        """Block for jobs, then take everything else waiting, up to
        MAX_BATCH_REQUESTS: (batch, stop seen)."""
        batch, self._carried = self._carried, []
        item = self._queue.get() if not batch else self._queue_nowait()
        while item is not None:
            if item is _STOP:
                return batch, True
            assert isinstance(item, list)
            batch.extend(item)
            if len(batch) >= MAX_BATCH_REQUESTS:
                batch, self._carried = batch[:MAX_BATCH_REQUESTS], batch[MAX_BATCH_REQUESTS:]
                return batch, False
            item = self._queue_nowait()
        return batch, False

    def _queue_nowait(self) -> list[_Job] | object | None:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        stopping = False
        while not stopping:
            batch, stopping = self._next_batch()
            if not batch:
                continue
            try:
                if self._guard is not None:  # before SQLite touches the -shm mapping
                    self._guard.check()
                if conn is None:
                    conn = _connect(self._path)
                    conn.row_factory = sqlite3.Row
                self._commit(conn, batch)
            except Exception as exc:  # never leave a request waiting forever
                self.healthy = False
                log.error("the writer failed, %d requests answered 503: %s", len(batch), exc)
                _resolve(batch, [_unavailable() for _ in batch])
                if conn is not None:
                    conn.close()
                    conn = None
        if conn is not None:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        started = time.perf_counter()
        results: list[Any] = []
        try:
            check_free_space(self._path)
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                conn.execute("SAVEPOINT request")
                try:
                    results.append(job.work(conn))
                except sqlite3.Error:
                    raise
                except ReceiverError as exc:  # refused on purpose (e.g. a conflict)
                    conn.execute("ROLLBACK TO request")
                    results.append(exc)
                except Exception as exc:  # a bug for this job only: isolate it
                    log.exception("a write job failed")
                    conn.execute("ROLLBACK TO request")
                    results.append(exc)
                conn.execute("RELEASE request")
            conn.execute("COMMIT")
        except (sqlite3.Error, StoreUnavailable) as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.healthy = False
            log.error("commit failed, %d requests answered 503: %s", len(batch), exc)
            _resolve(batch, [_unavailable() for _ in batch])
            return
        self.healthy = True
        self.committed_at = time.monotonic()
        if self._wal_watch is not None:
            self._wal_watch.after_commit(conn)
        if self._on_commit is not None:
            self._on_commit(sum(job.reports for job in batch), time.perf_counter() - started)
        _resolve(batch, results)


def _message(row: aiosqlite.Row | _Snapshot) -> MessageRecord:
    return MessageRecord(
        id=row["id"],
        provider=row["provider"],
        provider_message_id=row["provider_message_id"],
        to=row["to_number"],
        status=Status(row["status"]) if row["status"] else None,
        error_code=row["error_code"],
        error_message=row["error_message"],
        client_reference=row["client_reference"],
        created_at=from_text(row["created_at"]),
        updated_at=from_text(row["updated_at"]),
        status_changed_at=from_text(row["status_changed_at"]) if row["status_changed_at"] else None,
        report_count=row["report_count"],
        client_id=row["client_id"],
        sender=row["sender"],
        segments=row["segments"],
        country=row["country"],
        network=row["network"],
    )


class _Snapshot(dict[str, Any]):
    """A message row stored as JSON with a change; a column added since reads None."""

    def __missing__(self, key: str) -> None:
        return None


def _change(row: sqlite3.Row | aiosqlite.Row) -> ChangeRecord:
    return ChangeRecord(
        cursor=row["id"],
        change_id=row["change_id"],
        message_id=row["message_id"],
        seq=row["seq"],
        previous_status=Status(row["previous_status"]) if row["previous_status"] else None,
        status=Status(row["status"]) if row["status"] else None,
        error_code=row["error_code"],
        error_message=row["error_message"],
        changed_at=from_text(row["changed_at"]),
        cause_source=row["cause_source"],
        cause_event_id=row["cause_event_id"],
        message=_message(_Snapshot(json.loads(row["message"]))),
    )


def _optional_time(text: str | None) -> datetime | None:
    return from_text(text) if text else None


def _raw_request(row: aiosqlite.Row) -> RawRequest:
    return RawRequest(
        method=row["method"],
        path=row["path"],
        headers=json.loads(row["headers"]),
        body=bytes(row["body"]),
        received_at=from_text(row["received_at"]),
        id=row["id"],
    )


def _staff(row: aiosqlite.Row) -> StaffMember:
    return StaffMember(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        created_at=from_text(row["created_at"]),
        revoked_at=from_text(row["revoked_at"]) if row["revoked_at"] else None,
        sessions_after=(
            from_text(row["console_sessions_after"]) if row["console_sessions_after"] else None
        ),
    )


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
status) are written ``+column = ?``, which no index can serve, so that the planner
(which has no statistics: we never ANALYZE) reads the few messages of one number rather
than walking every delivered message in ``messages_by_status`` looking for them: 1.9 s
at 1,000,000 messages (docs/performance.md, "Store at scale")."""


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


class SqliteStore:
    """The SQLite implementation of ``receiver.store.base.Store``."""

    def __init__(
        self,
        path: Path,
        on_commit: CommitObserver | None = None,
        *,
        wal_watch: WalWatch | None = None,
    ) -> None:
        self.path = path
        self._on_commit = on_commit
        self._wal_watch = wal_watch or WalWatch(path)
        self._guard = ShmGuard(path)
        self._writer: IngestWriter | None = None
        self._reader: aiosqlite.Connection | None = None
        self._probe: asyncio.Future[Any] | None = None
        self._change_watchers: list[Callable[[], None]] = []
        self._acks: list[tuple[tuple[str, int], str, datetime, asyncio.Future[bool]]] = []

    async def open(self, *, ingest: bool = True) -> None:
        """Migrate the schema, start the writer (if ``ingest``) and the reader. To
        ingest, the folder and the database files must be writable."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if ingest:
                check_writable(self.path)
            if not self.path.exists():  # message data: readable by the service user only
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            conn = _connect(self.path)
            try:
                migrate(conn)
            finally:
                conn.close()
            self._reader = await aiosqlite.connect(self.path)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
        self._reader.row_factory = aiosqlite.Row
        await self._reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await self._reader.execute("PRAGMA synchronous = FULL")
        if ingest:
            self._writer = IngestWriter(
                self.path, self._on_commit, guard=self._guard, wal_watch=self._wal_watch
            )
            self._writer.start()

    async def close(self) -> None:
        """Drain the writer, then close; safe to call twice."""
        if self._writer is not None:
            await asyncio.to_thread(self._writer.stop)
            self._writer = None
        if self._reader is not None:
            await self._reader.close()
            self._reader = None

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise StoreUnavailable("the store is not open")
        return self._reader

    def wal_bytes(self) -> int:
        """The size of the write-ahead log file now (0 when there is none)."""
        return file_size(wal_path(self.path))

    async def ping(self) -> None:
        """Raise StoreUnavailable unless a report could be committed right now.

        Reads must work, the disk must have its reserve (files.py), and the writer must
        have committed within PROBE_FRESH_SECONDS, or else commit a probe (``_touch``)
        within PROBE_WAIT_SECONDS. Concurrent callers share one probe, and a success
        counts as a fresh commit, so polling costs at most one small commit a second."""
        await self._query("SELECT 1")  # checks the -shm file first
        writer = self._writer
        if writer is None:
            return
        check_free_space(self.path)
        if not writer.alive:
            raise StoreUnavailable("the writer thread has stopped")
        if writer.healthy and time.monotonic() - writer.committed_at < PROBE_FRESH_SECONDS:
            return
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(writer.submit(_touch))
            self._probe.add_done_callback(lambda probe: probe.cancelled() or probe.exception())
        try:
            await asyncio.wait_for(asyncio.shield(self._probe), PROBE_WAIT_SECONDS)
        except TimeoutError:
            raise StoreUnavailable(
                f"the store could not commit within {PROBE_WAIT_SECONDS:g} s"
            ) from None

    async def ingest(self, provider: str, raw: RawRequest, reports: Sequence[Report]) -> Outcome:
        if self._writer is None:
            raise StoreUnavailable("the store is not accepting reports")
        work = functools.partial(_apply, provider=provider, raw=raw, reports=reports)
        outcome: Outcome = await self._writer.submit(work, len(reports))
        if outcome.applied:  # a report that changed nothing wrote no change
            self._changes_committed()
        return outcome

    async def reprocess(
        self, provider: str, raw: RawRequest, reports: Sequence[Report]
    ) -> Reprocessed:
        if self._writer is None:
            raise StoreUnavailable("the store is not accepting reports")
        work = functools.partial(_reprocess, provider=provider, raw=raw, reports=reports)
        result: Reprocessed = await self._writer.submit(work, len(reports))
        self._changes_committed()
        return result

    async def _run(self, work: Work) -> Any:
        if self._writer is None:
            raise StoreUnavailable("the store is not accepting writes")
        return await self._writer.submit(work)

    async def create_send(self, send: NewSend, render: RenderAnswer) -> SendAnswer:
        answer: SendAnswer = await self._run(
            functools.partial(_create_send, send=send, render=render)
        )
        return answer

    async def prune_idempotency_keys(self, now: datetime) -> int:
        work = functools.partial(_prune_keys, now=to_text(now))
        pruned: int = await self._run(work)
        return pruned

    async def claim_outbox(
        self, owner: str, now: datetime, lease_seconds: float, limit: int
    ) -> list[OutboxItem]:
        work = functools.partial(
            _claim, owner=owner, now=now, lease_seconds=lease_seconds, limit=limit
        )
        items: list[OutboxItem] = await self._run(work)
        return items

    async def outbox_retry(
        self, item: OutboxItem, owner: str, at: datetime, error: str, in_doubt: bool
    ) -> bool:
        work = functools.partial(
            _retry, item=item, owner=owner, at=at, error=error, in_doubt=in_doubt
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
            _sent,
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
            _failed,
            item=item,
            owner=owner,
            status=status,
            error_code=error_code,
            error_message=error_message,
            now=now,
        )
        return bool(await self._run(work))

    async def outbox_hold(self, item: OutboxItem, owner: str, reason: str, now: datetime) -> bool:
        work = functools.partial(_hold, item=item, owner=owner, reason=reason, now=now)
        return bool(await self._run(work))

    async def held_outbox(self) -> list[HeldSend]:
        held: list[HeldSend] = await self._run(_held)
        return held

    async def release_held(self, message_id: str, resend: bool, reason: str, now: datetime) -> bool:
        work = functools.partial(
            _release_held, message_id=message_id, resend=resend, reason=reason, now=now
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
        sql, params = reconcile.overdue_list_sql(provider, overdue_before, window, limit)
        return [reconcile.overdue_row(row) for row in await self._query(sql, params)]

    async def overdue_counts(
        self, overdue_before: Mapping[str, datetime], window: ReconcileWindow | None = None
    ) -> list[OverdueCount]:
        counts = []
        for provider, before in overdue_before.items():
            sql, params = reconcile.overdue_count_sql(provider, before, window or ReconcileWindow())
            rows = await self._query(sql, params)
            counts.append(reconcile.overdue_count(provider, rows[0]))
        return counts

    async def _query(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        self._guard.check()  # before SQLite touches the -shm mapping (files.py)
        try:
            async with self.reader.execute(sql, params) as cursor:
                return list(await cursor.fetchall())
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the store could not be read: {exc}") from exc

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        self._guard.check()
        try:
            cursor = await self.reader.execute(sql, params)
            await self.reader.commit()
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the store could not be written: {exc}") from exc
        return cursor.rowcount

    async def get_message(self, message_id: str) -> MessageRecord | None:
        rows = await self._query("SELECT * FROM messages WHERE id = ?", (message_id,))
        return _message(rows[0]) if rows else None

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
            clauses.append("+" + clause if keyed and name in _BROAD_FILTERS else clause)
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
        return [_message(row) for row in rows]

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
        return [_staff(row) for row in rows]

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
        return _staff(rows[0]) if rows else None

    async def staff_by_id(self, staff_id: str) -> StaffMember | None:
        rows = await self._query(
            "SELECT * FROM staff WHERE id = ? AND revoked_at IS NULL", (staff_id,)
        )
        return _staff(rows[0]) if rows else None

    async def staff_password_hash(self, name: str) -> tuple[StaffMember, str | None] | None:
        rows = await self._query(
            "SELECT * FROM staff WHERE name = ? AND revoked_at IS NULL", (name,)
        )
        return (_staff(rows[0]), rows[0]["password_hash"]) if rows else None

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
        try:
            async with self.reader.execute(sql, params) as cursor:
                while rows := await cursor.fetchmany(500):
                    for row in rows:
                        yield _raw_request(row)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the store could not be read: {exc}") from exc

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
        return _raw_request(rows[0])

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
                requests[row["id"]] = _raw_request(row)
            event_ids.setdefault(row["id"], []).append(row["event_id"])
        return [CarriedRequest(raw, tuple(event_ids[key])) for key, raw in requests.items()]

    async def status_counts(self, since: datetime) -> list[StatusCount]:
        """Messages updated since ``since`` by provider and status (console overview).

        ``INDEXED BY``: without statistics the planner would rather walk another index
        in GROUP BY order over the whole table than read only the window's rows.
        """
        rows = await self._query(
            "SELECT provider, status, count(*) AS n FROM messages INDEXED BY messages_by_updated"
            " WHERE updated_at >= ?"
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
            "SELECT provider, status, error_code, max(error_message) AS error_message,"
            " count(*) AS n FROM messages INDEXED BY messages_by_updated WHERE updated_at >= ?"
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

    # ------------------------------------------------------------ delivery health

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

    # ------------------------------------------------------------ retention, erasure

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

        def finish(conn: sqlite3.Connection) -> int:
            deleted: int = linked + retention.delete_raw_requests(conn, naming)
            retention.record_erasure(conn, erasure_id, now, requested_by, messages, deleted)
            return deleted

        raw_requests: int = await self._run(finish)
        return Erasure(id=erasure_id, messages=messages, raw_requests=raw_requests)

    async def _raw_requests_naming(self, number: str) -> list[str]:
        """Ids of stored requests whose body holds the number's digits (instr narrows in
        SQLite's C; the pattern then refuses digits that are part of a longer number)."""
        pattern = retention.digits_pattern(number)
        digits = number.removeprefix("+").encode()
        ids: list[str] = []
        try:
            async with self.reader.execute(
                "SELECT id, body FROM raw_requests WHERE instr(body, ?) > 0", (digits,)
            ) as cursor:
                while rows := await cursor.fetchmany(100):
                    ids += [row["id"] for row in rows if pattern.search(bytes(row["body"]))]
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the store could not be read: {exc}") from exc
        return ids

    # ------------------------------------------------------------ the change feed

    def watch_changes(self, wake: Callable[[], None]) -> None:
        self._change_watchers.append(wake)

    def _changes_committed(self) -> None:
        for wake in self._change_watchers:
            wake()

    async def sync_subscribers(self, routes: Sequence[SubscriberRoute]) -> None:
        await self._run(functools.partial(changes.sync_subscribers, routes=routes))

    async def changes_after(self, cursor: int, limit: int) -> list[ChangeRecord]:
        rows = await self._query(changes.CHANGES_AFTER, (cursor, limit))
        return [_change(row) for row in rows]

    async def message_changes(self, message_id: str) -> list[ChangeRecord]:
        rows = await self._query(changes.MESSAGE_CHANGES, (message_id,))
        return [_change(row) for row in rows]

    async def message_deliveries(self, message_id: str) -> list[DeliveryRecord]:
        rows = await self._query(changes.MESSAGE_DELIVERIES, (message_id,))
        return [
            DeliveryRecord(
                subscriber=row["subscriber"],
                cursor=row["change"],
                state=row["state"],
                attempts=row["attempts"],
                last_error=row["last_error"],
                delivered_at=_optional_time(row["delivered_at"]),
                next_attempt_at=from_text(row["next_attempt_at"]),
            )
            for row in rows
        ]

    async def subscriber_health(self) -> list[SubscriberHealth]:
        rows = await self._query(changes.SUBSCRIBER_HEALTH)
        return [
            SubscriberHealth(
                name=row["name"],
                disabled_at=_optional_time(row["disabled_at"]),
                disabled_reason=row["disabled_reason"],
                backlog=row["backlog"],
                oldest_pending=_optional_time(row["oldest_pending"]),
                dead=row["dead"],
                last_error=row["last_error"],
                last_error_at=_optional_time(row["last_error_at"]),
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
        return [
            Delivery(subscriber, _change(row), row["attempts"], from_text(row["queued_at"]))
            for row in rows
        ]

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
        return [
            Delivery(subscriber, _change(row), row["attempts"], from_text(row["queued_at"]))
            for row in rows
        ]

    async def delivery_done(self, delivery: Delivery, owner: str, now: datetime) -> bool:
        """Acknowledgements of one event-loop iteration are one work unit: per delivery
        a unit of its own cost more than the update (docs/performance.md)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        if not self._acks:
            loop.call_soon(self._write_acks)
        self._acks.append(((delivery.subscriber, delivery.change.cursor), owner, now, future))
        return await future

    def _write_acks(self) -> None:
        acks, self._acks = self._acks, []
        work = functools.partial(changes.delivered, acks=[ack[:3] for ack in acks])
        written = asyncio.ensure_future(self._run(work))

        def settle(done: asyncio.Future[list[bool]]) -> None:
            for index, (*_, future) in enumerate(acks):
                if future.done():  # its caller went away
                    continue
                if done.cancelled():
                    future.cancel()
                elif (error := done.exception()) is not None:
                    future.set_exception(error)
                else:
                    future.set_result(done.result()[index])

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
