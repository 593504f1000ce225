"""The rules of ingest: what a request's reports write, in the open transaction.

A report goes into the processed set (``events``, keyed by provider and event id) and
the timeline, and the merge rule (``receiver.core.status``) decides its message's
record; a redelivered event id only counts the delivery. Written once against ``Tx``
(receiver/store/tx.py): every backend runs these.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from receiver.core.delivery import (
    latency_bucket,
)
from receiver.core.network import country_of
from receiver.core.reports import FinalOutcome, Outcome, Report
from receiver.core.status import MessageState, Status, merge
from receiver.outbound.states import SETTLED
from receiver.records import (
    OutcomeCounter,
    RawRequest,
    Reprocessed,
)
from receiver.store import changes
from receiver.store.base import from_text, new_id, to_text
from receiver.store.tx import Tx

_UNSTORED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


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


async def apply_request(
    tx: Tx, provider: str, raw: RawRequest, reports: Sequence[Report]
) -> Outcome:
    """Apply one request's reports inside the open transaction."""
    counter = OutcomeCounter()
    received = to_text(raw.received_at)
    request_id: str | None = None
    for report in reports:
        redelivered = await tx.run(
            "UPDATE events SET deliveries = deliveries + 1, last_received_at = ?"
            " WHERE provider = ? AND event_id = ?",
            (received, provider, report.event_id),
        )
        if redelivered:
            counter.add("duplicates")
            continue
        if request_id is None:
            request_id = await _insert_raw_request(tx, provider, raw)
        counter.add(
            await insert_event(tx, provider, request_id, received, report, finals=counter.finals)
        )
    return counter.outcome()


async def reprocess_request(
    tx: Tx, provider: str, raw: RawRequest, reports: Sequence[Report]
) -> Reprocessed:
    """Apply one stored request's reports, parsed again, inside the open transaction."""
    if raw.id is None:
        raise ValueError("only a stored request can be reprocessed")
    counts: Counter[str] = Counter()
    now = to_text(datetime.now(UTC))
    for report in reports:
        row = await tx.row(
            "SELECT e.*, m.provider_message_id FROM events e JOIN messages m"
            " ON m.id = e.message_id WHERE e.provider = ? AND e.event_id = ?",
            (provider, report.event_id),
        )
        if row is None:
            received = to_text(raw.received_at)
            counts[
                await insert_event(tx, provider, raw.id, received, report, cause="reprocess")
            ] += 1
        elif _event_fields(report) == tuple(row[name] for name in _EVENT_FIELDS):
            counts["unchanged"] += 1
        else:
            await _correct_event(tx, provider, row["message_id"], report, now)
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


async def _insert_raw_request(tx: Tx, provider: str, raw: RawRequest) -> str:
    request_id = new_id("req_")
    headers = {k: v for k, v in raw.headers.items() if k not in _UNSTORED_HEADERS}
    await tx.run(
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


async def _find_message(tx: Tx, provider: str, report: Report) -> sqlite3.Row | None:
    """The id and merge fields of the message ``report`` is about, if known: the one with
    its provider message id, else the one its ``message_reference`` names (ours, sent
    through this provider, whose id at the provider we have not learned yet). Locked
    until the transaction ends: two processes merging reports of one message take turns,
    the second merging into what the first wrote. (Two creating one message at once: the
    second's INSERT waits for the first's commit, does nothing, and the second merges
    into the row the first wrote, without running its whole batch again.)"""
    lock = tx.dialect.lock("messages")
    row: sqlite3.Row | None = await tx.row(
        _MERGE_FIELDS + " WHERE provider = ? AND provider_message_id = ?" + lock,
        (provider, report.provider_message_id),
    )
    if row is None and report.message_reference is not None:
        row = await tx.row(
            _MERGE_FIELDS + " WHERE id = ? AND provider = ? AND provider_message_id IS NULL" + lock,
            (report.message_reference, provider),
        )
    return row


SETTLED_BY_REPORT = "a report from the provider names this message: the provider has it"


async def _settle_doubt(tx: Tx, message_id: str, now: str) -> None:
    """A report filed under ``message_id`` by our reference proves an attempt reached the
    provider: an outbox row held for a person, or waiting in doubt, is done (its next
    attempt would hold it, and a person's ``resend`` would send it twice)."""
    await tx.run(
        f"UPDATE outbox SET {SETTLED.sets}, last_error = ?, updated_at = ?"  # noqa: S608
        f" WHERE message_id = ? AND {SETTLED.allowed} AND (state = 'held' OR in_doubt = 1)",
        (SETTLED_BY_REPORT, now, message_id),
    )


async def _message_row(
    tx: Tx, provider: str, report: Report, now: str
) -> tuple[str, sqlite3.Row | None]:
    """The id and merge fields of the message ``report`` is about, created if new (and
    told its provider message id if it was found by our reference)."""
    row = await _find_message(tx, provider, report)
    if row is not None:
        if row["provider_message_id"] is None:
            await tx.run(
                "UPDATE messages SET provider_message_id = ? WHERE id = ?",
                (report.provider_message_id, row["id"]),
            )
            await _settle_doubt(tx, row["id"], now)
        return row["id"], row
    message_id = new_id("msg_")
    await tx.run(
        "INSERT INTO messages (id, provider, provider_message_id, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (message_id, provider, report.provider_message_id, now, now),
    )
    return message_id, None


async def _save_state(
    tx: Tx,
    message_id: str,
    state: MessageState,
    now: str,
    report_count: int | None = None,
) -> sqlite3.Row:
    """Write the merge rule's fields; ``report_count`` None counts one more report. The
    message's row as written."""
    written: sqlite3.Row = await tx.row(
        "UPDATE messages SET status = ?, status_event_id = ?, status_changed_at = ?,"
        " error_code = ?, error_message = ?, to_number = ?, client_reference = ?,"
        " network = ?, sent_at = ?, latency_bucket = ?, country = coalesce(?, country),"
        " report_count = COALESCE(?, report_count + 1), updated_at = ? WHERE id = ?"
        " RETURNING *",
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
    return written


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


async def _merge_report(
    tx: Tx,
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
    that holds it (docs/performance.md). Either returns the row the change feed keeps."""
    row = await _find_message(tx, provider, report)
    decision = merge(_state(row), report)
    state = _pinned(row, decision.state)
    before = changes.tracked(row)
    cause = changes.Cause(source, report.event_id)
    feed_changed = (state.status, state.error_code, state.error_message) != before
    country = _country(row, state)
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
        written = await tx.row(
            "INSERT INTO messages (id, provider, provider_message_id, status, status_event_id,"
            " status_changed_at, error_code, error_message, to_number, client_reference,"
            " country, network, sent_at, latency_bucket, report_count, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)"
            " ON CONFLICT (provider_message_id, provider) DO NOTHING RETURNING *",
            (message_id, provider, *values, now, now),
        )
        if written is None:  # another process created it since we looked: merge into it
            return await _merge_report(tx, provider, report, now, source, finals)
    else:
        message_id = row["id"]
        if row["provider_message_id"] is None:  # found by our reference: the provider has it
            await _settle_doubt(tx, message_id, now)
        changed = [(c, v) for c, v in zip(_STATE_COLUMNS, values, strict=True) if row[c] != v]
        sets = "".join(f"{column} = ?, " for column, _ in changed)
        written = await tx.row(
            f"UPDATE messages SET {sets}report_count = report_count + 1, updated_at = ?"  # noqa: S608 - fixed column names
            " WHERE id = ? RETURNING *",
            (*(value for _, value in changed), now, message_id),
        )
    if finals is not None and decision.applied and state.final:
        assert state.status is not None and state.status_changed_at is not None  # final
        latency = None
        if state.status is Status.DELIVERED and state.sent_at is not None:
            latency = max(0.0, (state.status_changed_at - state.sent_at).total_seconds())
        finals.append(FinalOutcome(state.status, country, latency))
    if feed_changed:
        await changes.record_change(tx, written, before, cause, now)
    return message_id, decision.applied


async def insert_event(
    tx: Tx,
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
    message_id, applied = await _merge_report(
        tx, provider, report, received, cause or source, finals
    )
    outcome = "applied" if applied else "superseded"
    await tx.run(
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


async def _correct_event(
    tx: Tx, provider: str, old_message_id: str, report: Report, now: str
) -> None:
    """Rewrite a processed event as ``report`` now reads, then recompute its message
    (and the one it left, if the report now names another message) from all events."""
    message_id, _ = await _message_row(tx, provider, report, now)
    await tx.run(
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
        await recompute(tx, old_message_id, now, cause=cause)
    state = await recompute(tx, message_id, now, also=report, cause=cause)
    await settle_outcome(tx, provider, report.event_id, state)


_RECEIVER_CAUSE = changes.Cause("receiver", None)


async def recompute(
    tx: Tx,
    message_id: str,
    now: str,
    also: Report | None = None,
    cause: changes.Cause = _RECEIVER_CAUSE,
) -> MessageState:
    """Fold the merge rule over every event of a message (the record depends only on
    the set of reports). ``to`` and ``client_reference`` are not kept per event: the
    message keeps its own, and ``also`` (a report among them) may add a smaller one.
    A change of the status or error goes to the change feed with ``cause``."""
    kept = await tx.row(
        "SELECT to_number, client_reference, client_id, erased_at, network, status,"
        " error_code, error_message FROM messages WHERE id = ?",
        (message_id,),
    )
    state = MessageState(
        to=kept["to_number"], client_reference=kept["client_reference"], network=kept["network"]
    )
    events = await tx.rows("SELECT * FROM events WHERE message_id = ?", (message_id,))
    for event in events:
        state = merge(state, _report(event)).state
    if also is not None:  # already folded in: merging it again only adds to/reference
        state = merge(state, also).state
    state = _pinned(kept, state)
    reports = sum(event["source"] in _REPORT_SOURCES for event in events)
    written = await _save_state(tx, message_id, state, now, reports)
    await changes.record_change(tx, written, changes.tracked(kept), cause, now)
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


async def settle_outcome(tx: Tx, provider: str, event_id: str, state: MessageState) -> None:
    """Mark a rewritten or outbound event applied if it now sets the status."""
    outcome = "applied" if state.status_event_id == event_id else "superseded"
    await tx.run(
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
