"""Several processes on one PostgreSQL database: each ``PostgresStore`` here has its own
pool and writer (its own group commit), as each ``receiver serve`` process would, and
they work on the same messages at the same moment.

(Checked to fail: the outbox test when claims do not skip locked rows, 51 of 40 messages
claimed twice. The ingest test passes even without the merge's row lock: two batches
changing one message's status both write its next change ``seq``, the unique key
refuses the second, and its batch runs again on what the first committed. The lock
makes it wait instead.)"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from conftest import queue_send
from reports import status_report

from receiver.core.reports import Outcome, Report
from receiver.core.status import parse_status
from receiver.records import MessageFilter, MessageRecord, RawRequest
from receiver.store import open_store
from receiver.store.ingest import apply_request
from receiver.store.sql import SqlStore
from receiver.store.tx import Tx

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
JOURNEYS = (("accepted", "sent", "delivered"), ("sent", "failed"), ("accepted", "undelivered"))


def request(reports: list[Report]) -> RawRequest:
    return RawRequest(
        method="POST",
        path="/webhooks/acme",
        headers={"content-type": "application/json"},
        body=b'{"type": "message.status"}',
        received_at=datetime.now(UTC),
    )


def stream(messages: int, seed: int) -> list[list[Report]]:
    """Requests of one report each: every message's journey, a fifth of them delivered
    twice, all shuffled (as providers retry and race)."""
    rng = random.Random(seed)
    requests = []
    for m in range(messages):
        journey = JOURNEYS[m % len(JOURNEYS)]
        for step, word in enumerate(journey):
            event = status_report(
                f"ev-{m}-{step}",
                f"pm-{m}",
                word,
                T0 + timedelta(seconds=step),
                to=f"+63917{m:07}",
                error_code="30003" if word in ("failed", "undelivered") else None,
            )
            requests.append([event])
    requests += [list(r) for r in rng.sample(requests, len(requests) // 5)]
    rng.shuffle(requests)
    return requests


async def ingest_all(stores: list[SqlStore], requests: list[list[Report]]) -> None:
    """Post every request at once, round-robin across ``stores``."""
    await asyncio.gather(
        *(
            stores[i % len(stores)].ingest("acme", request(reports), reports)
            for i, reports in enumerate(requests)
        )
    )


def record(message: MessageRecord) -> tuple[object, ...]:
    return (
        message.provider_message_id,
        message.status,
        message.error_code,
        message.to,
        message.report_count,
        message.country,
        message.status_changed_at,
    )


async def everything(store: SqlStore) -> list[tuple[object, ...]]:
    found = await store.find_messages(MessageFilter(), 1000, None)
    return sorted(record(message) for message in found)


@pytest.fixture
async def processes(postgres_url: str) -> AsyncIterator[list[SqlStore]]:
    stores = [open_store(postgres_url) for _ in range(3)]
    for store in stores:
        await store.open()
    yield stores
    for store in stores:
        await store.close()


async def test_three_processes_ingesting_one_stream_agree_with_one_process(
    processes: list[SqlStore], tmp_path: Path
) -> None:
    requests = stream(messages=60, seed=11)
    # Every message exists first (else the processes' batches collide creating them,
    # and the retry after the collision reads what the others committed): then three
    # batches read and merge the same rows at the same moment.
    firsts = [reports for reports in requests if reports[0].event_id.endswith("-0")]
    alone = open_store(f"sqlite:///{tmp_path / 'alone.db'}")
    await alone.open()
    try:
        for reports in firsts + requests:
            await alone.ingest("acme", request(reports), reports)
        expected = await everything(alone)
        expected_stats = await alone.delivery_cells(T0, T0 + timedelta(hours=1), [], None)
    finally:
        await alone.close()

    await ingest_all(processes[:1], firsts)
    await ingest_all(processes, requests)

    assert await everything(processes[0]) == expected
    for message in await processes[1].find_messages(MessageFilter(), 1000, None):
        events = await processes[1].message_events(message.id)
        # each event id once in the processed set, with every delivery of it counted
        posted = Counter(
            r[0].event_id
            for r in firsts + requests
            if r[0].provider_message_id == message.provider_message_id
        )
        assert Counter({e.event_id: e.deliveries for e in events}) == posted
    stats = await processes[2].delivery_cells(T0, T0 + timedelta(hours=1), [], None)
    assert stats == expected_stats


async def test_two_processes_claiming_the_outbox_never_take_one_message_twice(
    processes: list[SqlStore],
) -> None:
    ids = [
        await queue_send(processes[0], "acme", f"+63917{n:07}", "hello", now=T0) for n in range(40)
    ]

    async def claim_all(store: SqlStore, owner: str) -> list[str]:
        taken: list[str] = []
        while batch := await store.claim_outbox(owner, T0 + timedelta(minutes=1), 60, 3):
            taken += [item.message_id for item in batch]
        return taken

    claimed = await asyncio.gather(*(claim_all(s, f"wkr_{i}") for i, s in enumerate(processes)))
    every = [message_id for taken in claimed for message_id in taken]
    assert sorted(every) == sorted(ids)  # each once, none left behind


async def test_a_batch_merges_into_a_message_another_process_created_meanwhile(
    processes: list[SqlStore], postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Process A has created message pm-race in its open transaction; process B's batch
    does not see it, creates it too, waits for A's commit (the unique key), then does
    nothing and merges its report into A's row: one message, both reports, changes 1
    and 2, and B's other new message as usual; without running its batch again."""
    caplog.set_level(logging.INFO, "receiver.store")
    first, second = processes[:2]
    created = asyncio.Event()
    release = asyncio.Event()

    def step(event_id: str, message: str, word: str, second_: int) -> Report:
        return status_report(event_id, message, word, T0 + timedelta(seconds=second_))

    async def create_and_hold(tx: Tx) -> Outcome:
        outcome = await apply_request(tx, "acme", request([]), [step("a1", "pm-race", "sent", 1)])
        created.set()
        await release.wait()  # A's transaction stays open
        return outcome

    held = asyncio.create_task(first._run(create_and_hold))
    await created.wait()
    reports = [step("b1", "pm-race", "delivered", 2), step("b2", "pm-other", "sent", 1)]
    merging = asyncio.create_task(second.ingest("acme", request(reports), reports))
    conn = await asyncpg.connect(postgres_url)
    try:
        for _ in range(200):  # until B's INSERT waits for A's uncommitted row
            if await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("B never waited for A")
    finally:
        await conn.close()
    release.set()
    assert (await held).applied == 1
    outcome = await merging
    assert (outcome.applied, outcome.superseded, outcome.duplicates) == (2, 0, 0)
    [message] = await second.find_messages(MessageFilter(provider_message_id="pm-race"), 10, None)
    assert (message.status, message.report_count) == (parse_status("delivered"), 2)
    changes = await second.message_changes(message.id)
    assert [(c.seq, c.previous_status, c.status) for c in changes] == [
        (1, None, parse_status("sent")),
        (2, parse_status("sent"), parse_status("delivered")),
    ]
    assert len(await second.find_messages(MessageFilter(), 10, None)) == 2
    assert "lost a race" not in caplog.text
