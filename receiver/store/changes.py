"""The status change feed in SQL: writing changes in the merge's transaction, routing
them to subscribers, and the delivery outbox (README "Status change feed").

Every function here runs on the writer's connection inside the open transaction (a
work unit of the group commit), except the read queries at the end, which the store
runs on its reader. Plain SQL, no I/O of its own.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from receiver.records import SubscriberRoute
from receiver.store.base import new_id, to_text
from receiver.store.tx import Tx

Tracked = tuple[str | None, str | None, str | None]
"""A message's (status, error_code, error_message): a change is a change of these."""

NO_STATE: Tracked = (None, None, None)


@dataclass(frozen=True, slots=True)
class Cause:
    """What changed the message: the timeline event's source and id."""

    source: str
    """``webhook`` (a provider's report), ``outbound`` (a send step of ours),
    ``reprocess`` (an admin re-ran a stored request), ``receiver`` (the service)."""
    event_id: str | None


def tracked(row: sqlite3.Row | None) -> Tracked:
    """The tracked fields of a ``messages`` row (``NO_STATE`` for a new message)."""
    if row is None:
        return NO_STATE
    return (row["status"], row["error_code"], row["error_message"])


def _matches(tx: Tx, provider: str, status: str, client: str) -> str:
    """SQL true when subscriber ``s`` wants a change of a message of ``provider``, new
    status ``status``, sent by the staff id ``client`` (NULL for a message known only
    from reports): SQL expressions, each of which may be a ``?``. (The client's name is
    a scalar subquery, not an EXISTS over ``staff``: PostgreSQL then plans the routing
    statement once, where an EXISTS made each run's own plan look cheaper than the
    generic one, and it planned every run again: about 400 us of its CPU per report.)"""
    has = tx.dialect.contains
    name = f"(SELECT staff.name FROM staff WHERE staff.id = {client})"  # noqa: S608 - fixed clauses
    return (
        f"(s.providers IS NULL OR {has('s.providers', provider)})"
        f" AND (s.statuses IS NULL OR {has('s.statuses', status)})"
        f" AND (s.clients IS NULL OR {has('s.clients', name)})"
    )


def _route(tx: Tx) -> str:
    """Queue a change for each subscriber that wants it: leased at once to the
    subscriber's worker (``taken``) when its heartbeat is fresh and no earlier change of
    the message is still on its way to that subscriber, else pending for a claim.
    Parameters: change, message, seq, now, now, now, message, provider, status, client."""
    return (
        "INSERT INTO change_deliveries (subscriber, change, message_id, seq, state, attempts,"  # noqa: S608 - fixed clauses
        " next_attempt_at, queued_at, lease_owner, lease_until)"
        " SELECT name, CAST(? AS BIGINT), ?, CAST(? AS BIGINT),"
        " CASE WHEN taken = 1 THEN 'sending' ELSE 'pending' END, taken, ?, ?,"
        " CASE WHEN taken = 1 THEN worker END, CASE WHEN taken = 1 THEN worker_lease_until END"
        " FROM (SELECT s.name, s.worker, s.worker_lease_until, CASE WHEN s.worker_until > ?"
        " AND s.disabled_at IS NULL AND NOT EXISTS (SELECT 1 FROM change_deliveries e"
        " WHERE e.subscriber = s.name AND e.message_id = ?"
        " AND e.state NOT IN ('delivered', 'dead')) THEN 1 ELSE 0 END AS taken"
        " FROM subscribers s WHERE " + _matches(tx, "?", "?", "?") + ") routed"
    )


Written = tuple[sqlite3.Row, Tracked, Cause, str]
"""A message's row as just written in this transaction (``RETURNING *``), its tracked
fields before (``NO_STATE`` when it was just created), what changed it, and when."""

_COMPACT = json.JSONEncoder(separators=(",", ":"))
"""The change's copy of the message, as compact JSON (``json.dumps`` with
``separators`` builds an encoder per call: 6.6 against 5.8 µs per copy)."""

_INSERT_CHANGE = (
    "INSERT INTO changes (change_id, message_id, seq, previous_status, status, error_code,"
    " error_message, changed_at, cause_source, cause_event_id, message)"
    " VALUES (?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM changes WHERE message_id = ?),"
    " ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id, seq"
)


async def record_changes(tx: Tx, written: Sequence[Written]) -> int:
    """Write a change for each message whose tracked fields differ from before, with
    the next ``seq`` of the message, and queue it for every subscriber that wants it;
    how many were written. The change's ``message`` is the row as written. Two
    statements for any number of messages (each run once per change, in one round
    trip on PostgreSQL), the routing after every change is in."""
    moved = [
        (row, before, cause, now) for row, before, cause, now in written if tracked(row) != before
    ]
    if not moved:
        return 0
    inserted = await tx.rows_many(
        _INSERT_CHANGE,
        [
            (
                new_id("chg_"),
                row["id"],
                row["id"],
                before[0],
                *tracked(row),
                now,
                cause.source,
                cause.event_id,
                _COMPACT.encode(dict(zip(row.keys(), row, strict=True))),
            )
            for row, before, cause, now in moved
        ],
    )
    await tx.run_many(
        _route(tx),
        [
            (
                change,
                row["id"],
                seq,
                now,
                now,
                now,
                row["id"],
                row["provider"],
                row["status"],
                row["client_id"],
            )
            for (change, seq), (row, _, _, now) in zip(inserted, moved, strict=True)
        ],
    )
    return len(moved)


async def record_change(tx: Tx, row: sqlite3.Row, before: Tracked, cause: Cause, now: str) -> bool:
    """``record_changes`` for one message: True if a change was written."""
    return bool(await record_changes(tx, [(row, before, cause, now)]))


async def sync_subscribers(tx: Tx, routes: Sequence[SubscriberRoute]) -> None:
    """Make the ``subscribers`` table the configured ones: filters rewritten, a
    disabled one stays disabled, one no longer configured is removed (its deliveries
    stay, and are sent again if it comes back)."""

    def array(values: Sequence[str] | None) -> str | None:
        return None if values is None else json.dumps(list(values))

    names = [route.name for route in routes]
    await tx.run(
        "DELETE FROM subscribers WHERE NOT " + tx.dialect.contains("?", "name"),  # noqa: S608
        (json.dumps(names),),
    )
    for route in routes:
        await tx.run(
            "INSERT INTO subscribers (name, providers, statuses, clients) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET providers = excluded.providers,"
            " statuses = excluded.statuses, clients = excluded.clients",
            (route.name, array(route.providers), array(route.statuses), array(route.clients)),
        )


# --------------------------------------------------------------------------- delivery


async def claim_deliveries(
    tx: Tx,
    subscriber: str,
    owner: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
) -> list[sqlite3.Row]:
    """Lease up to ``limit`` due deliveries of ``subscriber``, oldest change first: each
    a ``changes`` row with the delivery's ``attempts`` (this one included) and
    ``queued_at``. A delivery waits while an earlier change of its message is pending
    or being sent to the subscriber (a lease that ran out counts as pending), so each
    message's changes go out in ``seq`` order, one at a time. (That test names the
    states it excludes, not those it wants: with ``state IN`` PostgreSQL read it through
    the due index, every queued delivery of the subscriber for each candidate, 8.5 s for
    6,000 queued on a fresh database.)"""
    at = to_text(now)
    rows: list[sqlite3.Row] = await tx.rows(
        "SELECT c.*, d.attempts + 1 AS attempts, d.queued_at FROM change_deliveries d"  # noqa: S608 - fixed SQL
        " JOIN changes c ON c.id = d.change"
        " WHERE d.subscriber = ? AND ((d.state = 'pending' AND d.next_attempt_at <= ?)"
        " OR (d.state = 'sending' AND d.lease_until <= ?))"
        " AND NOT EXISTS (SELECT 1 FROM change_deliveries e WHERE e.subscriber = d.subscriber"
        " AND e.message_id = d.message_id AND e.seq < d.seq"
        " AND e.state NOT IN ('delivered', 'dead'))"
        " AND NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.name = d.subscriber"
        " AND s.disabled_at IS NOT NULL)"
        " ORDER BY d.change LIMIT ?" + tx.dialect.skip("d"),
        (subscriber, at, at, limit),
    )
    lease_until = to_text(now + timedelta(seconds=lease_seconds))
    for row in rows:
        await tx.run(
            "UPDATE change_deliveries SET state = 'sending', attempts = attempts + 1,"
            " lease_owner = ?, lease_until = ? WHERE subscriber = ? AND change = ?",
            (owner, lease_until, subscriber, row["id"]),
        )
    return rows


Leased = tuple[str, int]
"""A leased delivery: (subscriber, change cursor)."""


async def _update_if_leased(tx: Tx, leased: Leased, owner: str, sets: str, *params: object) -> bool:
    """Update the delivery if ``owner`` still holds its lease; False if it was lost.
    Only a delivery being sent has a lease owner (every way out of ``sending`` clears
    it), so the owner alone says it is in flight: naming the state too, PostgreSQL's
    generic plan on a table not yet analyzed read every delivery in flight through the
    due index (0.8 ms at 5,000) instead of the primary key."""
    return bool(
        await tx.run(
            f"UPDATE change_deliveries SET {sets}, lease_owner = NULL, lease_until = NULL"  # noqa: S608 - fixed column lists
            " WHERE subscriber = ? AND change = ? AND lease_owner = ?",
            (*params, *leased, owner),
        )
    )


_LEASED = (
    "SELECT c.*, d.attempts, d.queued_at FROM change_deliveries d JOIN changes c ON c.id = d.change"
)
"""A leased delivery as the worker takes it: its change's row with the delivery's
``attempts`` and ``queued_at`` (add the WHERE)."""

LEASED_ONE = _LEASED + " WHERE d.subscriber = ? AND d.change = ?"

Ack = tuple[Leased, str, datetime, datetime]
"""An acknowledged delivery: (the delivery, its owner, when, how long a next change of
its message would be leased to the owner)."""


async def delivered(tx: Tx, acks: Sequence[Ack]) -> list[tuple[bool, sqlite3.Row | None]]:
    """Each ack: the subscriber answered 2xx. For each, False if the lease was lost, and
    the message's next change for the subscriber if it was waiting for this one and is
    due, now leased to the owner (as ``claim_deliveries`` returns it): the worker sends
    it at once, where a claim would cost another commit."""
    done: list[tuple[bool, sqlite3.Row | None]] = []
    for leased, owner, now, lease_until in acks:
        at = to_text(now)
        settled = await _update_if_leased(
            tx, leased, owner, "state = 'delivered', delivered_at = ?", at
        )
        if not settled:  # not recorded: its next change still waits for it
            done.append((False, None))
            continue
        following = await tx.row(
            _lease_next(tx), (owner, to_text(lease_until), leased[0], *leased, at, leased[0])
        )
        if following is None:
            done.append((settled, None))
            continue
        row = await tx.row(LEASED_ONE, (leased[0], following[0]))
        done.append((settled, row))
    return done


def _lease_next(tx: Tx) -> str:
    """Lease the acknowledged delivery's next change to its owner: the message's change
    that is pending and due with no earlier one pending or being sent to the subscriber
    (the claim's rule). Read through the message's index: the due index would walk every
    pending delivery of the subscriber. Parameters: owner, lease until, subscriber,
    subscriber, acknowledged change, now, subscriber."""
    by_message = tx.dialect.using("change_deliveries_by_message")
    return (
        f"UPDATE change_deliveries{by_message} SET state = 'sending',"  # noqa: S608 - fixed clauses
        " attempts = attempts + 1, lease_owner = ?, lease_until = ?"
        " WHERE subscriber = ? AND message_id = (SELECT a.message_id FROM change_deliveries a"
        " WHERE a.subscriber = ? AND a.change = ?)"
        " AND state = 'pending' AND next_attempt_at <= ?"
        " AND NOT EXISTS (SELECT 1 FROM change_deliveries e"
        " WHERE e.subscriber = change_deliveries.subscriber"
        " AND e.message_id = change_deliveries.message_id AND e.seq < change_deliveries.seq"
        " AND e.state NOT IN ('delivered', 'dead')) AND NOT EXISTS (SELECT 1 FROM subscribers s"
        " WHERE s.name = ? AND s.disabled_at IS NOT NULL) RETURNING change"
    )


async def _last_error(tx: Tx, name: str, error: str, now: datetime) -> None:
    """The subscriber's ``last_error`` (``receiver subscribers list``, the console)."""
    await tx.run(
        "UPDATE subscribers SET last_error = ?, last_error_at = ? WHERE name = ?",
        (error, to_text(now), name),
    )


async def failed_attempt(
    tx: Tx,
    leased: Leased,
    owner: str,
    error: str,
    retry_at: datetime | None,
    now: datetime,
) -> bool:
    """An attempt failed with ``error``: try again at ``retry_at``, or dead-letter it
    (None: past the horizon). The subscriber's ``last_error`` says why."""
    if retry_at is None:
        settled = await _update_if_leased(
            tx, leased, owner, "state = 'dead', last_error = ?", error
        )
    else:
        settled = await _update_if_leased(
            tx,
            leased,
            owner,
            "state = 'pending', next_attempt_at = ?, last_error = ?",
            to_text(retry_at),
            error,
        )
    await _last_error(tx, leased[0], error, now)
    return settled


async def dead_letter(tx: Tx, leased: Leased, error: str, now: datetime) -> None:
    """Give the delivery up now, whoever holds it, with ``error`` as the reason (its
    change cannot be read); the subscriber's ``last_error`` says so too."""
    await tx.run(
        "UPDATE change_deliveries SET state = 'dead', last_error = ?, lease_owner = NULL,"
        " lease_until = NULL WHERE subscriber = ? AND change = ?"
        " AND state NOT IN ('delivered', 'dead')",
        (error, *leased),
    )
    await _last_error(tx, leased[0], error, now)


async def hand_back(tx: Tx, leased: Leased, owner: str) -> bool:
    """The worker stops before the attempt finished: the delivery is due again at once
    and the attempt does not count (it may still have arrived: at least once)."""
    return await _update_if_leased(tx, leased, owner, "state = 'pending', attempts = attempts - 1")


async def heartbeat(tx: Tx, name: str, owner: str, until: datetime, lease_until: datetime) -> None:
    """``owner`` takes ``name``'s new changes as they are written, leased until
    ``lease_until``, as long as it beats again before ``until``."""
    await tx.run(
        "UPDATE subscribers SET worker = ?, worker_until = ?, worker_lease_until = ?"
        " WHERE name = ?",
        (owner, to_text(until), to_text(lease_until), name),
    )


async def disable(tx: Tx, name: str, reason: str, now: datetime) -> None:
    """Stop delivering to ``name`` (it answered 410 Gone) until an admin redelivers."""
    await tx.run(
        "UPDATE subscribers SET disabled_at = ?, disabled_reason = ?, last_error = ?,"
        " last_error_at = ? WHERE name = ? AND disabled_at IS NULL",
        (to_text(now), reason, reason, to_text(now), name),
    )


async def redeliver(
    tx: Tx, name: str, since: datetime | None, dead_only: bool, now: datetime
) -> int:
    """Queue changes for ``name`` again and enable it if it was disabled. ``dead_only``:
    only its dead letters; otherwise every change its filters match, delivered or not
    (a subscriber added later gets the history). ``since``: only changes made at or
    after it. A delivery pending or in flight is left alone. How many were queued."""
    at = to_text(now)
    await tx.run(
        "UPDATE subscribers SET disabled_at = NULL, disabled_reason = NULL WHERE name = ?",
        (name,),
    )
    since_text = to_text(since) if since is not None else ""
    if dead_only:
        return await tx.run(
            "UPDATE change_deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?,"
            " queued_at = ?, last_error = NULL WHERE subscriber = ? AND state = 'dead'"
            " AND change IN (SELECT id FROM changes WHERE changed_at >= ?)",
            (at, at, name, since_text),
        )
    field = tx.dialect.field
    matches = _matches(
        tx, field("c.message", "provider"), "c.status", field("c.message", "client_id")
    )
    requeue = (
        "INSERT INTO change_deliveries (subscriber, change, message_id, seq, state,"  # noqa: S608 - fixed clauses
        " next_attempt_at, queued_at) SELECT s.name, c.id, c.message_id, c.seq, 'pending', ?, ?"
        " FROM changes c JOIN subscribers s ON s.name = ?"
        f" WHERE c.changed_at >= ? AND {matches}"
        " ON CONFLICT (subscriber, change) DO UPDATE SET state = 'pending', attempts = 0,"
        " next_attempt_at = excluded.next_attempt_at, queued_at = excluded.queued_at,"
        " last_error = NULL WHERE change_deliveries.state IN ('delivered', 'dead')"
    )
    return await tx.run(requeue, (at, at, name, since_text))


# --------------------------------------------------------------------------- reads

CHANGES_AFTER = "SELECT * FROM changes WHERE id > ? ORDER BY id LIMIT ?"

LEASED_TO = (
    _LEASED + " WHERE d.subscriber = ? AND d.lease_owner = ?"
    " AND d.change > ? AND d.lease_until > ? ORDER BY d.change"
)
"""Deliveries leased to a worker by the transactions that wrote them (``_route``), after
the last one it took. Only a delivery being sent has a lease owner; naming its state
too let both databases read every delivery in flight through the due index, where the
primary key reads only those after the cursor."""

LEASED_UP_TO = (
    "SELECT change FROM change_deliveries WHERE subscriber = ? AND state = 'sending'"
    " AND lease_owner = ? AND change <= ? AND lease_until > ? ORDER BY change"
)
"""The cursors of the deliveries leased to a worker at or before a cursor."""

DUE = (
    "SELECT 1 FROM change_deliveries WHERE subscriber = ? AND state = 'pending'"
    " AND next_attempt_at <= ? UNION ALL SELECT 1 FROM change_deliveries"
    " WHERE subscriber = ? AND state = 'sending' AND lease_until <= ? LIMIT 1"
)
"""A row if the subscriber has a delivery pending and due, or one whose lease ran out:
what a claim looks for, read without taking the write lock."""

MESSAGE_CHANGES = "SELECT * FROM changes WHERE message_id = ? ORDER BY seq"

MESSAGE_DELIVERIES = (
    "SELECT subscriber, change, state, attempts, last_error, delivered_at, next_attempt_at"
    " FROM change_deliveries WHERE change IN (SELECT id FROM changes WHERE message_id = ?)"
    " ORDER BY subscriber, seq"
)

SUBSCRIBER_HEALTH = (
    "SELECT s.name, s.disabled_at, s.disabled_reason, s.last_error, s.last_error_at,"
    " (SELECT count(*) FROM change_deliveries d WHERE d.subscriber = s.name"
    "  AND d.state IN ('pending', 'sending')) AS backlog,"
    " (SELECT min(queued_at) FROM change_deliveries d WHERE d.subscriber = s.name"
    "  AND d.state IN ('pending', 'sending')) AS oldest_pending,"
    " (SELECT count(*) FROM change_deliveries d WHERE d.subscriber = s.name"
    "  AND d.state = 'dead') AS dead"
    " FROM subscribers s ORDER BY s.name"
)
