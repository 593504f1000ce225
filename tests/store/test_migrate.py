"""``receiver migrate``: a store built by real traffic (the app in this process, a real
subscriber on loopback, the real CLI for staff, erasure and retention) is copied, and
every table and the Store API's answers are compared between source and target."""

from __future__ import annotations

import asyncio
import contextlib
import io
import sqlite3
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import new_whsec, run_cli
from in_process import in_process_server

from receiver.cli import main
from receiver.config import load
from receiver.core.reports import Report
from receiver.core.status import Status
from receiver.providers.base import InboundRequest
from receiver.records import Looked, RawRequest, ReconcileWindow
from receiver.store import open_store
from receiver.store.base import migrations
from receiver.store.migrate import NOT_COPIED, REBUILT, TABLES, Copied, Rebuilt, migrate
from receiver.store.sql import SqlStore
from receiver.store.tx import SQLITE
from receiver.testing import TestSubscriber, standard_report, standard_request

pytestmark = pytest.mark.long_running

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
ERASED = "+639170000001"
SENDING = {
    "type": "standard",
    "secrets": [new_whsec()],
    "api_base_url": "http://127.0.0.1:9",  # closed: the send stays in the outbox
    "api_key": "test-api-key",
    "sender": "ACME",
}


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def cli(*args: str, stdin: str = "") -> int:
    """``receiver ARGS`` in this process (its output is not needed)."""
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return main(list(args))
    finally:
        sys.stdin = saved


@contextlib.asynccontextmanager
async def opened(url: str, *, ingest: bool = False) -> AsyncIterator[SqlStore]:
    store = open_store(url)
    await store.open(ingest=ingest)
    try:
        yield store
    finally:
        await store.close()


async def _backlog(url: str) -> int:
    async with opened(url) as store:
        return sum(health.backlog for health in await store.subscriber_health())


def post_reports(server: Any, event_id: str, *reports: dict[str, Any]) -> None:
    request = standard_request(server.secret(), list(reports), event_id=event_id)
    answer = server.post(request)
    assert answer.status_code == 200, answer.text


def traffic(server: Any) -> None:
    """Reports (with redeliveries), a send with an Idempotency-Key (and its replay), a
    staff member with a password, an erasure; the subscriber receives every change."""
    for n in range(6):
        pid = f"prov-{n}"
        to = ERASED if n == 5 else f"+63917555{n:04d}"
        sent = standard_report(pid, "sent", occurred_at=T0 + timedelta(minutes=n), to=to)
        post_reports(server, f"evt-{n}-sent", sent)
        final = "delivered" if n % 3 else "undelivered"
        report = standard_report(
            pid,
            final,
            occurred_at=T0 + timedelta(minutes=n, seconds=7 * n + 3),
            to=to,
            network="515-02",
            error_code=None if n % 3 else "31",
        )
        post_reports(server, f"evt-{n}-final", report)
        post_reports(server, f"evt-{n}-final", report)  # a redelivery
    waiting = standard_report("prov-waiting", "sent", occurred_at=T0, to="+639175550200")
    post_reports(server, "evt-waiting", waiting)  # no final report: the reconciler's
    both = [standard_report(f"prov-batch-{k}", "delivered", occurred_at=T0) for k in range(2)]
    post_reports(server, "evt-batch", *both)

    with server.api(server.staff_token("migrate-sender", "sender")) as api:
        body = {"to": "+639175550100", "body": "Your order is on its way", "provider": "acme"}
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        first = api.post("/v1/messages", json=body, headers=headers)
        assert first.status_code == 202, first.text
        again = api.post("/v1/messages", json=body, headers=headers)
        assert again.json()["id"] == first.json()["id"]
    config = str(server.config_path)
    assert (
        cli("staff", "passwd", "migrate-sender", "--config", config, stdin="a long passphrase\n")
        == 0
    )
    assert cli("erase", "--to", ERASED, "--by", "dpo", "--config", config) == 0
    wait_until_delivered(load(server.config_path).store_url)


def wait_until_delivered(url: str) -> None:
    deadline = time.monotonic() + 30  # a safety timeout only
    while asyncio.run(_backlog(url)):
        assert time.monotonic() < deadline, "the subscriber never got every change"
        time.sleep(0.05)


async def _after_service(config: Path) -> None:
    """What the service leaves without traffic: a reconciler's lookup row, and a message
    ingested long ago and pruned by retention (its change goes too, so the feed's
    AUTOINCREMENT counter is above the newest change left)."""
    loaded = load(config)
    async with opened(loaded.store_url, ingest=True) as store:
        now = datetime.now(UTC)
        [overdue] = await store.claim_overdue(
            "default", now + timedelta(days=1), "test-owner", now, 60, 1, ReconcileWindow()
        )
        await store.record_lookups(
            "default",
            "test-owner",
            [Looked(overdue.id, None, "pending", None, now + timedelta(minutes=5), now)],
        )
        old = now - timedelta(days=400)
        report = standard_report("prov-old", "delivered", occurred_at=old, to="+639175550999")
        request = standard_request(loaded.providers["default"].config.secrets[0], report)
        reports = loaded.providers["default"].parse(
            InboundRequest.captured(request, "http://127.0.0.1", old)
        )
        raw = RawRequest(
            path=request.path, body=request.body, headers=request.headers, received_at=old
        )
        await store.ingest("default", raw, reports)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A SQLite store as the service leaves it after real traffic (never changed by a
    test: each copies it)."""
    workdir = tmp_path_factory.mktemp("source")
    providers = {"default": {"type": "standard", "secrets": [new_whsec()]}, "acme": SENDING}
    settings = {
        "subscribers": {},
        "retention": {"raw_requests_days": 300, "messages_days": 300},
        "send_rate_limits": {"sender": {"per_second": 1000, "burst": 1000}},
    }
    with TestSubscriber() as subscriber:
        settings["subscribers"] = {"orders": subscriber.config_keys()}
        with in_process_server(workdir, settings, providers) as server:
            traffic(server)
            config = server.config_path
    asyncio.run(_after_service(config))
    assert cli("prune", "--config", str(config)) == 0
    yield load(config).sqlite_path


# --- comparing two stores ------------------------------------------------------------


AGGREGATES = ("delivery_hourly", "delivery_daily", "latency_hourly", "latency_daily")


def data_tables(path: Path) -> list[str]:
    """Every table of the SQLite store at ``path`` but its schema version and the
    aggregates (compared on their own): what the copy must carry over."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        names = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        return sorted({name for (name,) in names} - {"schema_version", *AGGREGATES})


async def table_rows(store: SqlStore, table: str) -> list[dict[str, Any]]:
    """Every row of ``table`` as column: value, in one order for every backend (the
    feed's own cursor column aside: PostgreSQL's, checked on its own)."""
    rows = await store._query(f"SELECT * FROM {table}")
    names = list(rows[0].keys()) if rows else []  # a sqlite3.Row iterates its values
    found = [{k: row[k] for k in names if k != "position"} for row in rows]
    return sorted(found, key=lambda row: repr(sorted(row.items())))


async def aggregate_rows(store: SqlStore, table: str) -> list[tuple[Any, ...]]:
    """An aggregate's counts per group, summed over shards (PostgreSQL's), groups at 0
    left out."""
    keys = "period, provider, country, network" + (", status" if "delivery" in table else "")
    counts = "sum(messages)" if "delivery" in table else ", ".join(f"sum(l{i})" for i in range(49))
    rows = await store._query(
        f"SELECT {keys}, {counts} FROM {table} GROUP BY {keys} ORDER BY {keys}"
    )
    width = len(keys.split(","))
    return [tuple(row) for row in rows if any(row[width:])]


async def store_answers(store: SqlStore) -> dict[str, Any]:
    """What the Store API says of every message: the record, its timeline, its changes
    and deliveries; and the feed from cursor 0."""
    ids = [row["id"] for row in await store._query("SELECT id FROM messages ORDER BY id")]
    return {
        "messages": [await store.get_message(i) for i in ids],
        "timelines": [await store.message_events(i) for i in ids],
        "changes": [await store.message_changes(i) for i in ids],
        "deliveries": [await store.message_deliveries(i) for i in ids],
        "feed": await store.changes_after(0, 10_000),
        "staff": await store.list_staff(),
        "health": await store.subscriber_health(),
    }


async def snapshot(url: str, tables: list[str]) -> dict[str, Any]:
    async with opened(url) as store:
        return {
            "tables": {name: await table_rows(store, name) for name in tables},
            "aggregates": {name: await aggregate_rows(store, name) for name in AGGREGATES},
            "answers": await store_answers(store),
        }


def last_change_id(path: Path) -> int:
    """The last change id the SQLite store at ``path`` ever gave (AUTOINCREMENT)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(
            conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()[0]
        )


@pytest.fixture
def target(store_url: str) -> str:
    """An empty target: a SQLite file, then a fresh PostgreSQL database (conftest)."""
    return store_url


def n_rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def migrated(source: Path, target: str, *flags: str) -> list[str]:
    """``receiver migrate`` from ``source`` to ``target``: its output lines."""
    done = run_cli("migrate", "--from", sqlite_url(source), "--to", target, *flags)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout.splitlines()


# --- the copy ------------------------------------------------------------------------


def test_every_table_and_every_answer_of_the_store_is_the_same_after_migrate(source, target):
    tables = data_tables(source)
    before = asyncio.run(snapshot(sqlite_url(source), tables))

    lines = migrated(source, target)

    after = asyncio.run(snapshot(target, tables))
    assert after == before
    rows = before["tables"]
    # Idempotency-Key claims exist only while a send is in flight: none is once the
    # traffic is done. Every other table holds rows.
    assert [name for name in tables if not rows[name]] == ["idempotency_claims"]
    assert all(before["aggregates"].values())
    assert lines[: len(TABLES)] == [f"{t.name}: {n_rows(len(rows[t.name]))} copied" for t in TABLES]
    assert lines[len(TABLES) : -1] == [
        f"{a.name}: rebuilt from the messages, {n_rows(len(before['aggregates'][a.name]))},"
        " equal to the source's"
        for a in REBUILT
    ]
    total = sum(len(table) for table in rows.values())
    assert lines[-1].startswith(f"copied {total} rows in {len(TABLES)} tables from sqlite:///")
    assert len(lines) == len(TABLES) + len(REBUILT) + 1


def test_the_traffic_reached_every_corner_of_the_source(source):
    """What the comparison above relies on: the source holds what the brief names."""
    tables = asyncio.run(snapshot(sqlite_url(source), data_tables(source)))["tables"]
    assert max(e["deliveries"] for e in tables["events"]) == 2  # a redelivery
    assert any(e["request_id"] is None for e in tables["events"])  # an outbound event
    assert [k["status_code"] for k in tables["idempotency_keys"]] == [202]
    assert any(s["password_hash"] for s in tables["staff"])
    assert {d["state"] for d in tables["change_deliveries"]} == {"delivered"}
    assert [e["requested_by"] for e in tables["erasures"]] == ["dpo"]
    assert any(m["latency_bucket"] is not None for m in tables["messages"])
    # retention pruned the newest change: the feed's counter is above every change left
    assert last_change_id(source) > max(c["id"] for c in tables["changes"])


def test_the_feed_goes_on_from_where_the_source_left_it(source, target):
    migrated(source, target)
    last = last_change_id(source)

    async def new_change() -> tuple[list[int], list[int]]:
        async with opened(target, ingest=True) as store:
            old = [change.cursor for change in await store.changes_after(0, 10_000)]
            now = datetime.now(UTC)
            report = Report("evt-after", "prov-after", Status.DELIVERED, "delivered", now)
            raw = RawRequest(path="/webhooks/default", body=b"{}", headers={}, received_at=now)
            await store.ingest("default", raw, [report])
            return old, [change.cursor for change in await store.changes_after(last, 10)]

    old, new = asyncio.run(new_change())
    assert max(old) < last
    assert len(new) == 1 and new[0] > last


def test_a_fresh_store_has_no_table_the_migration_forgets(store_url):
    listing = {
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'"
        " AND name NOT LIKE 'sqlite_%'",
        "postgresql": "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
    }

    async def tables() -> set[str]:
        async with opened(store_url) as store:
            return {row[0] for row in await store._query(listing[store._dialect.name])}

    found = asyncio.run(tables())
    copied_or_rebuilt = {t.name for t in TABLES} | {a.name for a in REBUILT}
    assert copied_or_rebuilt <= found
    assert found - copied_or_rebuilt <= set(NOT_COPIED)


# --- an interrupted copy -------------------------------------------------------------


class Interrupted(Exception):
    """Stands for whatever stops a migration half-way (a crash, a lost connection)."""


def test_an_interrupted_migration_resumes_and_ends_equal_to_the_source(source, target):
    tables = data_tables(source)
    before = asyncio.run(snapshot(sqlite_url(source), tables))
    changes = sorted(change["id"] for change in before["tables"]["changes"])
    kept = changes[: len(changes) // 2]

    def crash_in_changes(result: Copied | Rebuilt) -> None:
        if result.table == "changes":
            raise Interrupted

    async def interrupted() -> None:
        async with opened(sqlite_url(source)) as old, opened(target, ingest=True) as new:
            with pytest.raises(Interrupted):
                await migrate(old, new, on_table=crash_in_changes)
            # the batches of changes after the first half never committed
            await new._write("DELETE FROM changes WHERE id > ?", (kept[-1],))

    asyncio.run(interrupted())
    refused = run_cli("migrate", "--from", sqlite_url(source), "--to", target)
    assert refused.returncode == 2
    assert refused.stderr.endswith(
        "already holds messages (--resume continues an interrupted migration into it)\n"
    )

    lines = migrated(source, target, "--resume")

    assert asyncio.run(snapshot(target, tables)) == before
    rows = before["tables"]
    assert lines[:3] == [
        f"messages: 0 rows copied, {len(rows['messages'])} already in the target",
        f"raw_requests: 0 rows copied, {len(rows['raw_requests'])} already in the target",
        f"events: 0 rows copied, {len(rows['events'])} already in the target",
    ]
    assert (
        f"changes: {n_rows(len(changes) - len(kept))} copied, {len(kept)} already in the target"
        in lines
    )
    assert f"change_deliveries: {n_rows(len(rows['change_deliveries']))} copied" in lines


# --- refusals: one line, exit code, the target untouched ----------------------------


def refusal(*args: str) -> tuple[int, str]:
    done = run_cli("migrate", *args)
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    return done.returncode, done.stderr.strip()


def test_migrate_refuses_the_same_store_on_both_sides(source):
    same = f"sqlite:///{source.parent}/../{source.parent.name}/{source.name}"
    assert refusal("--from", sqlite_url(source), "--to", same) == (
        2,
        f"receiver: --from and --to name the same store ({sqlite_url(source)})",
    )


def test_migrate_refuses_a_missing_source(tmp_path):
    missing = sqlite_url(tmp_path / "nothing.db")
    target = tmp_path / "target.db"
    assert refusal("--from", missing, "--to", sqlite_url(target)) == (
        1,
        f"receiver: the source {missing} does not exist",
    )
    assert not target.exists()


def test_migrate_refuses_a_source_newer_than_this_receiver(source, tmp_path):
    newer = tmp_path / "newer.db"
    with (
        contextlib.closing(sqlite3.connect(source)) as old,
        contextlib.closing(sqlite3.connect(newer)) as copy,
    ):
        old.backup(copy)
        copy.execute("UPDATE schema_version SET version = 99")
        copy.commit()
    target = tmp_path / "target.db"
    code, line = refusal("--from", sqlite_url(newer), "--to", sqlite_url(target))
    newest = migrations(SQLITE)[-1][0]
    assert (code, line) == (
        1,
        f"receiver: cannot open the source {sqlite_url(newer)}: database schema version 99"
        f" is newer than this receiver ({newest})",
    )
    assert not target.exists()


def test_migrate_refuses_a_target_that_holds_messages(source, tmp_path):
    target = sqlite_url(tmp_path / "target.db")
    migrated(source, target)
    code, line = refusal("--from", sqlite_url(source), "--to", target)
    assert code == 2
    assert line == (
        f"receiver: the target {target} already holds messages (--resume continues an"
        " interrupted migration into it)"
    )


def test_migrate_refuses_a_postgresql_source_before_connecting(tmp_path):
    target = tmp_path / "target.db"
    code, line = refusal(
        "--from", "postgresql://postgres@127.0.0.1:1/x", "--to", sqlite_url(target)
    )
    assert (code, line) == (
        2,
        "receiver: the source must be a SQLite store (sqlite:///PATH); copy a PostgreSQL"
        " database with pg_dump and pg_restore",
    )
    assert not target.exists()


def test_migrate_refuses_an_unreachable_target_and_never_prints_its_password(source):
    closed = "postgresql://postgres:hunter2@127.0.0.1:1/receiver"
    code, line = refusal("--from", sqlite_url(source), "--to", closed)
    assert code == 1
    assert line.startswith(
        "receiver: cannot open the target postgresql://postgres:***@127.0.0.1:1/receiver: "
    )
    assert "hunter2" not in line
