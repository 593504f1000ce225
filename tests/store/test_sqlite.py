"""What only the SQLite backend does (no HTTP): a fresh file's schema and WAL, racing
openers, file modes, a commit failing behind another connection's lock. The behaviour
every backend shares is the store contract, tests/store/contract."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import stat
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from contract.test_ingest_and_lookups import NEWEST, raw, report

from receiver.core.reports import Outcome
from receiver.core.status import Status
from receiver.errors import Conflict, StoreUnavailable
from receiver.records import MessageFilter, MessageRecord
from receiver.store.base import migrations
from receiver.store.sqlite import SqliteStore, migrate
from receiver.store.tx import SQLITE, Tx, Work


@contextlib.contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A brand-new connection of our own, closed afterwards."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


def count(path: Path, sql: str, params: tuple[object, ...] = ()) -> int:
    with connect(path) as conn:
        return int(conn.execute(sql, params).fetchone()[0])


async def only(store: SqliteStore, provider_message_id: str) -> MessageRecord:
    found = await store.find_messages(
        MessageFilter(provider_message_id=provider_message_id), 10, None
    )
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "data" / "receiver.db")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


# --------------------------------------------------------------------------- schema


async def test_open_migrates_a_fresh_file_to_the_newest_version_in_wal_mode(tmp_path):
    path = tmp_path / "fresh.db"
    first = SqliteStore(path)
    await first.open()
    await first.close()
    with connect(path) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert versions == [NEWEST]
    assert {"schema_version", "messages", "raw_requests", "events", "staff"} <= tables
    assert journal == "wal"


def test_two_openers_migrating_a_fresh_file_at_once_both_succeed(tmp_path):
    """E.g. ``receiver serve`` and ``receiver staff add`` started together on a new file.

    Both read schema version 0 while a third connection holds the write lock (WAL lets
    them read); when it lets go, one migrates and the other must then find the schema
    in place rather than try to create it again.
    """
    path = tmp_path / "race.db"
    errors: list[BaseException] = []

    def open_and_close() -> None:
        async def run() -> None:
            store = SqliteStore(path)
            await store.open(ingest=False)
            await store.close()

        try:
            asyncio.run(run())
        except BaseException as exc:
            errors.append(exc)

    with connect(path) as lock:
        assert lock.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
        lock.execute("BEGIN EXCLUSIVE")
        openers = [threading.Thread(target=open_and_close) for _ in range(2)]
        for opener in openers:
            opener.start()
        time.sleep(1)  # both have read the version and wait for the write lock
        lock.execute("ROLLBACK")
    for opener in openers:
        opener.join(timeout=30)
    assert errors == []
    assert count(path, "SELECT count(*) FROM schema_version") == 1
    assert count(path, "SELECT max(version) FROM schema_version") == NEWEST


async def test_the_database_file_is_private_to_the_service_user(tmp_path):
    path = tmp_path / "nested" / "dir" / "private.db"
    store = SqliteStore(path)
    await store.open()
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        await store.ingest("acme", raw(), [report("e-private", "m-private")])
        for name in (path.name, path.name + "-wal", path.name + "-shm"):
            assert stat.S_IMODE((path.parent / name).stat().st_mode) == 0o600, name
    finally:
        await store.close()


# --------------------------------------------------------------------------- ingest


async def test_a_failed_commit_rolls_everything_back_and_a_retry_succeeds(store):
    await store.ingest("acme", raw(), [report("before", "m-before", "sent")])
    first = [report("locked-1", "m-locked", "delivered"), report("locked-2", "m-new", "sent")]
    second = [report("locked-3", "m-before", "delivered")]

    with connect(store.path) as lock:
        lock.execute("BEGIN EXCLUSIVE")
        results = await asyncio.wait_for(
            asyncio.gather(
                store.ingest("acme", raw(), first),
                store.ingest("acme", raw(), second),
                return_exceptions=True,
            ),
            20,
        )
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert all(r.retry_after > 0 for r in results if isinstance(r, StoreUnavailable))
        # Readers still work beside the lock (WAL), and see nothing of the failed batch.
        assert count(store.path, "SELECT count(*) FROM events WHERE event_id LIKE 'locked%'") == 0
        lock.execute("ROLLBACK")

    assert count(store.path, "SELECT count(*) FROM events WHERE event_id LIKE 'locked%'") == 0
    assert count(store.path, "SELECT count(*) FROM messages") == 1
    assert count(store.path, "SELECT count(*) FROM raw_requests") == 1
    before = await only(store, "m-before")
    assert (before.status, before.report_count) == (Status.SENT, 1)

    await store.ping()  # ready again once the lock is gone
    assert await store.ingest("acme", raw(), first) == Outcome(received=2, applied=2)
    assert await store.ingest("acme", raw(), second) == Outcome(received=1, applied=1)
    after = await only(store, "m-before")
    assert (after.status, after.report_count) == (Status.DELIVERED, 2)
    assert count(store.path, "SELECT count(*) FROM events") == 4


async def test_a_job_that_raises_undoes_only_its_own_writes_in_its_group_commit(store):
    """Four jobs handed over in one event-loop iteration share one group commit: a
    refusal (ReceiverError) and a bug each undo their own writes; the others commit."""

    def writing(tag: str, error: Exception | None = None) -> Work:
        async def work(tx: Tx) -> str:
            await tx.run(
                "INSERT INTO erasures (id, erased_at, requested_by, messages, raw_requests)"
                " VALUES (?, ?, ?, 0, 0)",
                (tag, "now", "test"),
            )
            if error is not None:
                raise error
            return tag

        return work

    results = await asyncio.gather(
        store._submit(writing("kept-1")),
        store._submit(writing("refused", Conflict("no"))),
        store._submit(writing("buggy", ValueError("bug"))),
        store._submit(writing("kept-2")),
        return_exceptions=True,
    )

    assert results[0] == "kept-1" and results[3] == "kept-2"
    assert isinstance(results[1], Conflict) and isinstance(results[2], ValueError)
    with connect(store.path) as conn:
        kept = [row[0] for row in conn.execute("SELECT id FROM erasures ORDER BY id")]
    assert kept == ["kept-1", "kept-2"]


# --------------------------------------------------------------------------- migrations


async def test_migrating_version_2_keeps_events_and_allows_outbound_ones(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for version, sql in migrations(SQLITE):
        if version <= 2:
            conn.executescript(sql)
    conn.execute("INSERT INTO schema_version VALUES (2)")
    conn.execute(
        "INSERT INTO messages (id, provider, provider_message_id, created_at, updated_at)"
        " VALUES ('msg_1', 'acme', 'P-1', 't', 't')"
    )
    conn.execute("INSERT INTO raw_requests VALUES ('req_1', 'acme', 't', 'POST', '/', '{}', x'00')")
    conn.execute(
        "INSERT INTO events (provider, event_id, message_id, request_id, status,"
        " provider_status, occurred_at, received_at, last_received_at, outcome)"
        " VALUES ('acme', 'e-1', 'msg_1', 'req_1', 'sent', 'sent', 't', 't', 't', 'applied')"
    )
    assert migrate(conn) == migrations(SQLITE)[-1][0]
    assert conn.execute("SELECT event_id, source, request_id FROM events").fetchall() == [
        ("e-1", "webhook", "req_1")
    ]
    conn.close()
