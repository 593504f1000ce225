"""The rules of ingest: what a request's reports write, in the open transaction.

A report goes into the processed set (``events``, keyed by provider and event id) and
the timeline, and the merge rule (``receiver.core.status``) decides its message's
record; a redelivered event id only counts the delivery. Written once against ``Tx``
(receiver/store/tx.py): every backend runs these.

The writers apply a group commit's requests together (``apply_requests``), in a
constant number of statements per batch, not per report: on PostgreSQL each statement
is a round trip, and the writer was waiting on them (docs/performance.md). Reads of
every key at once first (the processed set, the messages), then the merge in Python,
message by message, then each kind of write for the whole batch (``Tx.run_many``,
``Tx.rows_many``: one round trip each on PostgreSQL).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

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
from receiver.store.tx import Tx, Work

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


@dataclass(frozen=True, slots=True)
class IngestRequest:
    """One webhook request's reports: the writers' ingest job. The writers hand every
    such job of a group commit to ``apply_requests`` together (``run_jobs``); called on
    its own it is a batch of one (a job run alone in its savepoint)."""

    provider: str
    raw: RawRequest
    reports: Sequence[Report]

    async def __call__(self, tx: Tx) -> Outcome:
        [outcome] = await apply_requests(tx, [self])
        return outcome


async def apply_request(
    tx: Tx, provider: str, raw: RawRequest, reports: Sequence[Report]
) -> Outcome:
    """Apply one request's reports inside the open transaction."""
    return await IngestRequest(provider, raw, reports)(tx)


async def run_jobs(tx: Tx, works: Sequence[Work]) -> list[Any]:
    """Run a group commit's jobs in the open transaction; their results, in order. The
    ingest requests among them run together, after the others, as one batch
    (``apply_requests``): a constant number of statements for the whole batch. Their
    order does not matter: the merge is order-independent, and a job reads what the
    ones before it wrote whichever they are."""
    results: list[Any] = [None] * len(works)
    batch: list[tuple[int, IngestRequest]] = []
    for index, work in enumerate(works):
        if isinstance(work, IngestRequest):
            batch.append((index, work))
        else:
            results[index] = await work(tx)
    if batch:
        outcomes = await apply_requests(tx, [request for _, request in batch])
        for (index, _), outcome in zip(batch, outcomes, strict=True):
            results[index] = outcome
    return results


@dataclass(slots=True)
class _Fresh:
    """A report new to the processed set, on its way to its message and the timeline."""

    provider: str
    report: Report
    received: str
    """When its request arrived (the message's ``updated_at``, the change's time)."""
    request_id: str | None
    source: str = "webhook"
    cause: str = "webhook"
    """The change feed's cause (``reprocess`` where an admin re-ran it)."""
    message_id: str = ""
    applied: bool = False
    final: FinalOutcome | None = None
    """The final status it set (the delivery metrics), once merged."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.provider, self.report.provider_message_id)


async def apply_requests(tx: Tx, requests: Sequence[IngestRequest]) -> list[Outcome]:
    """Apply a batch of requests' reports inside the open transaction; each request's
    outcome. As if applied one after another in this order: an event id already
    processed, or earlier in the batch, is a duplicate (its delivery counted), and a
    message's reports in the batch merge in turn (one write of the message, one change
    at most). A constant number of statements for the whole batch."""
    counters = [OutcomeCounter() for _ in requests]
    keys = sorted(
        {(request.provider, report.event_id) for request in requests for report in request.reports}
    )
    seen = await _processed(tx, keys)
    fresh: list[tuple[int, _Fresh]] = []
    duplicates: list[tuple[str, str, str]] = []
    raws: dict[int, str] = {}
    for index, request in enumerate(requests):
        received = to_text(request.raw.received_at)
        for report in request.reports:
            key = (request.provider, report.event_id)
            if key in seen:
                counters[index].add("duplicates")
                duplicates.append((received, *key))
                continue
            seen.add(key)
            if index not in raws:
                raws[index] = new_id("req_")
            fresh.append((index, _Fresh(request.provider, report, received, raws[index])))
    await _insert_raw_requests(tx, [(raws[index], requests[index]) for index in raws])
    await _apply_fresh(tx, [item for _, item in fresh])
    for index, item in fresh:
        counters[index].add("applied" if item.applied else "superseded")
        if item.final is not None:
            counters[index].finals.append(item.final)
    await tx.run_many(  # after the events: a duplicate of one new in this batch counts too
        "UPDATE events SET deliveries = deliveries + 1, last_received_at = ?"
        " WHERE provider = ? AND event_id = ?",
        duplicates,
    )
    return [counter.outcome() for counter in counters]


async def _processed(tx: Tx, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of the (provider, event id) are in the processed set."""
    if not keys:
        return set()
    rows = await tx.rows(
        "SELECT provider, event_id FROM events WHERE (provider, event_id) IN "  # noqa: S608 - fixed SQL
        + tx.dialect.json_table("?", ("provider", "event_id")),
        (json.dumps(keys),),
    )
    return {(row[0], row[1]) for row in rows}


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


async def _insert_raw_requests(tx: Tx, raws: Sequence[tuple[str, IngestRequest]]) -> None:
    """Store each (id, request) that brought a new report, without its credentials."""
    await tx.run_many(
        "INSERT INTO raw_requests (id, provider, received_at, method, path, headers, body)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                request_id,
                request.provider,
                to_text(request.raw.received_at),
                request.raw.method,
                request.raw.path,
                json.dumps(
                    {k: v for k, v in request.raw.headers.items() if k not in _UNSTORED_HEADERS}
                ),
                request.raw.body,
            )
            for request_id, request in raws
        ],
    )


_MERGE_FIELDS = (
    "SELECT id, provider, provider_message_id, status, status_event_id, status_changed_at,"
    " error_code, error_message, to_number, client_reference, client_id, erased_at, country,"
    " network, sent_at, latency_bucket FROM messages"
)


MessageKey = tuple[str, str]
"""A message's (provider, provider message id)."""


async def _find_messages(tx: Tx, keys: Sequence[MessageKey]) -> dict[MessageKey, sqlite3.Row]:
    """The id and merge fields of the messages with these (provider, provider message
    id), by key. Locked until the transaction ends, in id order (two processes lock
    their messages in one order, so neither waits for the other while holding one it
    wants): two processes merging reports of one message take turns, the second merging
    into what the first wrote."""
    if not keys:
        return {}
    pairs = [(message, provider) for provider, message in keys]
    rows = await _locked_messages(tx, ("provider_message_id", "provider"), pairs)
    return {(row["provider"], row["provider_message_id"]): row for row in rows}


async def _locked_messages(
    tx: Tx, columns: tuple[str, str], pairs: Sequence[tuple[str, str]]
) -> list[sqlite3.Row]:
    """The merge fields of the messages whose ``columns`` hold one of ``pairs``, locked
    until the transaction ends, in id order."""
    rows: list[sqlite3.Row] = await tx.rows(
        _MERGE_FIELDS
        + f" WHERE ({columns[0]}, {columns[1]}) IN "
        + tx.dialect.json_table("?", columns)
        + " ORDER BY id"
        + tx.dialect.lock("messages"),
        (json.dumps(pairs),),
    )
    return rows


async def _find_referenced(
    tx: Tx, wanted: Mapping[MessageKey, Sequence[str]]
) -> dict[MessageKey, sqlite3.Row]:
    """For message keys not found: the message one of the key's reports names by our
    ``message_reference`` (``wanted``: ours, sent through this provider, whose id at
    the provider we have not learned yet), by key; locked like ``_find_messages``. A
    message goes to the first key that names it."""
    references = sorted({(key[0], ref) for key, refs in wanted.items() for ref in refs})
    if not references:
        return {}
    pairs = [(ref, provider) for provider, ref in references]
    rows = await _locked_messages(tx, ("id", "provider"), pairs)
    # Not "provider_message_id IS NULL" in SQL: SQLite would then walk every message
    # without one (every send not yet reported) instead of the ids.
    by_id = {(r["provider"], r["id"]): r for r in rows if r["provider_message_id"] is None}
    found: dict[MessageKey, sqlite3.Row] = {}
    for key, refs in wanted.items():
        for ref in refs:
            row = by_id.pop((key[0], ref), None)
            if row is not None:
                found[key] = row
                break
    return found


async def _find_message(tx: Tx, provider: str, report: Report) -> sqlite3.Row | None:
    """The id and merge fields of the message ``report`` is about, if known (locked)."""
    key = (provider, report.provider_message_id)
    found = await _find_messages(tx, [key])
    if key not in found and report.message_reference is not None:
        found = await _find_referenced(tx, {key: [report.message_reference]})
    return found.get(key)


SETTLED_BY_REPORT = "a report from the provider names this message: the provider has it"


_SETTLE_DOUBT = (
    f"UPDATE outbox SET {SETTLED.sets}, last_error = ?, updated_at = ?"  # noqa: S608
    f" WHERE message_id = ? AND {SETTLED.allowed} AND (state = 'held' OR in_doubt = 1)"
)
"""A report filed under a message by our reference proves an attempt reached the
provider: an outbox row held for a person, or waiting in doubt, is done (its next
attempt would hold it, and a person's ``resend`` would send it twice). Parameters:
SETTLED_BY_REPORT, now, message id."""


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
            await tx.run(_SETTLE_DOUBT, (SETTLED_BY_REPORT, now, row["id"]))
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


def _fold(row: sqlite3.Row | None, group: Sequence[_Fresh]) -> MessageState:
    """Merge a message's new reports, in turn, into its stored state (None: new); the
    state to write. Each report learns whether it applied and the final status it set."""
    state = _state(row)
    for item in group:
        decision = merge(state, item.report)
        state = _pinned(row, decision.state)
        item.applied = decision.applied
        if decision.applied and state.final:
            assert state.status is not None and state.status_changed_at is not None  # final
            latency = None
            if state.status is Status.DELIVERED and state.sent_at is not None:
                latency = max(0.0, (state.status_changed_at - state.sent_at).total_seconds())
            item.final = FinalOutcome(state.status, _country(row, state), latency)
    return state


def _values(
    row: sqlite3.Row | None, group: Sequence[_Fresh], state: MessageState
) -> tuple[object, ...]:
    """``state`` as the values of _STATE_COLUMNS."""
    return (
        group[0].report.provider_message_id,
        state.status,
        state.status_event_id,
        to_text(state.status_changed_at) if state.status_changed_at else None,
        state.error_code,
        state.error_message,
        state.to,
        state.client_reference,
        _country(row, state),
        state.network,
        to_text(state.sent_at) if state.sent_at else None,
        _latency(state),
    )


def _cause(group: Sequence[_Fresh], state: MessageState) -> changes.Cause:
    """The change's cause: the report that set the status and error written (a change
    of these is the applying report's)."""
    for item in group:
        if item.report.event_id == state.status_event_id:
            return changes.Cause(item.cause, item.report.event_id)
    return changes.Cause(group[-1].cause, group[-1].report.event_id)


Groups = dict[MessageKey, list[_Fresh]]
"""Reports new to the processed set by their message's (provider, provider message id)."""


async def _create_messages(tx: Tx, groups: Groups) -> list[changes.Written]:
    """Insert the messages of these groups with their merged state, one statement each
    (in one round trip on PostgreSQL), in key order. A message another process created
    since we looked is not inserted (and not returned): the caller merges into it."""
    keys = sorted(groups)
    states = {key: _fold(None, groups[key]) for key in keys}
    nows = {key: max(item.received for item in groups[key]) for key in keys}
    rows = await tx.rows_many(
        "INSERT INTO messages (id, provider, provider_message_id, status, status_event_id,"
        " status_changed_at, error_code, error_message, to_number, client_reference,"
        " country, network, sent_at, latency_bucket, report_count, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (provider_message_id, provider) DO NOTHING RETURNING *",
        [
            (
                new_id("msg_"),
                key[0],
                *_values(None, groups[key], states[key]),
                len(groups[key]),
                nows[key],
                nows[key],
            )
            for key in keys
        ],
    )
    written: list[changes.Written] = []
    for row in rows:
        key = (row["provider"], row["provider_message_id"])
        for item in groups[key]:
            item.message_id = row["id"]
        written.append((row, changes.NO_STATE, _cause(groups[key], states[key]), nows[key]))
    return written


async def _update_messages(
    tx: Tx, groups: Groups, rows: Mapping[MessageKey, sqlite3.Row]
) -> list[changes.Written]:
    """Merge each group into its stored message: one UPDATE each of the columns that
    changed (setting an unchanged column still rewrites every index that holds it,
    docs/performance.md), run together per set of columns. A message found by our
    reference learns its provider message id, and its send's doubt is settled."""
    updates: dict[tuple[str, ...], list[tuple[object, ...]]] = {}
    befores: dict[str, tuple[changes.Tracked, changes.Cause, str]] = {}
    settled: list[tuple[str, str, str]] = []
    for key, row in sorted(rows.items(), key=lambda pair: pair[1]["id"]):
        group = groups[key]
        state = _fold(row, group)
        now = max(item.received for item in group)
        for item in group:
            item.message_id = row["id"]
        values = _values(row, group, state)
        changed = [(c, v) for c, v in zip(_STATE_COLUMNS, values, strict=True) if row[c] != v]
        columns = tuple(column for column, _ in changed)
        updates.setdefault(columns, []).append(
            (*(value for _, value in changed), len(group), now, row["id"])
        )
        befores[row["id"]] = (changes.tracked(row), _cause(group, state), now)
        if row["provider_message_id"] is None:  # found by our reference: the provider has it
            settled.append((SETTLED_BY_REPORT, now, row["id"]))
    written: list[changes.Written] = []
    for columns, params in updates.items():
        sets = "".join(f"{column} = ?, " for column in columns)
        for row in await tx.rows_many(
            f"UPDATE messages SET {sets}report_count = report_count + ?, updated_at = ?"  # noqa: S608 - fixed column names
            " WHERE id = ? RETURNING *",
            params,
        ):
            written.append((row, *befores[row["id"]]))
    await tx.run_many(_SETTLE_DOUBT, settled)
    return written


async def _apply_fresh(tx: Tx, items: Sequence[_Fresh]) -> None:
    """Merge reports new to the processed set into their messages (created if new),
    write the changes, and add the reports to the timeline: a constant number of
    statements for any number of reports."""
    groups: Groups = {}
    for item in items:
        groups.setdefault(item.key, []).append(item)
    found = await _find_messages(tx, list(groups))
    references = {
        key: [item.report.message_reference for item in group if item.report.message_reference]
        for key, group in groups.items()
        if key not in found
    }
    found.update(await _find_referenced(tx, references))
    written: list[changes.Written] = []
    new = {key: group for key, group in groups.items() if key not in found}
    while new:
        created = await _create_messages(tx, new)
        written += created
        made = {(row["provider"], row["provider_message_id"]) for row, *_ in created}
        # Created by another process since we looked (our INSERT waited for its commit
        # and did nothing): merge into it, without running the whole batch again.
        lost = [key for key in new if key not in made]
        raced = await _find_messages(tx, lost)
        found.update(raced)
        new = {key: new[key] for key in lost if key not in raced}
    written += await _update_messages(tx, groups, found)
    await changes.record_changes(tx, written)
    await _insert_events(tx, items)


async def _insert_events(tx: Tx, items: Sequence[_Fresh]) -> None:
    """Add merged reports to the processed set and the timeline, in key order."""
    await tx.run_many(
        "INSERT INTO events (provider, event_id, message_id, request_id, source, status,"
        " provider_status, error_code, error_message, occurred_at, received_at,"
        " last_received_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                item.provider,
                item.report.event_id,
                item.message_id,
                item.request_id,
                item.source,
                item.report.status,
                item.report.provider_status,
                item.report.error_code,
                item.report.error_message,
                to_text(item.report.occurred_at),
                item.received,
                item.received,
                "applied" if item.applied else "superseded",
            )
            for item in sorted(items, key=lambda item: (item.provider, item.report.event_id))
        ],
    )


async def insert_event(
    tx: Tx,
    provider: str,
    request_id: str | None,
    received: str,
    report: Report,
    source: str = "webhook",
    cause: str | None = None,
) -> str:
    """Merge a report new to the processed set into its message; its outcome. A report
    the reconciler looked up (``source = 'lookup'``) has no raw request. ``cause`` is
    the change feed's cause where it is not ``source`` (``reprocess`` when an admin
    re-ran it)."""
    item = _Fresh(provider, report, received, request_id, source, cause or source)
    await _apply_fresh(tx, [item])
    return "applied" if item.applied else "superseded"


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
