"""The store contract for the delivery aggregates (README "Delivery health"): they stay
equal to a recount from scratch through every kind of write: reports in any order and
redelivered, reprocess, sends and their hand-over, reports that beat the send's answer,
retention and erasure."""

from __future__ import annotations

import bisect
import random
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from conftest import queue_send

from receiver.core.delivery import LATENCY_BOUNDS, summarize
from receiver.core.network import country_of
from receiver.core.reports import Report
from receiver.core.status import Status
from receiver.records import MessageFilter, RawRequest
from receiver.store import open_store
from receiver.store.base import from_text, migrations
from receiver.store.sql import SqlStore
from receiver.store.sqlite import COUNTRY_VERSION, _statements, migrate
from receiver.store.tx import SQLITE

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
NUMBERS = ["+639171234567", "+447700900123", "+14155550100", None]
NETWORKS = ["515-02", "515-03", "234-10", None]
WORDS = [Status.SENT, Status.BUFFERED, Status.DELIVERED, Status.UNDELIVERED, Status.EXPIRED]


def raw(at: datetime) -> RawRequest:
    return RawRequest(path="/webhooks/acme", body=b"{}", received_at=at)


async def recount(store: SqlStore, table: str) -> Counter[tuple[object, ...]]:
    """An aggregate recomputed from the messages in Python (not the triggers' SQL, and
    the latency from the timestamps, not the stored bucket): status counts for
    ``delivery_*``, per-bucket counts for ``latency_*``."""
    width = 13 if table.endswith("_hourly") else 10
    counts: Counter[tuple[object, ...]] = Counter()
    for m in await store.select("SELECT * FROM messages"):
        group = (m["created_at"][:width], m["provider"], m["country"] or "", m["network"] or "")
        if table.startswith("delivery_"):
            counts[(*group, m["status"] or "")] += 1
        elif m["status"] == "delivered" and m["sent_at"]:
            changed, sent = from_text(m["status_changed_at"]), from_text(m["sent_at"])
            seconds = round((changed - sent).total_seconds(), 3)
            bucket = min(bisect.bisect_left(LATENCY_BOUNDS, seconds), len(LATENCY_BOUNDS) - 1)
            counts[(*group, bucket)] += 1
    return counts


GROUP = ("period", "provider", "country", "network")
BUCKETS = tuple(f"l{bucket}" for bucket in range(len(LATENCY_BOUNDS)))
SHARD = {"shard"}
"""PostgreSQL keeps each aggregate row per writer's shard (schema.sql): summed here, as
the readers sum them."""


async def kept(store: SqlStore, table: str) -> Counter[tuple[object, ...]]:
    """What the triggers kept, in the same shape (zero counts left out)."""
    counts: Counter[tuple[object, ...]] = Counter()
    for row in await store.select(f"SELECT * FROM {table}"):
        group = tuple(row[name] for name in GROUP)
        if table.startswith("delivery_"):
            assert set(row) - SHARD == {*GROUP, "status", "messages"}
            counts[(*group, row["status"])] += row["messages"]
        else:
            assert set(row) - SHARD == {*GROUP, *BUCKETS}
            for bucket, name in enumerate(BUCKETS):
                counts[(*group, bucket)] += row[name]
    return +counts


TABLES = ("delivery_hourly", "delivery_daily", "latency_hourly", "latency_daily")


async def assert_aggregates_match(store: SqlStore) -> None:
    for table in TABLES:
        assert await kept(store, table) == await recount(store, table), table


def random_reports(rng: random.Random, messages: int) -> list[Report]:
    reports = []
    for n in range(messages):
        to = rng.choice(NUMBERS)
        start = T0 + timedelta(minutes=rng.randrange(0, 3000))
        for k in range(rng.randint(1, 4)):
            word = rng.choice(WORDS)
            reports.append(
                Report(
                    event_id=f"evt-{n}-{k}",
                    provider_message_id=f"pm-{n}",
                    status=word,
                    provider_status=word.value,
                    occurred_at=start + timedelta(seconds=rng.randrange(0, 4000)),
                    to=to,
                    network=rng.choice(NETWORKS),
                )
            )
    return reports


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_reports_in_any_order_keep_the_aggregates_exact(store, seed):
    rng = random.Random(seed)
    reports = random_reports(rng, 60)
    rng.shuffle(reports)
    for start in range(0, len(reports), 7):
        batch = reports[start : start + 7]
        received = T0 + timedelta(hours=rng.randrange(0, 72), minutes=rng.randrange(60))
        await store.ingest("acme", raw(received), batch)
        await store.ingest("acme", raw(received), batch[:2])  # redelivered: no change
    await assert_aggregates_match(store)
    # The aggregates and the messages agree on one figure the API serves.
    cells = await store.delivery_cells(T0 - timedelta(days=1), T0 + timedelta(days=5), (), None)
    (row,) = summarize(cells, (), None)
    assert row["messages"] == 60


async def test_reprocess_moves_one_count(store):
    at = T0 + timedelta(minutes=5)
    sent = Report("e1", "pm-1", Status.SENT, "sent", T0, to="+639171234567")
    failed = Report("e2", "pm-1", Status.UNDELIVERED, "undelivered", at, network="515-02")
    await store.ingest("acme", raw(at), [sent, failed])
    stored = (
        await store.message_events((await store.find_messages(MessageFilter(), 1, None))[0].id)
    )[1]
    request = await store.raw_request_for_event("acme", stored.event_id)
    assert request is not None
    corrected = Report("e2", "pm-1", Status.DELIVERED, "delivered", at, network="515-02")
    await store.reprocess("acme", request, [corrected])
    await assert_aggregates_match(store)
    cells = await store.delivery_cells(T0, T0 + timedelta(hours=1), ("country",), "1h")
    (row,) = summarize(cells, ("country",), "1h")
    assert row["by_status"] == {"delivered": 1}
    assert row["country"] == "PH"
    assert row["delivery_rate"] == 1.0
    assert row["latency_seconds"]["p50"] == 300  # 5 minutes, a bound of the histogram


async def test_sends_hand_over_merges_and_retention_keep_the_aggregates_exact(store):
    message_id = await queue_send(
        store, "acme", "+639171234567", "hello", sender="ACME", now=T0, client_id="stf_client"
    )
    # A report beats the provider's answer: it creates a message the send then absorbs.
    early = Report("d1", "prov-1", Status.DELIVERED, "delivered", T0 + timedelta(seconds=9))
    await store.ingest("acme", raw(T0 + timedelta(seconds=10)), [early])
    (item,) = await store.claim_outbox("w", T0, 30, 10)
    assert await store.outbox_sent(item, "w", "prov-1", "accepted", T0 + timedelta(seconds=2))
    record = await store.get_message(message_id)
    assert record is not None and record.status is Status.DELIVERED
    assert record.country == country_of("+639171234567") == "PH"
    await assert_aggregates_match(store)
    cells = await store.delivery_cells(T0, T0 + timedelta(hours=1), ("provider",), None)
    (row,) = summarize(cells, ("provider",), None)
    assert row == {
        "provider": "acme",
        "messages": 1,
        "by_status": {"delivered": 1},
        "pending": 0,
        "delivery_rate": 1.0,
        "latency_seconds": {"p50": 8.0, "p90": 8.0, "p99": 8.0},  # 7 s: bucket (6, 8]
    }
    await store.erase_recipient("+639171234567", "test", T0 + timedelta(days=1))
    await assert_aggregates_match(store)
    assert (await store.get_message(message_id)).country == "PH"  # type: ignore[union-attr]
    await store.prune_messages(T0 + timedelta(days=30), T0 + timedelta(days=30), 100)
    await assert_aggregates_match(store)
    cells = await store.delivery_cells(T0, T0 + timedelta(hours=1), (), None)
    assert {cell.messages for cell in cells.statuses} == {0}  # the rows stay, at 0
    assert [sum(cell.counts) for cell in cells.latencies] == [0]
    assert summarize(cells, (), None) == []


async def test_the_batch_id_finds_every_message_of_a_sinch_batch(store):
    batch = "01W4FFL35P4NC4K35SMSBATCH9"
    reports = [
        Report(f"s{n}", f"{batch}:{to}", Status.DELIVERED, "Delivered", T0, to=to)
        for n, to in enumerate(["+639171234567", "+447700900123"])
    ]
    others = [Report("o1", batch + "0:+14155550100", Status.DELIVERED, "Delivered", T0)]
    await store.ingest("sinch", raw(T0), [*reports, *others])
    found = await store.find_messages(MessageFilter(provider_message_id=batch), 10, None)
    assert sorted(m.provider_message_id or "" for m in found) == sorted(
        r.provider_message_id for r in reports
    )
    exact = await store.find_messages(
        MessageFilter(provider_message_id=f"{batch}:+639171234567"), 10, None
    )
    assert len(exact) == 1


async def test_migrating_gives_earlier_messages_their_country(tmp_path):
    """SQLite only (its files from before ``country``): a message stored before
    ``country`` existed gets it in the migration, and the aggregates count it there."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for version, sql in migrations(SQLITE):
        if version < COUNTRY_VERSION:
            for statement in _statements(sql):
                conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (?)", (COUNTRY_VERSION - 1,))
    conn.execute(
        "INSERT INTO messages (id, provider, to_number, status, created_at, updated_at)"
        " VALUES ('msg_1', 'acme', '+639171234567', 'delivered', ?, ?)",
        ("2026-12-05T09:00:00.000000Z",) * 2,
    )
    assert migrate(conn) >= COUNTRY_VERSION
    assert conn.execute("SELECT country FROM messages").fetchone() == ("PH",)
    conn.close()
    migrated = open_store(f"sqlite:///{path}")
    await migrated.open(ingest=False)
    try:
        await assert_aggregates_match(migrated)
    finally:
        await migrated.close()
