"""The store contract for retention and erasure (no HTTP), with the clock injected: what a
pass deletes and keeps, that the processed set survives its raw requests, and that an
erased number stays erased."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import stored_value

from receiver import retention
from receiver.config import RetentionSettings
from receiver.core.reports import Outcome, Report
from receiver.core.status import Status, parse_status
from receiver.errors import Gone
from receiver.records import MessageFilter, MessageRecord, NewSend, Pruned, RawRequest
from receiver.store.sql import SqlStore

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)
RETAIN = RetentionSettings(raw_requests_days=7, messages_days=30)
NUMBER = "+639171234567"
TABLES = ("messages", "events", "raw_requests", "outbox", "idempotency_keys")


def report(event_id: str, message_id: str, word: str = "delivered", **fields: object) -> Report:
    return Report(
        event_id=event_id,
        provider_message_id=message_id,
        status=parse_status(word),
        provider_status=word,
        occurred_at=T0 - 50 * DAY,
        **fields,  # type: ignore[arg-type]
    )


async def ingest(store: SqlStore, at: datetime, *reports: Report, body: bytes = b"{}") -> Outcome:
    raw = RawRequest(
        path="/webhooks/acme",
        body=body,
        headers={"content-type": "application/json"},
        received_at=at,
    )
    return await store.ingest("acme", raw, list(reports))


def new_send(**changes: object) -> NewSend:
    send = NewSend(
        client_id="stf_client",
        provider="acme",
        to=NUMBER,
        body="Your code is 4711",
        sender="ACME",
        client_reference=None,
        segments=1,
        idempotency_key="key-1",
        fingerprint="fp-1",
        key_expires_at=T0 - 39 * DAY,
        now=T0 - 40 * DAY,
    )
    return replace(send, **changes)  # type: ignore[arg-type]


def render(message: MessageRecord) -> tuple[int, str]:
    return 202, json.dumps({"id": message.id, "to": message.to, "status": message.status})


async def dump(store: SqlStore) -> dict[str, list[dict[str, Any]]]:
    """Every row of the tables retention and erasure touch."""
    return {
        table: sorted(await store.select(f"SELECT * FROM {table}"), key=repr) for table in TABLES
    }


async def only(store: SqlStore, provider_message_id: str) -> MessageRecord | None:
    found = await store.find_messages(
        MessageFilter(provider_message_id=provider_message_id), 5, None
    )
    assert len(found) <= 1
    return found[0] if found else None


# --------------------------------------------------------------------------- retention


async def test_raw_requests_past_their_cutoff_go_and_their_events_stay(store):
    await ingest(store, T0 - 10 * DAY, report("e-old", "m-old"))
    await ingest(store, T0 - 1 * DAY, report("e-new", "m-new"))

    assert await retention.prune(store, RETAIN, T0) == Pruned(raw_requests=1)

    assert len(await store.select("SELECT id FROM raw_requests")) == 1
    old, new = await only(store, "m-old"), await only(store, "m-new")
    assert old is not None and new is not None
    assert old.status is Status.DELIVERED and old.report_count == 1
    [old_event] = await store.message_events(old.id)
    [new_event] = await store.message_events(new.id)
    assert (old_event.event_id, old_event.raw_deleted) == ("e-old", True)
    assert (new_event.event_id, new_event.raw_deleted) == ("e-new", False)
    with pytest.raises(Gone) as gone:
        await store.raw_request_for_event("acme", "e-old")
    assert gone.value.code == "RAW_REQUEST_DELETED"
    assert await store.raw_request_for_event("acme", "e-new") is not None
    assert await store.raw_request_for_event("acme", "e-unknown") is None
    assert [raw.received_at async for raw in store.iter_raw_requests()] == [T0 - 1 * DAY]


async def test_a_redelivered_report_whose_raw_request_was_pruned_is_still_a_duplicate(store):
    await ingest(store, T0 - 10 * DAY, report("e1", "m1"))
    await retention.prune(store, RETAIN, T0)
    assert await stored_value(store, "SELECT count(*) FROM raw_requests") == 0

    again = await ingest(store, T0, report("e1", "m1"))

    assert again == Outcome(received=1, applied=0, duplicates=1, superseded=0)
    assert await stored_value(store, "SELECT count(*) FROM raw_requests") == 0
    message = await only(store, "m1")
    assert message is not None and message.report_count == 1
    [event] = await store.message_events(message.id)
    assert event.deliveries == 2


async def test_messages_unchanged_past_their_cutoff_go_with_their_timelines(store):
    await ingest(store, T0 - 40 * DAY, report("a1", "m-old", "sent"))
    await ingest(store, T0 - 31 * DAY, report("a2", "m-old", "delivered"))
    await ingest(store, T0 - 20 * DAY, report("b1", "m-kept"))

    pruned = await retention.prune(store, RETAIN, T0)

    assert pruned == Pruned(raw_requests=3, messages=1, events=2)
    assert await only(store, "m-old") is None
    kept = await only(store, "m-kept")
    assert kept is not None and len(await store.message_events(kept.id)) == 1
    assert await store.select("SELECT event_id FROM events") == [{"event_id": "b1"}]
    # A second pass finds nothing more.
    assert await retention.prune(store, RETAIN, T0) == Pruned()


async def test_a_message_a_sender_still_needs_is_kept(store):
    sent = await store.create_send(new_send(key_expires_at=T0 + DAY), render)
    [item] = await store.claim_outbox("w1", T0 - 40 * DAY, 30, 10)
    assert await store.outbox_sent(item, "w1", "prov-2", "queued", T0 - 40 * DAY)
    pending = await store.create_send(new_send(idempotency_key="key-2"), render)

    # Both unchanged for 40 days: one is still in the outbox, one's key has not expired.
    assert await retention.prune(store, RETAIN, T0) == Pruned()
    assert await store.get_message(pending.message_id) is not None

    # Once the key has expired, the sent message goes with its outbox row, key and events.
    later = await retention.prune(store, RETAIN, T0 + 2 * DAY)
    assert later == Pruned(messages=1, events=2, outbox=1, idempotency_keys=1)
    assert await store.get_message(sent.message_id) is None
    assert await store.get_message(pending.message_id) is not None
    assert await store.select("SELECT state FROM outbox") == [{"state": "pending"}]


async def test_a_pass_deletes_in_batches_until_nothing_is_left(store, monkeypatch):
    monkeypatch.setattr(retention, "RAW_BATCH", 2)
    monkeypatch.setattr(retention, "MESSAGE_BATCH", 2)
    for n in range(5):
        await ingest(store, T0 - 40 * DAY, report(f"e{n}", f"m{n}"))
    batches: list[int] = []
    real = store.prune_raw_requests

    async def counted(before: datetime, limit: int) -> int:
        deleted = await real(before, limit)
        batches.append(deleted)
        return deleted

    monkeypatch.setattr(store, "prune_raw_requests", counted)

    assert await retention.prune(store, RETAIN, T0) == Pruned(raw_requests=5, messages=5, events=5)
    assert batches == [2, 2, 1]
    assert await dump(store) == {table: [] for table in TABLES}


async def test_a_dry_run_counts_what_a_pass_deletes_and_deletes_nothing(store):
    await ingest(store, T0 - 40 * DAY, report("a1", "m1"), report("a2", "m2"))
    await ingest(store, T0 - 10 * DAY, report("b1", "m3"))
    await ingest(store, T0 - 1 * DAY, report("c1", "m4"))
    await store.create_send(new_send(), render)
    [item] = await store.claim_outbox("w", T0 - 40 * DAY, 30, 9)
    await store.outbox_failed(item, "w", Status.REJECTED, "21", "refused", T0 - 40 * DAY)
    await store.create_send(new_send(idempotency_key="key-2"), render)  # pending: kept
    before = await dump(store)

    counted = await retention.prunable(store, RETAIN, T0)

    assert await dump(store) == before
    assert counted == Pruned(raw_requests=2, messages=3, events=4, outbox=1, idempotency_keys=1)
    assert await retention.prune(store, RETAIN, T0) == counted


async def test_retention_off_keeps_everything(store):
    await ingest(store, T0 - 4000 * DAY, report("a1", "m1"))
    before = await dump(store)
    assert await retention.prune(store, RetentionSettings(), T0) == Pruned()
    assert await retention.prunable(store, RetentionSettings(), T0) == Pruned()
    assert await dump(store) == before


# --------------------------------------------------------------------------- erasure


async def test_erase_blanks_the_number_and_deletes_the_requests_that_carry_it(store):
    await ingest(store, T0, report("a1", "m1", "sent", to=NUMBER), body=b'{"to": "+639171234567"}')
    await ingest(store, T0, report("a2", "m1", "delivered"), body=b'{"id": "m1"}')
    # A batch: m1's failure report beside another number's report.
    await ingest(
        store,
        T0,
        report("b1", "m1", "undelivered"),
        report("b2", "m-other", "delivered", to="+639171234568"),
        body=b'[{"id": "m1"}, {"id": "m-other", "to": "+639171234568"}]',
    )
    # A report whose word maps to no status names the number, but not as the message's `to`.
    await ingest(store, T0, report("c1", "m-unmapped", "weird"), body=b"msisdn=639171234567")
    # Digits that are part of a longer number are someone else's.
    await ingest(store, T0, report("d1", "m-longer", "sent"), body=b'{"to": "+6391712345670"}')

    erasure = await store.erase_recipient(NUMBER, "dpo@example.com", T0)

    assert (erasure.messages, erasure.raw_requests) == (1, 4)
    m1 = await only(store, "m1")
    assert m1 is not None
    assert (m1.to, m1.status, m1.report_count) == (None, Status.DELIVERED, 3)
    assert [e.event_id for e in await store.message_events(m1.id)] == ["a1", "a2", "b1"]
    assert all(e.raw_deleted for e in await store.message_events(m1.id))
    other = await only(store, "m-other")
    assert other is not None and other.to == "+639171234568"
    bodies = [bytes(row["body"]) for row in await store.select("SELECT body FROM raw_requests")]
    assert bodies == [b'{"to": "+6391712345670"}']
    # The audit row: when, who and how much; never the number.
    [audit] = await store.select("SELECT * FROM erasures")
    assert audit["id"] == erasure.id
    assert (audit["requested_by"], audit["messages"], audit["raw_requests"]) == (
        "dpo@example.com",
        1,
        4,
    )
    assert "9171234567" not in repr(audit)
    assert await store.find_messages(MessageFilter(to=NUMBER), 10, None) == []


async def test_erasing_twice_changes_nothing_the_second_time(store):
    await ingest(store, T0, report("a1", "m1", "delivered", to=NUMBER), body=NUMBER.encode())
    await store.create_send(new_send(key_expires_at=T0 + DAY), render)
    first = await store.erase_recipient(NUMBER, "ops", T0)
    after_first = await dump(store)

    second = await store.erase_recipient(NUMBER, "ops", T0 + DAY)

    assert (first.messages, first.raw_requests) == (2, 1)
    assert (second.messages, second.raw_requests) == (0, 0)
    assert await dump(store) == after_first
    assert len(await store.select("SELECT id FROM erasures")) == 2  # each run is on record


async def test_a_later_report_does_not_bring_an_erased_number_back(store):
    await ingest(store, T0, report("a1", "m1", "sent", to=NUMBER))
    await store.erase_recipient(NUMBER, "ops", T0)

    outcome = await ingest(store, T0 + DAY, report("a2", "m1", "delivered", to=NUMBER))

    assert outcome.applied == 1
    m1 = await only(store, "m1")
    assert m1 is not None and (m1.to, m1.status, m1.report_count) == (None, Status.DELIVERED, 2)


async def test_an_unsent_message_to_an_erased_number_is_never_sent(store):
    sent = await store.create_send(new_send(key_expires_at=T0 + DAY), render)
    await store.erase_recipient(NUMBER, "ops", T0)

    assert await store.select("SELECT body, state FROM outbox") == [
        {"body": None, "state": "pending"}
    ]
    [key] = await store.select("SELECT fingerprint, response FROM idempotency_keys")
    assert key["fingerprint"] == "erased" and json.loads(str(key["response"]))["to"] is None
    # The worker's next claim gives it up instead of sending it.
    assert await store.claim_outbox("w1", T0, 30, 10) == []
    message = await store.get_message(sent.message_id)
    assert message is not None and (message.to, message.status) == (None, Status.FAILED)
    steps = [
        (e.event_id.rsplit(":", 1)[1], e.error_code)
        for e in await store.message_events(sent.message_id)
    ]
    assert steps == [("accepted", None), ("erased", "ERASED")]
    assert await store.select("SELECT state, body FROM outbox") == [{"state": "done", "body": None}]
    # A retry with the same key gets the stored answer, never a second message.
    again = await store.create_send(new_send(fingerprint="fp-other", now=T0), render)
    assert (again.replayed, again.message_id) == (True, sent.message_id)
    assert len(await store.select("SELECT id FROM messages")) == 1
