"""The reconciler's cost (contract section 12): finding and settling the overdue set in
a large store, and lookups per second per provider type at the configured rate.

Run from the repository root in the venv (``pip install -e '.[test]'``)::

    python bench/reconcile.py            # 1,000,000 messages, 10,000 overdue; 8 types
    python bench/reconcile.py --quick    # 20,000 messages, 500 overdue (tests/bench runs it)

Theory of operation
-------------------
Store. The schema is the service's (``migrate``). ``--messages`` message rows are
inserted directly (``executemany``, ``synchronous = OFF``, a throwaway file): four
providers, created over 30 days; all but ``--overdue`` of them final (delivered or a
failure), the rest ``sent`` and unchanged for an hour, so overdue at a 60 s timeout.
Only ``messages`` rows are generated: the reconciler's queries read ``messages``,
``lookups`` and ``outbox`` (``bench/lookup.py`` builds a store through the real ingest
path, for the timelines). No ``ANALYZE`` is run: the service never runs it.

Database time of one pass. Exactly the functions the writer thread runs
(``receiver.store.reconcile.claim`` and ``record``) on one connection with the service's
pragmas (``synchronous = FULL``, WAL), one transaction per round as the reconciler does:
claim ``concurrency`` (16) overdue messages, then record what their lookups found (each
answer a ``pending`` report merged as ``source = 'lookup'``: the costliest case that
leaves the message overdue), until the pass has claimed every overdue message once. The
time is the sum over the transactions (commit and fsync included); no HTTP. The query
plans of the claim and of the console's count are printed.

Lookups per second. For each provider type with a lookup, ``--rate-messages`` overdue
messages in a real SQLite store, the real ``Reconciler`` (its pass, the outbox worker's
pacing and the type's sans-IO request and parser) against that type's fake status API on
loopback (``receiver.testing.fake_status``), with ``rate_per_second`` set; then once
more without a rate, which shows what the loopback fake and this machine allow.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from receiver.config import load  # noqa: E402
from receiver.core.reports import Report  # noqa: E402
from receiver.core.status import Status  # noqa: E402
from receiver.outbound.reconcile import Reconciler  # noqa: E402
from receiver.outbound.worker import OutboxWorker  # noqa: E402
from receiver.providers.base import Tracked, lookup_report  # noqa: E402
from receiver.records import Looked, RawRequest, ReconcileWindow  # noqa: E402
from receiver.store import reconcile  # noqa: E402
from receiver.store.base import new_id, to_text  # noqa: E402
from receiver.store.sqlite import SqliteStore, _connect, migrate  # noqa: E402
from receiver.store.tx import (  # noqa: E402
    SQLITE,
    SqliteTx,
    run_sync,
)
from receiver.testing.fake_status import (  # noqa: E402
    LOOKUP_TYPES,
    FakeStatusApi,
    provider_message_id,
)
from receiver.testing.pytest_plugin import write_config  # noqa: E402

PROVIDERS = ("twilio", "infobip", "vonage", "acme")
FINAL = ("delivered",) * 8 + ("undelivered", "failed")
CONCURRENCY = 16
TIMEOUT = timedelta(seconds=60)
TO = "+639171234567"


def build_store(path: Path, messages: int, overdue: int, seed: int) -> float:
    """``messages`` rows, ``overdue`` of them overdue; seconds it took."""
    started = time.perf_counter()
    conn = _connect(path)
    migrate(conn)
    conn.execute("PRAGMA synchronous = OFF")
    rng = random.Random(seed)
    now = datetime.now(UTC)
    overdue_at = set(rng.sample(range(messages), overdue))
    batch: list[tuple[Any, ...]] = []
    for i in range(messages):
        created = now - timedelta(seconds=rng.uniform(3600, 30 * 86400))
        waiting = i in overdue_at
        status = "sent" if waiting else rng.choice(FINAL)
        updated = now - timedelta(hours=1) if waiting else created + timedelta(seconds=20)
        row = (
            new_id("msg_"),
            PROVIDERS[i % len(PROVIDERS)],
            f"pm-{i:09d}",
            f"+6391{i % 10_000_000:08d}",
            status,
            to_text(created),
            to_text(updated),
        )
        batch.append(row)
        if len(batch) == 10_000:
            _insert(conn, batch)
            batch = []
    _insert(conn, batch)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started


def _insert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO messages (id, provider, provider_message_id, to_number, status,"
        " status_event_id, created_at, updated_at, report_count)"
        " VALUES (?, ?, ?, ?, ?, 'e', ?, ?, 1)",
        rows,
    )
    conn.execute("COMMIT")


def plans(path: Path) -> list[str]:
    conn = _connect(path)
    now = datetime.now(UTC)
    claim_sql, claim_params = reconcile.overdue_list_sql(
        SQLITE,
        "twilio",
        now - TIMEOUT,
        ReconcileWindow(started=now),
        CONCURRENCY,
        free_at=to_text(now),
    )
    count_sql, count_params = reconcile.overdue_count_sql(
        SQLITE, "twilio", now - TIMEOUT, ReconcileWindow()
    )
    lines = []
    for name, sql, params in (
        ("claim", claim_sql, claim_params),
        ("count", count_sql, count_params),
    ):
        for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params):
            lines.append(f"{name}: {row[3]}")
    conn.close()
    return lines


def one_pass(path: Path, concurrency: int) -> dict[str, Any]:
    """Claim and record every overdue message once, as the reconciler has the writer do
    it: per round one transaction that records the previous round's answers and claims
    the next round. Statement time and commit time (the fsync) apart."""
    conn = _connect(path)
    conn.row_factory = sqlite3.Row
    started = datetime.now(UTC)
    window = ReconcileWindow(started=started)
    statements = commits = statements_cpu = commits_cpu = 0.0
    claimed_total = transactions = 0
    for provider in PROVIDERS:
        previous: list[Looked] = []
        while True:
            now = datetime.now(UTC)
            t0, c0 = time.perf_counter(), time.process_time()
            conn.execute("BEGIN IMMEDIATE")
            tx = SqliteTx(conn)
            run_sync(reconcile.record(tx, provider, "bench", previous))
            claimed = run_sync(
                reconcile.claim(tx, provider, now - TIMEOUT, "bench", now, 60, concurrency, window)
            )
            t1, c1 = time.perf_counter(), time.process_time()
            conn.execute("COMMIT")
            t2, c2 = time.perf_counter(), time.process_time()
            statements += t1 - t0
            commits += t2 - t1
            statements_cpu += c1 - c0
            commits_cpu += c2 - c1
            transactions += 1
            if not claimed:
                break
            claimed_total += len(claimed)
            previous = [_pending(m.id, m.provider_message_id, now) for m in claimed]
    conn.close()
    return {
        "claimed": claimed_total,
        "transactions": transactions,
        "statements": statements,
        "commits": commits,
        "statements_cpu": statements_cpu,
        "commits_cpu": commits_cpu,
    }


def _pending(message_id: str, pmid: str | None, now: datetime) -> Looked:
    tracked = Tracked(message_id, pmid, TO, now)
    report = lookup_report(tracked, pmid or "", "sent", Status.SENT, occurred_at=now)
    return Looked(message_id, report, "pending", None, now + TIMEOUT, now)


RATE_RUN_TIMEOUT = 0.05
"""report_timeout_seconds of the lookup-rate runs: short, so the runs wait little for it."""


async def lookups_per_second(
    kind: str, messages: int, rate: float | None, concurrency: int
) -> tuple[float, int]:
    """(lookups per second, lookups made) of one pass over ``messages`` overdue ones."""
    with FakeStatusApi(kind) as fake, tempfile.TemporaryDirectory() as workdir:
        table: dict[str, Any] = fake.provider_table()
        table["report_timeout_seconds"] = RATE_RUN_TIMEOUT
        if rate is not None:
            table["rate_per_second"] = rate
        settings = {"reconcile": {"concurrency": concurrency}}
        config = load(write_config(Path(workdir), settings, {"p": table}))
        store = SqliteStore(config.sqlite_path)
        await store.open()
        try:
            now = datetime.now(UTC) - timedelta(seconds=5)
            reports = []
            for _ in range(messages):
                pmid = provider_message_id(kind, TO)
                fake.know(pmid, "delivered", TO)
                reports.append(Report(f"wh-{pmid}", pmid, Status.SENT, "sent", now, to=TO))
            raw = RawRequest(path="/webhooks/p", body=b"{}", received_at=now)
            for start in range(0, messages, 500):
                await store.ingest("p", raw, reports[start : start + 500])
            await asyncio.sleep(RATE_RUN_TIMEOUT * 2)  # every message is overdue now
            reconciler = Reconciler(store, config, OutboxWorker(store, config))
            async with reconciler.client() as client:
                started = time.perf_counter()
                summary = await reconciler.run_pass(client)
                seconds = time.perf_counter() - started
        finally:
            await store.close()
    made = fake.lookup_calls
    assert summary.outcomes.get("final") == messages, summary.outcomes
    return made / seconds, made


def machine() -> str:
    load1, load5, _ = os.getloadavg()
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, SQLite {sqlite3.sqlite_version},"
        f" load {load1:.1f}/{load5:.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (tests/bench)")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--overdue", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=50, help="rate_per_second configured")
    parser.add_argument("--rate-messages", type=int, default=500)
    parser.add_argument("--workdir", help="where to build the store (default: a temp dir)")
    parser.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, help="[reconcile] concurrency"
    )
    parser.add_argument("--pass-only", action="store_true", help="skip the lookup rates")
    parser.add_argument(
        "--reuse", action="store_true", help="use the store already in --workdir (same sizes)"
    )
    args = parser.parse_args()
    if args.quick:
        args.messages, args.overdue, args.rate_messages = 20_000, 500, 20
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-reconcile-"))
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "reconcile.db"
    print(f"# bench/reconcile.py, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}")
    if args.reuse and path.exists():
        print(f"reusing {path} (lookups table emptied)")
        conn = _connect(path)
        conn.execute("DELETE FROM lookups")
        conn.execute("DELETE FROM events")
        conn.execute(
            "UPDATE messages SET updated_at = ? WHERE status = 'sent'",
            (to_text(datetime.now(UTC) - timedelta(hours=1)),),
        )
        conn.close()
    else:
        if path.exists():
            path.unlink()
        built = build_store(path, args.messages, args.overdue, seed=14)
        print(f"built {args.messages:,} messages ({args.overdue:,} overdue) in {built:.1f} s")
    print("\n## Query plans (no ANALYZE)\n")
    lines = plans(path)
    for line in lines:
        print(f"    {line}")
    indexed = all("messages_awaiting_report" in line for line in lines if " m " in f" {line} ")
    print(f"\nPLAN {'OK' if indexed else 'NOT-INDEXED'}")

    print("\n## One pass over the overdue set (database time)\n")
    result = one_pass(path, args.concurrency)
    total = result["statements"] + result["commits"]
    cpu = result["statements_cpu"] + result["commits_cpu"]
    columns = "messages | overdue | per claim | transactions | | statements (s) | commits (s)"
    print(f"| {columns} | total (s) |")
    print("|---:|---:|---:|---:|---|---:|---:|---:|")
    head = f"| {args.messages:,} | {result['claimed']:,} | {args.concurrency}"
    head += f" | {result['transactions']:,}"
    print(f"{head} | wall | {result['statements']:.3f} | {result['commits']:.3f} | {total:.3f} |")
    print(
        f"{head} | CPU | {result['statements_cpu']:.3f} | {result['commits_cpu']:.3f} | {cpu:.3f} |"
    )

    if args.pass_only:
        return 0
    print(f"\n## Lookups per second ({args.rate_messages} overdue messages per type)\n")
    print(f"| type | at rate_per_second = {args.rate:g} | no rate |")
    print("|---|---:|---:|")
    for kind in LOOKUP_TYPES:
        count, concurrency = args.rate_messages, args.concurrency
        paced, made = asyncio.run(lookups_per_second(kind, count, args.rate, concurrency))
        free, _ = asyncio.run(lookups_per_second(kind, count, None, concurrency))
        print(f"| {kind} | {paced:.1f} | {free:.1f} |")
        assert made == args.rate_messages
    return 0


if __name__ == "__main__":
    sys.exit(main())
