"""The PostgreSQL backend against the machine's PostgreSQL: PgTx, the schema and its
migration, the group commit (isolation, races, outages) and the change feed's cursor.
Each test has a database of its own (``postgres_url``)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from conftest import until

from receiver.core.reports import Report
from receiver.core.status import parse_status
from receiver.errors import Conflict, StoreUnavailable
from receiver.store.base import migrations, to_text
from receiver.store.ingest import insert_event
from receiver.store.postgres import PgBackend, PgTx, migrate
from receiver.store.postgres.backend import LOCK_CLASS
from receiver.store.postgres.feed import changes_after
from receiver.store.postgres.tx import numbered, rowcount
from receiver.store.sqlite import migrate as sqlite_migrate
from receiver.store.tx import POSTGRESQL, SQLITE, SqliteTx, Tx

NEWEST = migrations(POSTGRESQL)[-1][0]


@pytest.fixture
async def backend(postgres_url: str) -> AsyncIterator[PgBackend]:
    store = PgBackend(postgres_url)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def conn(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, beside the backend's."""
    connection = await asyncpg.connect(postgres_url)
    yield connection
    await connection.close()


def erasure(ident: str) -> tuple[str, ...]:
    return (ident, "2026-12-06T00:00:00.000000Z", "test")


INSERT_ERASURE = (
    "INSERT INTO erasures (id, erased_at, requested_by, messages, raw_requests)"
    " VALUES (?, ?, ?, 0, 0)"
)


async def erasure_ids(backend: PgBackend) -> list[str]:
    async def read(tx: Tx) -> list[str]:
        return [row["id"] for row in await tx.rows("SELECT id FROM erasures ORDER BY id")]

    ids: list[str] = await backend.read(read)
    return ids


# --------------------------------------------------------------------------- PgTx


def test_placeholders_are_numbered_outside_literals_names_and_comments() -> None:
    sql = "SELECT ?, 'it''s ?', \"odd ?\" -- a ? here\nFROM t /* ? */ WHERE a = ? AND b = '?'"
    assert numbered(sql) == (
        "SELECT $1, 'it''s ?', \"odd ?\" -- a ? here\nFROM t /* ? */ WHERE a = $2 AND b = '?'"
    )
    assert numbered("SELECT 1") == "SELECT 1"


def test_rowcount_comes_from_the_command_status() -> None:
    assert [rowcount(s) for s in ("INSERT 0 3", "UPDATE 2", "DELETE 0", "BEGIN")] == [3, 2, 0, 0]


async def test_pgtx_runs_the_rules_statements_with_values_as_sqlite_takes_them(
    conn: asyncpg.Connection,
) -> None:
    await conn.execute("CREATE TABLE t (name TEXT, n INTEGER, body BYTEA)")
    tx = PgTx(conn)
    # SQLite converts by the column's affinity; PostgreSQL here does the same.
    assert await tx.run("INSERT INTO t (name, n, body) VALUES (?, ?, ?)", (7, "8", "text")) == 1
    await tx.run_many(
        "INSERT INTO t (name, n, body) VALUES (?, ?, ?)",
        [("a", True, b"\x00\xff"), ("b", 2, memoryview(b"mv"))],
    )
    rows = await tx.rows("SELECT name, n, body FROM t ORDER BY name")
    assert [tuple(row) for row in rows] == [
        ("7", 8, b"text"),
        ("a", 1, b"\x00\xff"),
        ("b", 2, b"mv"),
    ]
    row = await tx.row("SELECT * FROM t WHERE n = ?", (2,))
    assert row is not None and row["name"] == "b" and row[1] == 2
    assert await tx.row("SELECT * FROM t WHERE n = ?", (99,)) is None
    assert await tx.value("SELECT count(*) FROM t WHERE name <> ?", ("?",)) == 3
    assert await tx.value("SELECT n FROM t WHERE name = ?", ("none",)) is None
    assert await tx.run("UPDATE t SET n = n + 1 WHERE n < ?", ("5",)) == 2
    assert await tx.run("DELETE FROM t WHERE name = ?", ("a",)) == 1


async def test_a_value_that_is_no_number_is_still_refused(conn: asyncpg.Connection) -> None:
    await conn.execute("CREATE TABLE t (n INTEGER)")
    with pytest.raises(asyncpg.DataError):
        await PgTx(conn).run("INSERT INTO t (n) VALUES (?)", ("eight",))


# --------------------------------------------------------------------------- schema


def test_each_dialect_has_rising_versions_and_the_same_newest() -> None:
    for dialect in (SQLITE, POSTGRESQL):
        versions = [version for version, _ in migrations(dialect)]
        assert versions == sorted(set(versions)), dialect
    assert migrations(SQLITE)[-1][0] == NEWEST


PG_ONLY_COLUMNS = {("changes", "position")} | {
    (table, "shard")
    for table in ("delivery_hourly", "delivery_daily", "latency_hourly", "latency_daily")
}


@pytest.fixture
def lite() -> Iterator[sqlite3.Connection]:
    """An in-memory SQLite database with the SQLite store's schema."""
    with contextlib.closing(sqlite3.connect(":memory:", isolation_level=None)) as lite:
        sqlite_migrate(lite)
        yield lite


async def test_the_postgresql_schema_has_sqlites_tables_columns_and_indexes(
    conn: asyncpg.Connection, lite: sqlite3.Connection
) -> None:
    tables = [
        name
        for (name,) in lite.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    sqlite_columns = {
        table: [row[1] for row in lite.execute(f"PRAGMA table_info({table})")] for table in tables
    }
    sqlite_indexes = {
        name
        for (name,) in lite.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
    }
    assert await migrate(conn) == NEWEST
    pg_columns: dict[str, list[str]] = {}
    for row in await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
    ):
        if (row["table_name"], row["column_name"]) not in PG_ONLY_COLUMNS:
            pg_columns.setdefault(row["table_name"], []).append(row["column_name"])
    assert pg_columns.pop("change_positions") == ["position"]  # the feed's (feed.py)
    assert pg_columns == sqlite_columns
    pg_indexes = {
        row["indexname"]
        for row in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            " AND indexname NOT LIKE '%pkey' AND indexname NOT LIKE '%key'"
        )
    }
    assert pg_indexes - {"changes_by_position", "changes_to_sequence"} == sqlite_indexes


async def test_processes_migrating_at_once_apply_each_section_once(postgres_url: str) -> None:
    conns = [await asyncpg.connect(postgres_url) for _ in range(4)]
    try:
        assert await asyncio.gather(*(migrate(c) for c in conns)) == [NEWEST] * 4
        assert await conns[0].fetch("SELECT version FROM schema_version") == [(NEWEST,)]
        assert await migrate(conns[0]) == NEWEST  # and again: nothing to do
    finally:
        for c in conns:
            await c.close()


async def write_messages(tx: Tx) -> None:
    """Messages created, moved on, given a latency, moved to another hour and deleted:
    every path of the aggregates' triggers, in SQL both databases run."""
    insert = (
        "INSERT INTO messages (id, provider, status, country, network, latency_bucket,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    hour = "2026-12-05T14:00:00.000000Z"
    await tx.run_many(
        insert,
        [
            ("m1", "p", "sent", "GB", None, None, hour, hour),
            ("m2", "p", "sent", "GB", "234-10", None, hour, hour),
            ("m3", "q", None, None, None, None, hour, hour),
            ("m4", "p", "delivered", "GB", None, 7, hour, hour),
        ],
    )
    await tx.run("UPDATE messages SET status = 'delivered', latency_bucket = 3 WHERE id = 'm1'")
    await tx.run("UPDATE messages SET status = 'failed' WHERE id = 'm2'")
    await tx.run("UPDATE messages SET latency_bucket = 48 WHERE id = 'm4'")
    await tx.run("UPDATE messages SET created_at = '2026-12-06T01:00:00.000000Z' WHERE id = 'm3'")
    await tx.run("UPDATE messages SET report_count = 5 WHERE id = 'm2'")  # no count moves
    await tx.run("DELETE FROM messages WHERE id = 'm1'")


async def aggregates(tx: Tx) -> dict[str, list[tuple[Any, ...]]]:
    """Every aggregate table summed over anything but its groups (PostgreSQL's shards)."""
    latency = ", ".join(f"sum(l{i})" for i in range(49))
    found = {}
    for size in ("hourly", "daily"):
        rows = await tx.rows(
            "SELECT period, provider, country, network, status, sum(messages)"
            f" FROM delivery_{size} GROUP BY 1, 2, 3, 4, 5 HAVING sum(messages) <> 0"
            " ORDER BY 1, 2, 3, 4, 5"
        )
        found[f"delivery_{size}"] = [tuple(row) for row in rows]
        rows = await tx.rows(
            f"SELECT period, provider, country, network, {latency} FROM latency_{size}"
            " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
        )
        found[f"latency_{size}"] = [tuple(row) for row in rows if any(row[4:])]
    return found


async def test_the_aggregate_triggers_count_as_sqlites(
    conn: asyncpg.Connection, lite: sqlite3.Connection
) -> None:
    await write_messages(SqliteTx(lite))
    expected = await aggregates(SqliteTx(lite))
    assert expected["delivery_hourly"] and expected["latency_daily"]  # the test has teeth

    await migrate(conn)
    async with conn.transaction():
        await write_messages(PgTx(conn))
    assert await aggregates(PgTx(conn)) == expected


# --------------------------------------------------------------------------- group commit


async def test_concurrent_writes_share_commits_and_a_failing_job_undoes_only_its_own(
    postgres_url: str,
) -> None:
    commits: list[int] = []
    store = PgBackend(postgres_url, on_commit=lambda reports, seconds: commits.append(reports))
    await store.open()
    try:

        def insert(ident: str) -> Any:
            async def work(tx: Tx) -> str:
                await tx.run(INSERT_ERASURE, erasure(ident))
                return ident

            return work

        async def refused(tx: Tx) -> None:
            await tx.run(INSERT_ERASURE, erasure("refused"))
            raise Conflict("refused on purpose")

        async def bug(tx: Tx) -> None:
            await tx.run(INSERT_ERASURE, erasure("bug"))
            await tx.run("SELECT no_such_column FROM erasures")

        idents = [f"e{i:03}" for i in range(200)]
        jobs = [store.write(insert(ident), reports=1) for ident in idents]
        jobs[50:50] = [store.write(refused), store.write(bug)]
        results = await asyncio.gather(*jobs, return_exceptions=True)

        assert isinstance(results[50], Conflict)
        assert isinstance(results[51], StoreUnavailable)
        assert results[:50] + results[52:] == idents
        assert await erasure_ids(store) == idents
        assert sum(commits) == 200
        assert len(commits) < 200  # jobs waiting together were committed together
    finally:
        await store.close()


async def test_a_unique_key_raced_by_another_process_runs_the_batch_again(
    backend: PgBackend, conn: asyncpg.Connection
) -> None:
    async def insert_once(tx: Tx) -> str:
        if await tx.value("SELECT 1 FROM erasures WHERE id = ?", ("raced",)):
            return "found"
        await tx.run(INSERT_ERASURE, erasure("raced"))
        return "inserted"

    async def bystander(tx: Tx) -> None:
        await tx.run(INSERT_ERASURE, erasure("bystander"))

    other = conn.transaction()
    await other.start()
    await conn.execute(
        "INSERT INTO erasures (id, erased_at, requested_by, messages, raw_requests)"
        " VALUES ('raced', 'then', 'other', 0, 0)"
    )
    jobs = asyncio.gather(backend.write(bystander), backend.write(insert_once))
    # The writer's INSERT waits on the other transaction's uncommitted key...
    await until(lambda: waiting_on_a_lock(conn), "the writer waits for the other insert")
    await other.commit()  # ...which then wins: the writer's batch runs again
    assert await jobs == [None, "found"]
    assert await erasure_ids(backend) == ["bystander", "raced"]
    assert await conn.fetchval("SELECT requested_by FROM erasures WHERE id = 'raced'") == "other"


async def test_a_message_another_process_creates_meanwhile_takes_the_report_in_the_same_batch(
    backend: PgBackend, conn: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    """Sent and delivered of one new message reach two processes at once: the second
    INSERT waits for the first's commit, does nothing, and its report merges into the
    row the first wrote (its batch is not run again)."""
    caplog.set_level(logging.INFO, "receiver.store")
    sent_at = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)

    def report(event_id: str, word: str, minute: int) -> Report:
        return Report(
            event_id=event_id,
            provider_message_id="pm-raced",
            status=parse_status(word),
            provider_status=word,
            occurred_at=sent_at + timedelta(minutes=minute),
        )

    async def apply(tx: Tx, event: Report) -> str:
        return await insert_event(tx, "acme", None, to_text(sent_at), event, source="lookup")

    other = conn.transaction()
    await other.start()
    await insert_event(PgTx(conn), "acme", None, to_text(sent_at), report("e-sent", "sent", 0))
    job = asyncio.ensure_future(
        backend.write(functools.partial(apply, event=report("e-dlr", "delivered", 1)))
    )
    await until(lambda: waiting_on_a_lock(conn), "the writer's INSERT waits for the other's")
    await other.commit()
    assert await job == "applied"
    [message] = await conn.fetch("SELECT id, status, report_count FROM messages")
    assert (message["status"], message["report_count"]) == ("delivered", 2)
    events = await conn.fetch("SELECT event_id, message_id FROM events ORDER BY event_id")
    assert [(e["event_id"], e["message_id"]) for e in events] == [
        ("e-dlr", message["id"]),
        ("e-sent", message["id"]),
    ]
    seqs = await conn.fetch("SELECT seq, status FROM changes ORDER BY seq")
    assert [tuple(row) for row in seqs] == [(1, "sent"), (2, "delivered")]
    assert "lost a race" not in caplog.text


async def waiting_on_a_lock(conn: asyncpg.Connection) -> bool:
    """True once the backend's writer waits for a lock (seen from ``conn``, even inside
    a transaction: the statistics snapshot is cleared first)."""
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    waiting: bool = await conn.fetchval(
        "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = 'receiver writer' AND wait_event_type = 'Lock'"
    )
    return waiting


async def test_a_deadlock_with_another_process_runs_the_batch_again(
    backend: PgBackend, conn: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "receiver.store")
    for ident in ("a", "b"):
        await PgTx(conn).run(INSERT_ERASURE, erasure(ident))

    async def b_then_a(tx: Tx) -> None:
        await tx.run("UPDATE erasures SET messages = messages + 1 WHERE id = 'b'")
        await tx.run("UPDATE erasures SET messages = messages + 1 WHERE id = 'a'")

    # The writer's session looks for deadlocks first (1 s), so it is the victim.
    await conn.execute("SET deadlock_timeout = '60s'")
    other = conn.transaction()
    await other.start()
    await conn.execute("UPDATE erasures SET raw_requests = 1 WHERE id = 'a'")
    job = asyncio.ensure_future(backend.write(b_then_a))
    await until(lambda: waiting_on_a_lock(conn), "the writer holds b and waits for a")
    await conn.execute("UPDATE erasures SET raw_requests = 1 WHERE id = 'b'")  # a deadlock
    await other.commit()
    await job
    counts = await conn.fetch("SELECT id, messages, raw_requests FROM erasures ORDER BY id")
    assert [tuple(row) for row in counts] == [("a", 1, 1), ("b", 1, 1)]
    assert "a batch lost a race (DeadlockDetectedError), running it again" in caplog.text


async def terminate_sessions(conn: asyncpg.Connection) -> int:
    """End every other session on the test's database, as a server restart would."""
    ended: int = await conn.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    return ended


async def test_lost_connections_fail_the_jobs_in_flight_and_the_backend_reconnects(
    backend: PgBackend, conn: asyncpg.Connection
) -> None:
    async def wait_for_the_test(tx: Tx) -> None:
        await tx.run(INSERT_ERASURE, erasure("in-flight"))
        await tx.value("SELECT pg_advisory_xact_lock(?, ?)", (LOCK_CLASS, 99))

    async def before(tx: Tx) -> None:
        await tx.run(INSERT_ERASURE, erasure("before"))

    await backend.write(before)
    await conn.execute("SELECT pg_advisory_lock($1, $2)", LOCK_CLASS, 99)
    in_flight = asyncio.gather(
        backend.write(wait_for_the_test), backend.write(before), return_exceptions=True
    )
    await until(lambda: waiting_on_a_lock(conn), "the batch waits inside its transaction")
    assert await terminate_sessions(conn) >= 1
    results = await in_flight
    assert all(isinstance(result, StoreUnavailable) for result in results), results
    await conn.execute("SELECT pg_advisory_unlock($1, $2)", LOCK_CLASS, 99)

    # The same backend, not restarted: the next writes and reads connect again. (A
    # request in the moment before the client notices its socket closed may get one
    # more 503, as it would from a restarting server.)
    async def after(tx: Tx) -> None:
        await tx.run(INSERT_ERASURE, erasure("after"))

    await until(lambda: succeeds(backend.write(after)), "a write commits again")
    await until(lambda: succeeds(backend.ping()), "the backend is ready again")
    assert await erasure_ids(backend) == ["after", "before"]
    assert backend.shard >= 1  # the new writer connection holds a shard again


async def succeeds(attempt: Any) -> bool:
    try:
        await attempt
    except StoreUnavailable:
        return False
    return True


async def test_ping_answers_while_open_and_refuses_once_closed(postgres_url: str) -> None:
    store = PgBackend(postgres_url)
    await store.open()
    await store.ping()
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.ping()


async def test_an_unreachable_server_is_a_store_unavailable_naming_no_secret() -> None:
    store = PgBackend("postgresql://someone:hunter2@127.0.0.1:1/nowhere")
    with pytest.raises(StoreUnavailable) as refused:
        await store.open()
    assert "127.0.0.1:1/nowhere" in refused.value.detail
    assert "hunter2" not in refused.value.detail


# --------------------------------------------------------------------------- change feed


async def insert_change(conn: asyncpg.Connection, message_id: str) -> int:
    ident: int = await conn.fetchval(
        "INSERT INTO changes (change_id, message_id, seq, changed_at, cause_source, message)"
        " VALUES ($1, $2, 1, '2026-12-06T00:00:00.000000Z', 'webhook', '{}') RETURNING id",
        f"chg_{message_id}",
        message_id,
    )
    return ident


async def test_a_change_committed_late_is_not_skipped_by_a_reader(
    backend: PgBackend, postgres_url: str, conn: asyncpg.Connection
) -> None:
    async def read(cursor: int) -> list[tuple[int, str]]:
        rows = await backend.transact(functools.partial(changes_after, cursor=cursor, limit=100))
        return [(row["position"], row["message_id"]) for row in rows]

    early = await asyncpg.connect(postgres_url)
    try:
        started_first = early.transaction()
        await started_first.start()
        early_id = await insert_change(early, "early")
        late_id = await insert_change(conn, "late")  # commits at once
        assert await read(0) == [(1, "late")]
        # By id, the reader would now be past "early" (a lower id), which commits next.
        assert early_id < late_id
        await started_first.commit()
        assert await read(1) == [(2, "early")]
        await insert_change(conn, "next")
        assert await read(2) == [(3, "next")]
        assert await read(0) == [(1, "late"), (2, "early"), (3, "next")]
        # A position is never given twice, even when the newest changes were pruned.
        await conn.execute("DELETE FROM changes")
        await insert_change(conn, "after-pruning")
        assert await read(3) == [(4, "after-pruning")]
    finally:
        await early.close()


async def test_readers_paging_while_writers_commit_out_of_order_see_each_change_once(
    backend: PgBackend, postgres_url: str
) -> None:
    writers = [await asyncpg.connect(postgres_url) for _ in range(4)]
    written: list[str] = []
    seen: list[str] = []
    done = asyncio.Event()

    async def write(conn: asyncpg.Connection, n: int) -> None:
        for i in range(25):
            async with conn.transaction():
                await insert_change(conn, f"w{n}-{i}")
                await asyncio.sleep(0.001 * ((n + i) % 4))  # commit in a shuffled order
            written.append(f"w{n}-{i}")

    async def follow() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            rows = await backend.transact(functools.partial(changes_after, cursor=cursor, limit=7))
            seen.extend(row["message_id"] for row in rows)
            cursor = rows[-1]["position"] if rows else cursor
            if finished and not rows:
                return

    try:
        reader = asyncio.ensure_future(follow())
        await asyncio.gather(*(write(c, n) for n, c in enumerate(writers)))
        done.set()
        await reader
    finally:
        for c in writers:
            await c.close()
    assert sorted(seen) == sorted(written)
    assert len(seen) == len(set(seen)) == 100
