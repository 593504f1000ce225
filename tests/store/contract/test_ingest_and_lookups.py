"""The store contract: ingest, lookups and staff, the same on every backend (no HTTP).

Each test runs once per backend (``store_url`` in tests/conftest.py); what a check
reads beyond the Store API it reads with ``SqlStore.select`` (portable SQL)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from conftest import another_store, stored_value
from reports import status_report

from receiver.core.reports import Outcome, Report
from receiver.core.status import Status
from receiver.errors import Conflict, StoreUnavailable
from receiver.records import MessageFilter, MessageRecord, Position, RawRequest
from receiver.store import open_store
from receiver.store.base import migrations, to_text
from receiver.store.sql import SqlStore
from receiver.store.tx import SQLITE, Tx

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
NEWEST = migrations(SQLITE)[-1][0]
"""The newest schema version (every dialect has the same: tests/store/test_postgres_backend.py)."""


# --------------------------------------------------------------------------- helpers


def raw(
    *,
    received_at: datetime | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b'{"type": "message.status"}',
) -> RawRequest:
    return RawRequest(
        method="POST",
        path="/webhooks/acme",
        headers=headers or {"content-type": "application/json"},
        body=body,
        received_at=received_at or datetime.now(UTC),
    )


def report(
    event_id: str,
    message_id: str,
    word: str = "delivered",
    *,
    occurred_at: datetime = T0,
    to: str | None = None,
    error_code: str | None = None,
) -> Report:
    return status_report(event_id, message_id, word, occurred_at, to=to, error_code=error_code)


async def only(store: SqlStore, provider_message_id: str) -> MessageRecord:
    found = await store.find_messages(
        MessageFilter(provider_message_id=provider_message_id), 10, None
    )
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------- schema


async def test_opening_again_keeps_the_schema_version_and_the_data(store_url):
    first = open_store(store_url)
    await first.open()
    await first.close()
    second = open_store(store_url)
    await second.open()
    try:
        outcome = await second.ingest("acme", raw(), [report("e-1", "m-1")])
        assert outcome == Outcome(received=1, applied=1)
    finally:
        await second.close()
    third = open_store(store_url)
    await third.open()
    try:
        assert await third.select("SELECT version FROM schema_version") == [{"version": NEWEST}]
        assert await stored_value(third, "SELECT count(*) FROM events") == 1
    finally:
        await third.close()


async def _newer_version(tx: Tx) -> None:
    await tx.run("UPDATE schema_version SET version = ?", (NEWEST + 1,))


async def test_a_database_from_a_newer_receiver_is_refused(store, store_url):
    await store._run(_newer_version)  # as a newer receiver would have left it
    await store.close()
    for _ in range(2):  # refused again: the refusal left the version as it was
        refused = open_store(store_url)
        with pytest.raises(StoreUnavailable, match=rf"version {NEWEST + 1} is newer"):
            await refused.open()
        await refused.close()  # safe even though open failed


# --------------------------------------------------------------------------- ingest


async def test_concurrent_ingests_are_group_committed_and_add_up(store_url):
    batches: list[int] = []
    lock = threading.Lock()

    def observe(reports: int, seconds: float) -> None:
        assert seconds >= 0
        with lock:
            batches.append(reports)

    store = open_store(store_url, on_commit=observe)
    await store.open()
    distinct = 150
    try:
        # Request i carries event e{i % 150} (a redelivery for i >= 150) about one of
        # 20 messages; every fifth request is a batch of two reports.
        def request(i: int) -> list[Report]:
            k = i % distinct
            reports = [
                report(
                    f"e{k}",
                    f"m{k % 20}",
                    ("sent", "delivered", "failed")[k % 3],
                    occurred_at=T0 + timedelta(seconds=k),
                )
            ]
            if k % 5 == 0:
                reports.append(report(f"e{k}b", f"m{k % 20}", "queued"))
            return reports

        requests = [request(i) for i in range(200)]
        outcomes = await asyncio.gather(
            *(store.ingest("acme", raw(), reports) for reports in requests)
        )
    finally:
        await store.close()

    submitted = sum(len(r) for r in requests)
    new = distinct + distinct // 5
    total = {
        kind: sum(getattr(o, kind) for o in outcomes)
        for kind in ("received", "applied", "duplicates", "superseded")
    }
    assert total["received"] == submitted
    assert total["duplicates"] == submitted - new
    assert total["applied"] + total["superseded"] == new
    for reports, outcome in zip(requests, outcomes, strict=True):
        assert outcome.received == len(reports)
        assert outcome.applied + outcome.duplicates + outcome.superseded == outcome.received

    assert sum(batches) == submitted
    assert max(batches) > 1, f"every commit held a single report: {batches}"
    assert len(batches) < len(requests)

    async with another_store(store_url) as reader:
        assert await stored_value(reader, "SELECT count(*) FROM events") == new
        assert await stored_value(reader, "SELECT sum(deliveries) FROM events") == submitted
        assert await stored_value(reader, "SELECT count(*) FROM messages") == 20
        assert await stored_value(reader, "SELECT sum(report_count) FROM messages") == new
        applied = "SELECT count(*) FROM events WHERE outcome = 'applied'"
        assert await stored_value(reader, applied) == total["applied"]


async def test_a_committed_ingest_is_visible_to_a_new_connection_without_secrets(store, store_url):
    headers = {
        "content-type": "application/json",
        "webhook-id": "evt-durable",
        "authorization": "Bearer super-secret-token",
        "cookie": "session=also-secret",
        "user-agent": "acme-dlr/1.0",
    }
    body = b'{"type": "message.status", "data": {"message_id": "m-durable"}}'
    outcome = await store.ingest(
        "acme",
        raw(headers=headers, body=body),
        [report("evt-durable", "m-durable", "undelivered", to="+639171234567", error_code="E1")],
    )
    assert outcome == Outcome(received=1, applied=1)

    async with another_store(store_url) as reader:
        [message] = await reader.select(
            "SELECT * FROM messages WHERE provider_message_id = 'm-durable'"
        )
        [event] = await reader.select("SELECT * FROM events WHERE event_id = 'evt-durable'")
        [request] = await reader.select(
            "SELECT * FROM raw_requests WHERE id = ?", (event["request_id"],)
        )
    assert (message["provider"], message["status"], message["error_code"]) == (
        "acme",
        "undelivered",
        "E1",
    )
    assert message["to_number"] == "+639171234567"
    assert (event["message_id"], event["status"], event["deliveries"]) == (
        message["id"],
        "undelivered",
        1,
    )
    assert event["occurred_at"] == to_text(T0)
    stored = json.loads(request["headers"])
    assert "authorization" not in stored
    assert "cookie" not in stored
    assert stored["webhook-id"] == "evt-durable"
    assert stored["user-agent"] == "acme-dlr/1.0"
    assert stored["content-type"] == "application/json"
    assert "super-secret-token" not in request["headers"]
    assert bytes(request["body"]) == body
    assert (request["method"], request["path"], request["provider"]) == (
        "POST",
        "/webhooks/acme",
        "acme",
    )


async def test_a_request_of_duplicates_only_stores_no_raw_request(store):
    await store.ingest("acme", raw(), [report("evt-once", "m-once")])
    again = await store.ingest("acme", raw(), [report("evt-once", "m-once")])
    assert again == Outcome(received=1, duplicates=1)
    assert await stored_value(store, "SELECT count(*) FROM raw_requests") == 1
    [event] = await store.message_events((await only(store, "m-once")).id)
    assert event.deliveries == 2


async def test_the_same_event_id_of_two_providers_is_two_events(store):
    first = await store.ingest("acme", raw(), [report("shared-id", "m-1")])
    second = await store.ingest("other", raw(), [report("shared-id", "m-1")])
    assert first == second == Outcome(received=1, applied=1)
    assert await stored_value(store, "SELECT count(*) FROM messages") == 2


async def test_close_drains_every_queued_ingest(store, store_url):
    tasks = [
        asyncio.create_task(store.ingest("acme", raw(), [report(f"d{i}", f"m{i % 7}", "sent")]))
        for i in range(300)
    ]
    await asyncio.sleep(0)  # every task runs up to its await: all 300 are queued
    assert not any(task.done() for task in tasks)
    await store.close()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    assert all(isinstance(result, Outcome) for result in results), [
        r for r in results if not isinstance(r, Outcome)
    ][:3]
    assert sum(r.received for r in results) == 300
    async with another_store(store_url) as reader:
        assert await stored_value(reader, "SELECT count(*) FROM events") == 300
        assert await stored_value(reader, "SELECT sum(report_count) FROM messages") == 300

    with pytest.raises(StoreUnavailable):
        await store.ingest("acme", raw(), [report("late", "m-late")])
    await store.close()  # twice is fine


# --------------------------------------------------------------------------- the merge, stored


async def test_the_stored_record_does_not_depend_on_arrival_order(store):
    reports = [
        report("o-1", "PLACEHOLDER", "sent", occurred_at=T0),
        report(
            "o-2", "PLACEHOLDER", "failed", occurred_at=T0 + timedelta(seconds=5), error_code="F"
        ),
        report(
            "o-3",
            "PLACEHOLDER",
            "undelivered",
            occurred_at=T0 + timedelta(seconds=9),
            error_code="U",
        ),
        report("o-4", "PLACEHOLDER", "whatever", occurred_at=T0 + timedelta(seconds=1)),
    ]
    orders = [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2]]
    records = []
    for n, order in enumerate(orders):
        pid = f"order-{n}"
        for i in order:
            r = reports[i]
            await store.ingest(
                "acme",
                raw(),
                [
                    Report(
                        f"{r.event_id}-{n}",
                        pid,
                        r.status,
                        r.provider_status,
                        r.occurred_at,
                        error_code=r.error_code,
                    )
                ],
            )
        record = await only(store, pid)
        records.append(
            (record.status, record.error_code, record.status_changed_at, record.report_count)
        )
    assert records == [(Status.FAILED, "F", T0 + timedelta(seconds=5), 4)] * len(orders)


# --------------------------------------------------------------------------- lookups


async def test_find_messages_filters_and_pages_newest_first(store):
    # Four requests a minute apart; the last carries three messages at once (same
    # created_at, so the id breaks the tie).
    plan = [
        (T0, [report("f-1", "m-a", "delivered", to="+639170000001")]),
        (T0 + timedelta(minutes=1), [report("f-2", "m-b", "failed", to="+639170000002")]),
        (T0 + timedelta(minutes=2), [report("f-3", "m-c", "sent", to="+639170000001")]),
        (
            T0 + timedelta(minutes=3),
            [
                report("f-4", "m-d", "delivered"),
                report("f-5", "m-e", "queued"),
                report("f-6", "m-f", "delivered", to="+639170000001"),
            ],
        ),
    ]
    for received_at, reports in plan:
        await store.ingest("acme", raw(received_at=received_at), reports)
    await store.ingest("other", raw(received_at=T0), [report("f-1", "m-a", "sent")])

    everything = await store.find_messages(MessageFilter(), 100, None)
    assert len(everything) == 7
    keys = [(m.created_at, m.id) for m in everything]
    assert keys == sorted(keys, reverse=True)
    assert {m.provider_message_id for m in everything[:3]} == {"m-d", "m-e", "m-f"}

    async def pids(where: MessageFilter) -> list[str]:
        return [m.provider_message_id for m in await store.find_messages(where, 100, None)]

    assert set(await pids(MessageFilter(provider="acme"))) == {
        "m-a",
        "m-b",
        "m-c",
        "m-d",
        "m-e",
        "m-f",
    }
    assert await pids(MessageFilter(provider="other")) == ["m-a"]
    assert len(await pids(MessageFilter(provider_message_id="m-a"))) == 2
    assert await pids(MessageFilter(provider="acme", provider_message_id="m-a")) == ["m-a"]
    assert set(await pids(MessageFilter(to="+639170000001"))) == {"m-a", "m-c", "m-f"}
    assert set(await pids(MessageFilter(status=Status.DELIVERED))) == {"m-a", "m-d", "m-f"}
    assert set(await pids(MessageFilter(status=Status.DELIVERED, to="+639170000001"))) == {
        "m-a",
        "m-f",
    }
    assert await pids(MessageFilter(status=Status.EXPIRED)) == []
    assert await pids(MessageFilter(client_reference="order-1")) == []
    window = MessageFilter(
        provider="acme", since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3)
    )
    assert await pids(window) == ["m-c", "m-b"]  # since inclusive, until exclusive

    # Keyset pagination: pages of two, continued from the last item's position.
    pages: list[list[str]] = []
    after: Position | None = None
    while True:
        page = await store.find_messages(MessageFilter(), 2, after)
        if not page:
            break
        pages.append([m.id for m in page])
        after = Position(created_at=to_text(page[-1].created_at), id=page[-1].id)
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    assert [i for p in pages for i in p] == [m.id for m in everything]

    # Pagination composes with a filter.
    first = await store.find_messages(MessageFilter(provider="acme"), 4, None)
    rest = await store.find_messages(
        MessageFilter(provider="acme"),
        10,
        Position(created_at=to_text(first[-1].created_at), id=first[-1].id),
    )
    assert [m.provider_message_id for m in rest] == ["m-b", "m-a"]

    record = await store.get_message(everything[0].id)
    assert record == everything[0]
    assert await store.get_message("msg_nonexistent") is None


async def test_message_events_are_oldest_first(store):
    received = T0 + timedelta(hours=1)
    # Arrival order differs from occurrence order; two share an occurrence time.
    await store.ingest(
        "acme",
        raw(received_at=received),
        [report("ev-c", "m-timeline", "delivered", occurred_at=T0 + timedelta(seconds=30))],
    )
    await store.ingest(
        "acme",
        raw(received_at=received + timedelta(seconds=1)),
        [
            report("ev-b", "m-timeline", "sent", occurred_at=T0 + timedelta(seconds=10)),
            report("ev-a", "m-timeline", "queued", occurred_at=T0 + timedelta(seconds=10)),
        ],
    )
    await store.ingest(
        "acme",
        raw(received_at=received - timedelta(seconds=1)),
        [report("ev-z", "m-timeline", "buffered", occurred_at=T0 + timedelta(seconds=10))],
    )
    await store.ingest(
        "acme",
        raw(received_at=received + timedelta(seconds=2)),
        [report("ev-0", "m-timeline", "PENDING_WEIRD", occurred_at=T0)],
    )
    message = await only(store, "m-timeline")
    timeline = await store.message_events(message.id)
    assert [e.event_id for e in timeline] == ["ev-0", "ev-z", "ev-a", "ev-b", "ev-c"]
    assert [e.status for e in timeline] == [
        None,
        Status.BUFFERED,
        Status.QUEUED,
        Status.SENT,
        Status.DELIVERED,
    ]
    assert timeline[0].provider_status == "PENDING_WEIRD"
    assert [e.outcome for e in timeline] == [
        "superseded",
        "superseded",
        "superseded",
        "superseded",
        "applied",
    ]
    assert all(e.deliveries == 1 for e in timeline)
    assert timeline[-1].received_at == received
    assert message.status == Status.DELIVERED
    assert message.report_count == 5
    assert await store.message_events("msg_nonexistent") == []


# --------------------------------------------------------------------------- staff


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def test_staff_add_list_revoke_and_lookup(store, store_url):
    alice = await store.add_staff("alice", "admin", token_hash("t-alice"))
    bob = await store.add_staff("bob", "viewer", token_hash("t-bob"))
    assert (alice.name, alice.role, alice.revoked_at) == ("alice", "admin", None)
    assert alice.id != bob.id
    assert abs(alice.created_at - datetime.now(UTC)) < timedelta(seconds=60)

    found = await store.staff_by_token_hash(token_hash("t-bob"))
    assert found is not None and (found.id, found.name, found.role) == (bob.id, "bob", "viewer")
    assert await store.staff_by_token_hash(token_hash("t-nobody")) is None

    with pytest.raises(Conflict):
        await store.add_staff("alice", "viewer", token_hash("t-alice-2"))
    with pytest.raises(Conflict):  # a token hash is unique too
        await store.add_staff("carol", "viewer", token_hash("t-bob"))
    with pytest.raises(Conflict):  # and so is the role list
        await store.add_staff("dave", "superuser", token_hash("t-dave"))

    assert await store.revoke_staff("alice") is True
    assert await store.revoke_staff("alice") is False
    assert await store.revoke_staff("nobody") is False
    assert await store.staff_by_token_hash(token_hash("t-alice")) is None

    again = await store.add_staff("alice", "viewer", token_hash("t-alice-3"))
    assert again.id != alice.id
    found = await store.staff_by_token_hash(token_hash("t-alice-3"))
    assert found is not None and (found.id, found.role) == (again.id, "viewer")

    listed = await store.list_staff()
    assert [(m.name, m.role, m.revoked_at is None) for m in listed] == [
        ("alice", "viewer", True),
        ("bob", "viewer", True),
        ("alice", "admin", False),
    ]
    assert listed[2].id == alice.id and listed[2].revoked_at is not None

    # The staff writes are committed: another connection sees them.
    async with another_store(store_url) as reader:
        assert await stored_value(reader, "SELECT count(*) FROM staff") == 3
        live = "SELECT count(*) FROM staff WHERE revoked_at IS NULL"
        assert await stored_value(reader, live) == 2
        plain = "SELECT count(*) FROM staff WHERE token_hash = 't-bob'"
        assert await stored_value(reader, plain) == 0
