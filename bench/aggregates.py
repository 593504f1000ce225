"""The delivery aggregates' cost on the store's write path, without the HTTP noise.

    python bench/aggregates.py            # 5 x 40,000 reports per variant
    python bench/aggregates.py --quick    # 1 x 4,000 (tests/bench runs it)

bench/ingest.py measures the whole service (its ``no_aggregates`` row), where the
aggregates are a small part of each request and a shared machine's noise is larger than
the difference. This runs the function the ingest writer runs for each request,
``receiver.store.ingest.apply_request``, over the same reports into two fresh databases: one as
migrated, one with the aggregates' triggers dropped (``bench/ingest.py``'s
``drop_aggregates``). Each message gets ``sent`` then ``delivered`` (so both the insert
and the update trigger fire, with a latency to bucket), 50 requests per transaction,
``synchronous = OFF`` (the fsync is the same either way and is not what is compared).
Repetitions alternate the variants; the figure is this process's CPU time per report
(``time.process_time``), so waiting for a core on a shared machine does not count.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import drop_aggregates  # noqa: E402

from receiver.core.reports import Report  # noqa: E402
from receiver.core.status import Status  # noqa: E402
from receiver.records import RawRequest  # noqa: E402
from receiver.store.ingest import apply_request  # noqa: E402
from receiver.store.sqlite import _connect, migrate  # noqa: E402
from receiver.store.tx import SqliteTx, run_sync  # noqa: E402

PER_TRANSACTION = 50
T0 = datetime(2026, 12, 5, tzinfo=UTC)


def reports(count: int) -> list[Report]:
    """Message ``i // 2`` is sent, then delivered 1-60 s later, to one of 5 countries."""
    numbers = ["+6391712", "+4477009", "+1415555", "+9198765", "+5511987"]
    out = []
    for i in range(count):
        delivered = i % 2 == 1
        out.append(
            Report(
                event_id=f"e{i}",
                provider_message_id=f"p{i // 2}",
                status=Status.DELIVERED if delivered else Status.SENT,
                provider_status="x",
                occurred_at=T0 + timedelta(seconds=(i // 2 % 60 + 1) if delivered else 0),
                to=f"{numbers[i // 2 % 5]}{i // 2 % 100000:05d}",
                network="515-02" if delivered else None,
            )
        )
    return out


def cpu_per_report(batch: list[Report], aggregates: bool) -> float:
    """Microseconds of CPU per report, applying ``batch`` into a fresh database."""
    with tempfile.TemporaryDirectory(prefix="bench-aggregates-") as tmp:
        path = Path(tmp) / "receiver.db"
        if aggregates:
            conn = _connect(path)
            migrate(conn)
            conn.close()
        else:
            drop_aggregates(path)
        conn = _connect(path)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous = OFF")
        started = time.process_time()
        for first in range(0, len(batch), PER_TRANSACTION):
            conn.execute("BEGIN IMMEDIATE")
            for n, report in enumerate(batch[first : first + PER_TRANSACTION]):
                received = T0 + timedelta(seconds=first + n)
                run_sync(
                    apply_request(
                        SqliteTx(conn),
                        "acme",
                        RawRequest(path="/webhooks/acme", body=b"{}", received_at=received),
                        [report],
                    )
                )
            conn.execute("COMMIT")
        elapsed = time.process_time() - started
        if aggregates:
            kept = conn.execute("SELECT sum(messages) FROM delivery_hourly").fetchone()[0]
            assert kept == len(batch) // 2, kept
        conn.close()
    return elapsed / len(batch) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 x 4,000 reports per variant")
    parser.add_argument("--reports", type=int)
    parser.add_argument("--repetitions", type=int)
    args = parser.parse_args(argv)
    count = args.reports or (4_000 if args.quick else 40_000)
    repetitions = args.repetitions or (1 if args.quick else 5)
    batch = reports(count)
    results: dict[bool, list[float]] = {True: [], False: []}
    for repetition in range(repetitions):
        for aggregates in (True, False):
            results[aggregates].append(cpu_per_report(batch, aggregates))
            print(
                f"[{repetition + 1}/{repetitions}] aggregates={aggregates!s:5}"
                f" {results[aggregates][-1]:6.1f} us CPU/report",
                flush=True,
            )
    with_, without = statistics.median(results[True]), statistics.median(results[False])
    command = "python bench/aggregates.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"\nMeasured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `{command.strip()}`:")
    print(f"{count:,} reports x {repetitions} repetitions per variant, medians of CPU/report.\n")
    print("| store write path | us CPU per report | reports/s of CPU |")
    print("|---|---:|---:|")
    print(f"| with the delivery aggregates | {with_:.1f} | {1e6 / with_:,.0f} |")
    print(f"| without (triggers dropped) | {without:.1f} | {1e6 / without:,.0f} |")
    print(f"\nRATIO {without / with_:.2f} (with / without, in reports per CPU second)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
