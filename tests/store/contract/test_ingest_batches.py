"""The store contract for ingest batches: the requests of one group commit are applied
together (``receiver.store.ingest.apply_requests``), through the real writers (a SQLite
file, a PostgreSQL database), and give what applying them one by one gives.

Requests submitted in one event-loop iteration (``asyncio.gather``) reach the writer
together; each test checks, with the store's commit observer, that they were one batch."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from conftest import stored_value
from reports import status_report

from receiver.core.reports import Outcome, Report
from receiver.core.status import Status
from receiver.records import MessageFilter, MessageRecord, RawRequest
from receiver.store import open_store
from receiver.store.sql import SqlStore

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def report(event_id: str, message_id: str, word: str, minute: int = 0) -> Report:
    at = T0 + timedelta(minutes=minute)
    return status_report(event_id, message_id, word, at, to="+639171234567")


def raw() -> RawRequest:
    return RawRequest(path="/webhooks/acme", body=b"{}", received_at=datetime.now(UTC))


@pytest.fixture
async def batching(store_url: str) -> AsyncIterator[tuple[SqlStore, list[int]]]:
    """An open store and the report count of each batch its writer committed."""
    batches: list[int] = []
    store = open_store(store_url, on_commit=lambda reports, _: batches.append(reports))
    await store.open()
    try:
        yield store, batches
    finally:
        await store.close()


async def in_one_batch(
    store: SqlStore, batches: list[int], requests: Sequence[Sequence[Report]]
) -> list[Outcome]:
    """Ingest each request (its own job), all in one group commit."""
    batches.clear()
    outcomes = await asyncio.gather(*(store.ingest("acme", raw(), list(r)) for r in requests))
    assert batches == [sum(len(r) for r in requests)], "the requests were not one batch"
    return list(outcomes)


async def record(store: SqlStore, provider_message_id: str) -> MessageRecord:
    [found] = await store.find_messages(
        MessageFilter(provider_message_id=provider_message_id), 10, None
    )
    return found


async def seqs(store: SqlStore, provider_message_id: str) -> list[tuple[int, str | None]]:
    message = await record(store, provider_message_id)
    return [(c.seq, c.status) for c in await store.message_changes(message.id)]


def counts(outcome: Outcome) -> tuple[int, int, int]:
    return (outcome.applied, outcome.superseded, outcome.duplicates)


async def test_an_event_id_twice_in_one_batch_is_a_duplicate_the_second_time(
    batching: tuple[SqlStore, list[int]],
) -> None:
    store, batches = batching
    await store.ingest("acme", raw(), [report("known", "p0", "sent")])
    outcomes = await in_one_batch(
        store,
        batches,
        [
            [report("e1", "p1", "sent")],
            [report("e1", "p1", "sent"), report("known", "p0", "sent")],
            [report("known", "p0", "sent")],
        ],
    )
    assert [counts(o) for o in outcomes] == [(1, 0, 0), (0, 0, 2), (0, 0, 1)]
    for event_id, deliveries in (("e1", 2), ("known", 3)):
        stored = await stored_value(
            store, "SELECT deliveries FROM events WHERE event_id = ?", (event_id,)
        )
        assert stored == deliveries
    # Only the request with a new report is kept (with the first, from before).
    assert await stored_value(store, "SELECT count(*) FROM raw_requests") == 2
    assert (await record(store, "p1")).report_count == 1


JOURNEY = (("q", "queued", 0), ("s", "sent", 1), ("d", "delivered", 2), ("u", "undelivered", 3))


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1)])
async def test_a_message_s_reports_in_one_batch_give_one_record_in_any_order(
    batching: tuple[SqlStore, list[int]], order: tuple[int, ...]
) -> None:
    store, batches = batching
    steps = [JOURNEY[i] for i in order]
    first, rest = steps[:1], steps[1:]
    await store.ingest("acme", raw(), [report(f"{s}1", "p1", w, m) for s, w, m in first])
    outcomes = await in_one_batch(
        store, batches, [[report(f"{s}1", "p1", w, m)] for s, w, m in rest]
    )
    message = await record(store, "p1")
    # delivered outranks every other word: it stands whatever the order.
    assert (message.status, message.report_count) == (Status.DELIVERED, 4)
    assert sum(o.applied + o.superseded for o in outcomes) == 3
    delivered_first = first[0][1] == "delivered"
    finals = [f.status for o in outcomes for f in o.finals]
    assert finals[-1:] == ([] if delivered_first else [Status.DELIVERED])
    changes = await seqs(store, "p1")
    assert [seq for seq, _ in changes] == list(range(1, len(changes) + 1))  # no gaps
    assert changes[-1][1] == "delivered"
    # One change for the batch: the message as written, once.
    assert len(changes) == (1 if delivered_first else 2)


async def test_the_same_reports_batched_or_one_by_one_give_the_same_records(
    batching: tuple[SqlStore, list[int]],
) -> None:
    store, batches = batching
    words = [("queued", 0), ("sent", 1), ("undelivered", 3), ("expired", 3), ("sent", 2)]
    for prefix, orders in (("one", [words]), ("all", list(itertools.permutations(words))[:3])):
        for n, batch in enumerate(orders):
            requests = [
                [report(f"{prefix}{n}-{i}", f"{prefix}{n}", w, m)] for i, (w, m) in enumerate(batch)
            ]
            if prefix == "one":
                for r in requests:
                    await store.ingest("acme", raw(), r)
            else:
                await in_one_batch(store, batches, requests)
    expected = await record(store, "one0")
    for n in range(3):
        got = await record(store, f"all{n}")
        fields = ("status", "error_code", "to", "report_count", "status_changed_at", "country")
        assert [getattr(got, f) for f in fields] == [getattr(expected, f) for f in fields]


async def test_a_batch_of_new_and_known_messages(batching: tuple[SqlStore, list[int]]) -> None:
    store, batches = batching
    await store.ingest("acme", raw(), [report("k1", "known", "sent", 1)])
    outcomes = await in_one_batch(
        store,
        batches,
        [
            [report("k2", "known", "delivered", 2), report("n1", "new", "sent", 1)],
            [report("k0", "known", "queued", 0)],  # lower rank: superseded
            [report("n2", "new", "undelivered", 2), report("o1", "other", "queued", 0)],
        ],
    )
    assert [counts(o) for o in outcomes] == [(2, 0, 0), (0, 1, 0), (2, 0, 0)]
    assert [f.status for f in outcomes[0].finals] == [Status.DELIVERED]
    assert [f.status for f in outcomes[2].finals] == [Status.UNDELIVERED]
    assert (await record(store, "known")).report_count == 3
    assert await seqs(store, "known") == [(1, "sent"), (2, "delivered")]
    assert await seqs(store, "new") == [(1, "undelivered")]
    assert await seqs(store, "other") == [(1, "queued")]
    known = await record(store, "known")
    timeline = await store.message_events(known.id)
    assert sorted((e.event_id, e.outcome) for e in timeline) == [
        ("k0", "superseded"),
        ("k1", "applied"),
        ("k2", "applied"),
    ]
