"""The reconciler's SQL (README "Missing reports"): overdue messages, their leases, what a
lookup found, and our verdict when no final report came.

Theory of operation
-------------------
A message is *overdue* when its status is ``queued``, ``sent`` or ``buffered`` (not
final, and not the honest ``unknown``), no outbox row still works on it, and its
``updated_at`` (the last report or send step) is older than its provider's
``report_timeout_seconds``. One range of the partial index ``messages_awaiting_report
(provider, updated_at)`` is exactly that set for one provider, oldest first.

The ``lookups`` table keeps, per overdue message, how often we asked, when to ask again
and a lease: a claim (a writer work unit, so one transaction under SQLite's write lock)
leases the rows it returns, so two processes never ask about the same message at once.
Every later write checks the lease. A lookup's answer goes through ``ingest.insert_event``
(the same merge as a webhook) with ``source = 'lookup'``; our verdict through
``outbox.outbound_event`` with ``source = 'receiver'`` and the fixed event id
``rcv:MESSAGE:no_final_report``. When a message leaves the overdue set its row goes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from receiver.core.status import Status
from receiver.records import Looked, OverdueCount, OverdueMessage, ReconcileWindow
from receiver.store import ingest, outbox
from receiver.store.base import from_text, to_text
from receiver.store.tx import Dialect, Tx

AWAITING = ("queued", "sent", "buffered")
AWAITING_SQL = "status IN ('queued', 'sent', 'buffered')"
"""Written as in the partial index's WHERE, so that SQLite can use the index."""
NOT_SENDING = "NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = m.id AND o.state != 'done')"
"""The outbox worker still owns a message it has not handed over (or holds for a person)."""
VERDICT_STEP = "no_final_report"
VERDICT_CODE = "NO_FINAL_REPORT"

_OVERDUE_COLUMNS = (
    "m.id, m.provider, m.provider_message_id, m.to_number, m.status, m.created_at,"
    " m.updated_at, l.attempts, l.last_outcome, l.last_error, l.last_at, l.next_at,"
    " l.lease_owner, l.lease_until"
)
_OVERDUE_COUNTS = (
    "COUNT(*) AS overdue, MIN(m.updated_at) AS oldest,"
    " SUM(CASE WHEN l.last_outcome IS NULL OR l.last_outcome = 'no_lookup' THEN 1 ELSE 0 END)"
    " AS no_report,"
    " SUM(CASE WHEN l.last_outcome = 'failed' THEN 1 ELSE 0 END) AS lookup_failed,"
    " SUM(CASE WHEN l.last_outcome IN ('pending', 'not_found') THEN 1 ELSE 0 END)"
    " AS still_pending"
)


def _overdue(dialect: Dialect, columns: str) -> str:
    """SELECT ``columns`` of one provider's overdue messages (and their lookups)."""
    return (
        f"SELECT {columns} FROM messages m"  # noqa: S608 - fixed text
        + dialect.using("messages_awaiting_report")
        + " LEFT JOIN lookups l ON l.message_id = m.id"
        " WHERE m.provider = ? AND m.status IN ('queued', 'sent', 'buffered')"
        " AND m.updated_at <= ? AND " + NOT_SENDING
    )


def _window_sql(window: ReconcileWindow, free_at: str | None) -> tuple[str, list[Any]]:
    """The window's conditions; ``free_at``: only messages no lease holds at that time,
    and (``window.due_only``) whose next lookup is due by then."""
    sql, params = "", []
    if window.since is not None:
        sql += " AND m.created_at >= ?"
        params.append(to_text(window.since))
    if window.until is not None:
        sql += " AND m.created_at < ?"
        params.append(to_text(window.until))
    if window.started is not None:
        sql += " AND (l.claimed_at IS NULL OR l.claimed_at < ?)"
        params.append(to_text(window.started))
    if free_at is not None:
        sql += " AND (l.lease_until IS NULL OR l.lease_until <= ?)"
        params.append(free_at)
        if window.due_only:
            sql += " AND (l.next_at IS NULL OR l.next_at <= ?)"
            params.append(free_at)
    return sql, params


def overdue_row(row: sqlite3.Row | Mapping[str, Any]) -> OverdueMessage:
    return OverdueMessage(
        id=row["id"],
        provider=row["provider"],
        provider_message_id=row["provider_message_id"],
        to=row["to_number"],
        status=Status(row["status"]),
        created_at=from_text(row["created_at"]),
        updated_at=from_text(row["updated_at"]),
        lookups=row["attempts"] or 0,
        last_outcome=row["last_outcome"],
        last_error=row["last_error"],
        last_lookup_at=from_text(row["last_at"]) if row["last_at"] else None,
    )


async def claim(
    tx: Tx,
    provider: str,
    overdue_before: datetime,
    owner: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
    window: ReconcileWindow,
) -> list[OverdueMessage]:
    """Lease up to ``limit`` overdue messages of ``provider`` (oldest change first)
    that no live lease holds; with ``window.due_only`` only those due for a lookup."""
    at = to_text(now)
    sql, params = overdue_list_sql(tx.dialect, provider, overdue_before, window, limit, free_at=at)
    rows = await tx.rows(sql + tx.dialect.skip("m"), params)
    until = to_text(now + timedelta(seconds=lease_seconds))
    await tx.run_many(
        "INSERT INTO lookups (message_id, provider, next_at, lease_owner, lease_until,"
        " claimed_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO UPDATE SET"
        " lease_owner = excluded.lease_owner, lease_until = excluded.lease_until,"
        " claimed_at = excluded.claimed_at",
        [(row["id"], provider, at, owner, until, at) for row in rows],
    )
    return [overdue_row(row) for row in rows]


async def _leased(tx: Tx, message_id: str, owner: str) -> bool:
    row = await tx.row(
        "SELECT 1 FROM lookups WHERE message_id = ? AND lease_owner = ?", (message_id, owner)
    )
    return row is not None


async def _awaiting(tx: Tx, message_id: str) -> bool:
    row = await tx.row("SELECT status FROM messages WHERE id = ?", (message_id,))
    return row is not None and row["status"] in AWAITING


async def record(tx: Tx, provider: str, owner: str, looked: Sequence[Looked]) -> list[str | None]:
    """A round of lookups done, in the open transaction: see ``record_one``."""
    return [await record_one(tx, provider, owner, lookup) for lookup in looked]


async def record_one(tx: Tx, provider: str, owner: str, lookup: Looked) -> str | None:
    """One lookup done: merge what it found (``source = 'lookup'``; a repeated answer is
    a duplicate) and schedule the next. Its outcome (``applied``, ``superseded``,
    ``duplicates``), None when it found no report; ``lost`` if the lease is gone."""

    message_id, report, now = lookup.message_id, lookup.report, lookup.at
    outcome = "pending" if lookup.outcome == "final" else lookup.outcome
    if not await _leased(tx, message_id, owner):
        return "lost"
    at = to_text(now)
    merged: str | None = None
    if report is not None:
        redelivered = await tx.run(
            "UPDATE events SET deliveries = deliveries + 1, last_received_at = ?"
            " WHERE provider = ? AND event_id = ?",
            (at, provider, report.event_id),
        )
        merged = (
            "duplicates"
            if redelivered
            else await ingest.insert_event(tx, provider, None, at, report, source="lookup")
        )
    if not await _awaiting(tx, message_id):
        await tx.run("DELETE FROM lookups WHERE message_id = ?", (message_id,))
        return merged
    await tx.run(
        "UPDATE lookups SET attempts = attempts + 1, last_outcome = ?, last_error = ?,"
        " last_at = ?, next_at = ?, lease_owner = NULL, lease_until = NULL"
        " WHERE message_id = ?",
        (outcome, lookup.error, at, to_text(lookup.next_at), message_id),
    )
    return merged


async def release(
    tx: Tx,
    message_id: str,
    owner: str,
    next_at: datetime,
    outcome: str | None = None,
    error: str | None = None,
) -> bool:
    """Hand a leased message back, due again at ``next_at``, no lookup counted (the
    provider is paused, or cannot be asked about it: ``outcome`` says so)."""
    return bool(
        await tx.run(
            "UPDATE lookups SET next_at = ?, lease_owner = NULL, lease_until = NULL,"
            " last_outcome = COALESCE(?, last_outcome), last_error = COALESCE(?, last_error)"
            " WHERE message_id = ? AND lease_owner = ?",
            (to_text(next_at), outcome, error, message_id, owner),
        )
    )


async def give_up(
    tx: Tx,
    provider: str,
    message_id: str,
    owner: str,
    gave_up_before: datetime,
    reason: str,
    now: datetime,
) -> bool:
    """Our verdict on a message whose final report never came: an event with ``source =
    'receiver'``, status ``unknown``, ``NO_FINAL_REPORT`` and a fixed id, merged like a
    report (a later report still corrects it). False when it no longer applies: the
    lease is lost, or a report came since the message was claimed."""

    if not await _leased(tx, message_id, owner):
        return False
    row = await tx.row("SELECT status, updated_at FROM messages WHERE id = ?", (message_id,))
    await tx.run("DELETE FROM lookups WHERE message_id = ?", (message_id,))
    if row is None or row["status"] not in AWAITING or row["updated_at"] > to_text(gave_up_before):
        return False
    await outbox.outbound_event(
        tx,
        provider,
        message_id,
        VERDICT_STEP,
        Status.UNKNOWN,
        to_text(now),
        error_code=VERDICT_CODE,
        error_message=reason,
        source="receiver",
    )
    return True


# --------------------------------------------------------------------------- reads


def overdue_list_sql(
    dialect: Dialect,
    provider: str,
    overdue_before: datetime,
    window: ReconcileWindow,
    limit: int,
    free_at: str | None = None,
) -> tuple[str, list[Any]]:
    """The overdue messages of one provider in ``window``, oldest change first; with
    ``free_at`` only those a claim may take then (the claim's query), else all
    (the console)."""
    extra, params = _window_sql(window, free_at)
    sql = _overdue(dialect, _OVERDUE_COLUMNS) + extra + " ORDER BY m.updated_at LIMIT ?"
    return sql, [provider, to_text(overdue_before), *params, limit]


def overdue_count_sql(
    dialect: Dialect, provider: str, overdue_before: datetime, window: ReconcileWindow
) -> tuple[str, list[Any]]:
    """How many messages of one provider are overdue (created in ``window``), why, and
    the oldest change."""
    extra, params = _window_sql(window, None)
    return _overdue(dialect, _OVERDUE_COUNTS) + extra, [provider, to_text(overdue_before), *params]


def overdue_count(provider: str, row: sqlite3.Row | Mapping[str, Any]) -> OverdueCount:
    return OverdueCount(
        provider=provider,
        overdue=row["overdue"] or 0,
        oldest=from_text(row["oldest"]) if row["oldest"] else None,
        no_report=row["no_report"] or 0,
        lookup_failed=row["lookup_failed"] or 0,
        still_pending=row["still_pending"] or 0,
    )


def overdue_filter_sql(overdue_before: Mapping[str, datetime]) -> tuple[str, list[str]]:
    """The staff API's ``overdue=true`` as a WHERE clause on ``messages`` (unaliased)."""
    if not overdue_before:
        return "0", []
    per_provider = " OR ".join("(provider = ? AND updated_at <= ?)" for _ in overdue_before)
    params = [value for name, at in overdue_before.items() for value in (name, to_text(at))]
    not_sending = NOT_SENDING.replace("m.id", "messages.id")
    return f"{AWAITING_SQL} AND ({per_provider}) AND {not_sending}", params


__all__ = [
    "AWAITING",
    "VERDICT_CODE",
    "claim",
    "give_up",
    "overdue_count",
    "overdue_count_sql",
    "overdue_filter_sql",
    "overdue_list_sql",
    "record",
    "release",
]
