"""The ingest benchmark: receiver against the framework's ceiling and a naive handler.

    python bench/ingest.py            # the full run (about 4 minutes); writes docs/performance.md
    python bench/ingest.py --quick    # a short smoke run (about 30 s); writes nothing

Every row starts its own server on loopback, one at a time, each one process with one
uvicorn worker (uvloop, httptools, no uvicorn access log) and a fresh temporary
directory, and drives it with wrk (bench/signed.lua) over pre-signed requests:

1. ``ceiling``: a Starlette endpoint that reads the body and answers a constant 200;
2. ``naive``: verify, parse, then one serialized aiosqlite transaction per request
   (``synchronous=FULL``), see bench/apps.py;
3. ``receiver``: ``receiver serve`` with a real config, Standard Webhooks signatures,
   every report new;
4. ``receiver, duplicates``: the same, every report already processed (a priming pass
   stores the whole fixed set first);
4a. ``receiver, one subscriber``: as 3, with one change-feed subscriber attached (a
   loopback hello-world endpoint, ``hello_app`` in bench/apps.py, its own process):
   every applied report is a change delivered to it. After the measured run the
   benchmark waits until every change is delivered, then reads each change's latency
   from its commit (``changes.changed_at``) to the subscriber's 2xx
   (``change_deliveries.delivered_at``) out of the database;
4b. ``receiver, one subscriber, delivered by receiver worker``: as 4a, with ``[feed]
   deliver_in_serve = false``: serve only queues the deliveries and a ``receiver
   worker`` process (started beside it, killed with it) posts them. Its CPU is serve's
   and the worker's together (the run line prints the worker's share);
5. ``receiver, Twilio form``: Twilio form posts with ``X-Twilio-Signature``, every
   report new;
6. ``receiver, no aggregates``: row 3 with the delivery aggregates' triggers dropped
   from its fresh database before it starts (``GET /v1/stats/delivery`` reads what they
   keep), so rows 3 and 6 of one run give the aggregates' cost on ingest;
7. ``receiver, --workers 2``: row 3 served by ``receiver serve --workers 2``, two
   worker processes on one SQLite file (issue 11; ``RECEIVER_SQLITE_WORKERS=1``, as
   ``serve`` refuses it on SQLite otherwise). Its CPU is the whole process tree's
   (supervisor and workers), its peak RSS the sum of each process's peak. Each worker
   has its own ``/metrics``, so this row's outcomes come from the database instead
   (every report of a new-reports row is delivered once: no event may count two);
8. ``receiver, PostgreSQL``: row 3 on PostgreSQL (``BENCH_POSTGRES_URL``, by default
   ``postgresql://postgres@127.0.0.1:5432``: a fresh database per run, created before
   the server starts and dropped after it is counted);
9. ``receiver, PostgreSQL, --workers 2``: row 8 served by two worker processes.

On the PostgreSQL rows the database is ANALYZEd after the warm-up: the run measures a
database with statistics, as autovacuum keeps them for any database older than a minute
or so. A database seconds old has none, and PostgreSQL's plans made before its first
statistics read whole tables: the row with a subscriber ran at 617 req/s with
1,125 µs of PostgreSQL CPU per report without it, 1,110 req/s and 406 µs with it
(docs/performance.md).

On the PostgreSQL rows the table also gives PostgreSQL's CPU per report: the CPU the
run's database's backends (``pg_stat_activity`` by ``datname``) and the server's WAL
writer, checkpointer and background writer used during the measured run (those three
serve every database of the server: another client's load would land in them too).

The machines this runs on are shared and noisy, so the result is the ratios between
rows of the same run. Repetitions are interleaved (ceiling, naive, receiver, ... then
again), so a burst of load from elsewhere hits every row alike; each figure is the
median over the repetitions, peak RSS the maximum.

Before each measured run a warm-up run (its own event ids) warms the server. After
it the server is killed with SIGKILL (every process of it) and its database is counted:
every request answered 200 must be in it (a 200 means committed with
``synchronous=FULL``), and in a new-reports row no event may have been applied twice.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "signed.lua"
DOC = ROOT / "docs" / "performance.md"
DOC_BEGIN = "<!-- bench/ingest.py: results begin -->"
DOC_END = "<!-- bench/ingest.py: results end -->"
INGEST_HEADING = "## Ingest"
STORE_HEADING = "## Store at scale"

sys.path.insert(0, str(ROOT))  # run as a script from a checkout: import receiver from it

from receiver.testing import (  # noqa: E402
    standard_report,
    standard_request,
    twilio_report,
    twilio_request,
)
from receiver.testing.pytest_plugin import free_port, new_whsec, write_config  # noqa: E402
from receiver.testing.twilio import twilio_message_sid  # noqa: E402

PUBLIC_BASE_URL = "https://dlr.example.com"
TOLERANCE_SECONDS = 172800  # the largest allowed: pre-signed timestamps stay fresh
STARTUP_SECONDS = 30.0

# The targets of the issue, checked in the report (never as timed test assertions).
TARGET_CEILING_RATIO = 0.4  # issue 16 (0.6 before it)
TARGET_NAIVE_RATIO = 4.0
TARGET_P99_MS = 15.0  # issue 16 (25 before it)
TARGET_CPU_US = 125.0  # issue 16: receiver CPU per new report
TARGET_TWILIO_RATIO = 0.35  # issue 16: Twilio form posts vs the ceiling
TARGET_DUPLICATES_RATIO = 0.5  # issue 16: duplicates vs the ceiling
TARGET_RSS_MB = 150.0
TARGET_SUBSCRIBER_RATIO = 0.85  # issue 13: ingest with one subscriber vs without
TARGET_DELIVERY_P99_MS = 250.0  # issue 13: change commit -> subscriber 2xx
DRAIN_SECONDS = 120.0
TARGET_AGGREGATES_RATIO = 0.9  # issue 15: ingest with the delivery aggregates vs without
TARGET_WORKERS_RATIO = 1.3  # issue 11: receiver serve --workers 2 vs one process
TARGET_POSTGRES_RATIO = 0.7  # issue 11: one process on PostgreSQL vs one on SQLite
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
POSTGRES_SHARED = ("walwriter", "checkpointer", "background writer")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DataFile:
    """Pre-signed raw HTTP requests for signed.lua, and how many."""

    path: Path
    count: int


def _raw_http(path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _write_records(path: Path, requests: Iterator[tuple[str, dict[str, str], bytes]]) -> DataFile:
    count = 0
    with path.open("wb") as out:
        for target, headers, body in requests:
            raw = _raw_http(target, headers, body)
            out.write(b"%d\n" % len(raw))
            out.write(raw)
            count += 1
    return DataFile(path, count)


_STATUSES = ("sent", "delivered")  # each message gets two reports, in order


def standard_requests(
    secret: str, tag: str, count: int
) -> Iterator[tuple[str, dict[str, str], bytes]]:
    """``count`` Standard Webhooks requests with unique event ids: message ``i // 2``
    gets ``sent`` then ``delivered``, so half the reports create a message and half
    move one on."""
    now = int(time.time())
    occurred = datetime.fromtimestamp(now, UTC)
    for i in range(count):
        report = standard_report(
            f"prov-{tag}-{i // 2}",
            _STATUSES[i % 2],
            occurred_at=occurred,
            to=f"+6391712{i // 2 % 100000:05d}",
        )
        request = standard_request(secret, report, event_id=f"evt_{tag}_{i}", timestamp=now)
        yield request.path, request.headers, request.body


def twilio_requests(
    token: str, tag: str, count: int
) -> Iterator[tuple[str, dict[str, str], bytes]]:
    """``count`` Twilio status callbacks (form posts), unique (MessageSid, status): message
    ``i // 2`` gets ``sent`` then ``delivered``, its SID drawn from a generator seeded
    with ``tag``, and a ``+1`` number of its own (libphonenumber's slowest country, each
    parsed afresh: none is in ``parsed_country``'s cache from an earlier message)."""
    rng = random.Random(tag)
    sid = ""
    for i in range(count):
        if i % 2 == 0:
            sid = twilio_message_sid(rng)
        params = twilio_report(sid, _STATUSES[i % 2], to=f"+1555{i // 2 % 10**7:07d}")
        request = twilio_request(token, params, public_base_url=PUBLIC_BASE_URL, provider="twilio")
        yield request.path, request.headers, request.body


# --------------------------------------------------------------------------- servers


def write_receiver_config(
    directory: Path,
    secret: str,
    twilio_token: str,
    subscriber_url: str | None = None,
    database_url: str = "sqlite:///receiver.db",
    deliver_in_serve: bool = True,
) -> Path:
    """A real config: a SQLite file beside it (or ``database_url``), a standard and a
    twilio provider, and
    one change-feed subscriber at ``subscriber_url`` if given (``concurrency = 64``: at
    the default 16 the deliveries fell behind 64 connections of ingest on this machine,
    and the latency measured the backlog, not a delivery)."""
    settings: dict[str, Any] = {
        "database_url": database_url,
        "public_base_url": PUBLIC_BASE_URL,
        "session_secret": secrets.token_urlsafe(40),
    }
    if subscriber_url is not None:
        settings["subscribers"] = {
            "hello": {"url": subscriber_url, "secrets": [new_whsec()], "concurrency": 64}
        }
        settings["feed"] = {"deliver_in_serve": deliver_in_serve}
    providers: dict[str, dict[str, Any]] = {
        "default": {
            "type": "standard",
            "secrets": [secret],
            "tolerance_seconds": TOLERANCE_SECONDS,
        },
        "twilio": {"type": "twilio", "secrets": [twilio_token]},
    }
    return write_config(directory, settings, providers)


def psql(database: str, sql: str) -> list[list[str]]:
    """Run ``sql`` with psql on ``database`` of the bench's PostgreSQL server: its rows,
    each a list of fields."""
    command = ["psql", f"{POSTGRES_URL}/{database}", "-X", "-q", "-A", "-t", "-F", "\t"]
    done = subprocess.run(
        [*command, "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"psql failed on {database}: {done.stderr.strip()}")
    return [line.split("\t") for line in done.stdout.splitlines() if line]


@contextmanager
def postgres_database(wanted: bool) -> Iterator[str | None]:
    """A fresh PostgreSQL database for one run (its name), dropped afterwards; None
    when not ``wanted``."""
    if not wanted:
        yield None
        return
    name = f"bench_ingest_{secrets.token_hex(4)}"
    psql("postgres", f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _ticks(pid: int, thread: int | None = None) -> int:
    """User + system CPU clock ticks of process ``pid`` (or of its ``thread`` alone) so
    far (0 once it is gone)."""
    stat = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    try:
        fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


UVICORN = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--workers", "1"]


@dataclass
class Server:
    """One server process on loopback and what it left behind."""

    kind: str  # "ceiling", "naive" or "receiver"
    workdir: Path
    port: int
    process: subprocess.Popen[bytes]
    db: Path | None
    subscriber: subprocess.Popen[bytes] | None = None
    """The hello-world subscriber's process, for a receiver with one attached."""
    workers: int = 1
    """``receiver serve --workers``: processes beside the supervisor when above 1."""
    database: str | None = None
    """The PostgreSQL database the receiver stores in (None: SQLite, ``db``)."""
    delivery_worker: subprocess.Popen[bytes] | None = None
    """The ``receiver worker`` that delivers the change feed, when serve does not."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The server's process and every process under it (the workers of
        ``--workers N``)."""
        found, waiting = [], [self.process.pid]
        if self.delivery_worker is not None:
            waiting.append(self.delivery_worker.pid)
        while waiting:
            pid = waiting.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                waiting += [int(child) for child in task.read_text().split()]
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU of every process of the server (every thread) so far."""
        return sum(_ticks(pid) for pid in self.pids()) / os.sysconf("SC_CLK_TCK")

    def worker_cpu_seconds(self) -> float:
        """The delivering ``receiver worker``'s share of ``cpu_seconds`` (0: none)."""
        if self.delivery_worker is None:
            return 0.0
        return _ticks(self.delivery_worker.pid) / os.sysconf("SC_CLK_TCK")

    def loop_cpu_seconds(self) -> float:
        """The same for the main threads alone, where the event loop runs: the rest is
        the other threads', SQLite's writer thread above all."""
        return sum(_ticks(pid, pid) for pid in self.pids()) / os.sysconf("SC_CLK_TCK")

    def database_ticks(self) -> dict[int, int]:
        """CPU ticks so far of each PostgreSQL process serving the receiver's database:
        its backends and the server's shared writers (empty on SQLite)."""
        if self.database is None:
            return {}
        kinds = ", ".join(f"'{kind}'" for kind in POSTGRES_SHARED)
        rows = psql(
            "postgres",
            f"SELECT pid FROM pg_stat_activity WHERE (datname = '{self.database}'"
            f" AND pid != pg_backend_pid()) OR backend_type IN ({kinds})",
        )
        return {int(pid): _ticks(int(pid)) for (pid,) in rows}

    def peak_rss_mb(self) -> float:
        """VmHWM, the peak resident set since start, summed over the server's processes."""
        total = 0
        for pid in self.pids():
            status = Path(f"/proc/{pid}/status").read_text()
            match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
            assert match is not None
            total += int(match[1])
        return total / 1024

    def metrics(self) -> dict[str, float]:
        """``receiver_reports_total`` by outcome (a one-process receiver only: with
        ``--workers`` each scrape reaches one worker)."""
        if self.kind != "receiver" or self.workers > 1:
            return {}
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
        counts: dict[str, float] = {}
        for match in re.finditer(r"^receiver_reports_total\{(.*)\} (\S+)$", text, re.MULTILINE):
            outcome = re.search(r'outcome="([^"]+)"', match[1])
            if outcome:
                counts[outcome[1]] = counts.get(outcome[1], 0.0) + float(match[2])
        return counts

    def kill(self) -> None:
        """SIGKILL every process of the server (its own session) and the subscriber."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        if self.delivery_worker is not None:
            self.delivery_worker.kill()
            self.delivery_worker.wait()
        if self.subscriber is not None:
            self.subscriber.kill()
            self.subscriber.wait()

    def _read(self, sql: str) -> list[Sequence[Any]]:
        """The rows of ``sql`` (no parameters) from the receiver's database."""
        if self.database is not None:
            return psql(self.database, sql)
        assert self.db is not None
        with closing(sqlite3.connect(self.db, timeout=30)) as conn:
            return conn.execute(sql).fetchall()

    def last_change(self) -> int:
        """The newest change's cursor (0: none yet)."""
        return int(self._read("SELECT coalesce(max(id), 0) FROM changes")[0][0])

    def delivery_latencies(self, after: int) -> tuple[list[float], float]:
        """Wait until every change is delivered to the subscriber, then each change's
        seconds from its commit to the subscriber's 2xx (those after cursor ``after``),
        and how long the wait took."""
        started = time.monotonic()
        while True:
            sql = "SELECT count(*) FROM change_deliveries WHERE state != 'delivered'"
            waiting = int(self._read(sql)[0][0])
            if not waiting:
                break
            if time.monotonic() - started > DRAIN_SECONDS:
                raise RuntimeError(f"{waiting} changes still undelivered")
            time.sleep(0.2)
        drained = time.monotonic() - started
        rows = self._read(
            "SELECT c.changed_at, d.delivered_at FROM change_deliveries d"
            f" JOIN changes c ON c.id = d.change WHERE c.id > {int(after)}"
        )
        seconds = [
            (datetime.fromisoformat(done) - datetime.fromisoformat(changed)).total_seconds()
            for changed, done in rows
        ]
        return seconds, drained

    def stored_events(self) -> tuple[int, int]:
        """Events in the database, and how many deliveries beyond the first they
        counted (the receiver only; call after kill)."""
        if self.database is not None:
            ((stored, again),) = psql(
                self.database,
                "SELECT count(*), coalesce(sum(deliveries - 1), 0) FROM events"
                " WHERE source = 'webhook'",
            )
            return int(stored), int(again)
        if self.db is None:
            return 0, 0
        conn = sqlite3.connect(self.db)
        try:
            if self.kind == "receiver":
                sql = (
                    "SELECT count(*), coalesce(sum(deliveries - 1), 0) FROM events"
                    " WHERE source = 'webhook'"
                )
            else:
                sql = "SELECT count(*), 0 FROM events"
            stored, again = conn.execute(sql).fetchone()
            return int(stored), int(again)
        finally:
            conn.close()


def _wait_listening(
    process: subprocess.Popen[bytes], port: int, what: str, log: Path, workers: int = 1
) -> bool:
    """True once ``port`` accepts connections (uvicorn binds after lifespan start-up)
    and, for ``--workers N``, every worker has started (the supervisor binds first)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited at start:\n{log.read_text()}")
        started = workers == 1 or log.read_text().count("Application startup complete") >= workers
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            if started:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def start_subscriber(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The hello-world subscriber (bench/apps.py) and its URL."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", "apps:hello_app"]
    command += ["--app-dir", str(BENCH), "--host", "127.0.0.1", "--port", str(port)]
    command += [*UVICORN, "--log-level", "warning"]
    log = workdir / "subscriber.log"
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=workdir, stdout=out, stderr=out)
    if not _wait_listening(process, port, "the subscriber", log):
        process.kill()
        raise RuntimeError(f"the subscriber did not start:\n{log.read_text()}")
    return process, f"http://127.0.0.1:{port}/changes"


AGGREGATE_TRIGGERS = (
    "delivery_stats_insert",
    "delivery_stats_update",
    "delivery_stats_delete",
    "delivery_latency_update",
)


def drop_aggregates(db: Path) -> None:
    """A migrated database whose delivery aggregates are not kept (the triggers that
    keep them in the merge transaction dropped): the baseline of their cost."""
    from receiver.store.sqlite import _connect, migrate

    conn = _connect(db)
    try:
        migrate(conn)
        for trigger in AGGREGATE_TRIGGERS:
            conn.execute(f"DROP TRIGGER {trigger}")
    finally:
        conn.close()


def start_server(
    kind: str,
    workdir: Path,
    secret: str,
    twilio_token: str,
    subscribed: bool = False,
    aggregates: bool = True,
    workers: int = 1,
    database: str | None = None,
    granian: bool = False,
    delivery_worker: bool = False,
    floor: bool = False,
) -> Server:
    """Start a ``kind`` server in ``workdir``; a receiver stores in the PostgreSQL
    ``database`` if given, else in a SQLite file there, and runs under uvicorn (``receiver
    serve``) or, if ``granian``, under granian (``apps:receiver_app``); if ``floor``,
    ``receiver serve`` with a store that answers at once (``floor.py``: nothing to
    count afterwards)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    db: Path | None = None
    subscriber, subscriber_url = start_subscriber(workdir) if subscribed else (None, None)
    if kind == "receiver":
        url = "sqlite:///receiver.db" if database is None else f"{POSTGRES_URL}/{database}"
        config = write_receiver_config(
            workdir, secret, twilio_token, subscriber_url, url, not delivery_worker
        )
        db = workdir / "receiver.db" if database is None and not floor else None
        if not aggregates:
            assert db is not None, "the no-aggregates baseline is SQLite's"
            drop_aggregates(db)
        if granian:
            command = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory"]
            command += ["--working-dir", str(BENCH), "--loop", "uvloop", "--no-ws"]
            command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
            command += ["--no-access-log", "--log-level", "warning", "apps:receiver_app"]
            env["RECEIVER_CONFIG"] = str(config)
        else:
            launcher = [str(BENCH / "floor.py")] if floor else ["-m", "receiver"]
            command = [sys.executable, *launcher, "serve", "--config", str(config)]
            command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        env["RECEIVER_SQLITE_WORKERS"] = "1"  # serve refuses N > 1 on SQLite otherwise
    else:
        if kind == "naive":
            db = workdir / "naive.db"
            env |= {"BENCH_SECRET": secret, "BENCH_DB": str(db)}
        command = [sys.executable, "-m", "uvicorn", "--factory", f"apps:{kind}_app"]
        command += ["--app-dir", str(BENCH), "--host", "127.0.0.1", "--port", str(port)]
        command += [*UVICORN, "--log-level", "warning"]
    with (workdir / "server.log").open("ab") as log:
        process = subprocess.Popen(  # its own session: kill() reaches every worker
            command, cwd=workdir, env=env, stdout=log, stderr=log, start_new_session=True
        )
    server = Server(kind, workdir, port, process, db, subscriber, workers, database)
    if delivery_worker:
        command = [sys.executable, "-m", "receiver", "worker", "--config", str(config)]
        with (workdir / "worker.log").open("ab") as log:
            server.delivery_worker = subprocess.Popen(
                command, cwd=workdir, env=env, stdout=log, stderr=log
            )
    if _wait_listening(process, port, kind, workdir / "server.log", workers):
        return server
    server.kill()
    raise RuntimeError(f"{kind} did not start:\n{(workdir / 'server.log').read_text()}")


# --------------------------------------------------------------------------- wrk


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    status_errors: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    issued: int
    wrapped: bool
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def run_wrk(
    url: str, data: DataFile, *, seconds: int, connections: int, threads: int, offset: int = 0
) -> WrkResult:
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s"]
    command += ["--timeout", "10s", "-s", str(LUA), url + "/webhooks/x", "--"]
    command += [str(data.path), str(threads), str(offset)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    match = re.search(r"^BENCH_RESULT (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = json.loads(match[1])
    return WrkResult(
        requests=result["requests"],
        seconds=result["duration_us"] / 1e6,
        status_errors=result["status_errors"],
        socket_errors=result["socket_errors"],
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        issued=result["issued"],
        wrapped=result["wrapped"],
        cpu_seconds=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    server: str  # which server kind answers it
    data: str  # which data file it measures with ("new", "twilio" or "duplicates")
    warm: str | None  # which data file warms it up (None: the priming pass does)
    subscribed: bool = False  # one change-feed subscriber attached
    delivery_worker: bool = False  # a receiver worker delivers it, serve only queues
    aggregates: bool = True  # False: the delivery aggregates' triggers dropped
    workers: int = 1  # receiver serve --workers
    postgres: bool = False  # stores in a fresh PostgreSQL database, not SQLite
    granian: bool = False  # served by granian instead of uvicorn (no edge limits)
    named_only: bool = False  # run only when --rows names it, not by default
    floor: bool = False  # a store that answers at once: the request path alone


ROWS = (
    Row("ceiling", "ceiling (Starlette, body, constant 200)", "ceiling", "new", "warm"),
    Row("naive", "naive (verify, parse, aiosqlite txn per request)", "naive", "new", "warm"),
    Row("receiver", "receiver, Standard Webhooks, new reports", "receiver", "new", "warm"),
    Row("duplicates", "receiver, duplicates", "receiver", "duplicates", None),
    Row(
        "floor",
        "receiver, new reports, store answering at once (nothing stored: the floor)",
        "receiver",
        "new",
        "warm",
        floor=True,
    ),
    Row(
        "subscriber",
        "receiver, new reports, one subscriber attached",
        "receiver",
        "new",
        "warm",
        subscribed=True,
    ),
    Row(
        "subscriber_worker",
        "receiver, new reports, one subscriber, delivered by receiver worker",
        "receiver",
        "new",
        "warm",
        subscribed=True,
        delivery_worker=True,
    ),
    Row("twilio", "receiver, Twilio form posts, new reports", "receiver", "twilio", "warm_twilio"),
    Row(
        "granian",
        "receiver under granian (no edge limits), new reports",
        "receiver",
        "new",
        "warm",
        granian=True,
        named_only=True,
    ),
    Row(
        "no_aggregates",
        "receiver, new reports, no delivery aggregates (baseline)",
        "receiver",
        "new",
        "warm",
        aggregates=False,
    ),
    Row(
        "workers2",
        "receiver, new reports, --workers 2",
        "receiver",
        "new",
        "warm",
        workers=2,
    ),
    Row(
        "postgres",
        "receiver, new reports, PostgreSQL",
        "receiver",
        "new",
        "warm",
        postgres=True,
    ),
    Row(
        "postgres_subscriber",
        "receiver, new reports, PostgreSQL, one subscriber attached",
        "receiver",
        "new",
        "warm",
        subscribed=True,
        postgres=True,
        named_only=True,
    ),
    Row(
        "postgres_subscriber_worker",
        "receiver, new reports, PostgreSQL, one subscriber, delivered by receiver worker",
        "receiver",
        "new",
        "warm",
        subscribed=True,
        delivery_worker=True,
        postgres=True,
        named_only=True,
    ),
    Row(
        "postgres_workers2",
        "receiver, new reports, PostgreSQL, --workers 2",
        "receiver",
        "new",
        "warm",
        workers=2,
        postgres=True,
    ),
)


@dataclass
class Run:
    """One measured run of one row."""

    row: str
    result: WrkResult
    rss_mb: float
    server_cpu: float  # share of one core during the measured run
    loop_cpu: float  # of which the main threads' (the event loop's), likewise
    database_cpu: float | None  # PostgreSQL's, likewise (None: SQLite, in server_cpu)
    answered: int  # 2xx answers, warm-up included, whose reports must be stored
    stored: int | None
    again: int  # deliveries the store counted beyond each event's first
    outcomes: dict[str, float] = field(default_factory=dict)
    delivery_seconds: list[float] = field(default_factory=list)
    """Per change of the measured run: its commit to the subscriber's 2xx."""
    drain_seconds: float | None = None
    """How long the subscriber took to catch up after the measured run."""
    worker_cpu: float = 0.0
    """Of ``server_cpu``, the delivering ``receiver worker``'s (0: serve delivers)."""

    @property
    def durable(self) -> bool | None:
        if self.stored is None:
            return None
        return self.stored >= self.answered


@dataclass(frozen=True)
class Options:
    seconds: int
    warmup_seconds: int
    repetitions: int
    connections: int
    threads: int
    max_rate: int
    duplicates: int
    profile: Path | None


def _prime(server: Server, data: DataFile, options: Options) -> None:
    """Send the whole fixed set, one wrk thread continuing where the last run stopped,
    until every report of it is stored."""
    issued = 0
    for _ in range(60):
        result = run_wrk(
            server.url, data, seconds=1, connections=options.connections, threads=1, offset=issued
        )
        issued += result.issued
        counts = server.metrics()
        if counts.get("applied", 0) + counts.get("superseded", 0) >= data.count:
            return
    raise RuntimeError("the priming pass did not store the whole duplicate set")


@contextmanager
def _profiled(server: Server, out: Path | None, seconds: int) -> Iterator[None]:
    """py-spy record the server for the measured run, if asked to."""
    if out is None:
        yield
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [py_spy, "record", "--pid", str(server.process.pid), "--duration", str(seconds)]
    command += ["--subprocesses"] if server.workers > 1 else []
    command += ["--rate", "200", "--threads", "--nonblocking", "--output", str(out)]
    if out.suffix == ".txt":
        command += ["--format", "raw"]
    profiler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        _, errors = profiler.communicate(timeout=seconds + 60)
        if profiler.returncode != 0:
            print(f"py-spy failed: {errors.decode(errors='replace')}", file=sys.stderr)


def measure(
    row: Row,
    files: dict[str, DataFile],
    options: Options,
    secret: str,
    twilio_token: str,
    profile: Path | None,
) -> Run:
    with (
        tempfile.TemporaryDirectory(prefix=f"bench-{row.key}-") as tmp,
        postgres_database(row.postgres) as database,
    ):
        server = start_server(
            row.server,
            Path(tmp),
            secret,
            twilio_token,
            row.subscribed,
            row.aggregates,
            row.workers,
            database,
            row.granian,
            row.delivery_worker,
            row.floor,
        )
        delivery: tuple[list[float], float | None] = ([], None)
        try:
            data = files[row.data]
            if row.warm is None:
                _prime(server, data, options)
                answered = data.count  # every id of the set, answered 200 at least once
            else:
                warm = run_wrk(
                    server.url,
                    files[row.warm],
                    seconds=options.warmup_seconds,
                    connections=options.connections,
                    threads=options.threads,
                )
                if warm.wrapped and row.server != "ceiling":
                    raise RuntimeError("the warm-up set is too small: raise --max-rate")
                answered = warm.requests - warm.status_errors
            if database is not None:  # the statistics autovacuum keeps (see the docstring)
                psql(database, "ANALYZE")
            before = server.metrics()
            first_change = server.last_change() if row.subscribed else 0
            cpu, loop_cpu = server.cpu_seconds(), server.loop_cpu_seconds()
            worker_cpu = server.worker_cpu_seconds()
            database_ticks = server.database_ticks()
            with _profiled(server, profile, options.seconds):
                result = run_wrk(
                    server.url,
                    data,
                    seconds=options.seconds,
                    connections=options.connections,
                    threads=options.threads,
                )
            cpu = server.cpu_seconds() - cpu
            loop_cpu = server.loop_cpu_seconds() - loop_cpu
            worker_cpu = server.worker_cpu_seconds() - worker_cpu
            database_cpu = _ticks_since(database_ticks, server.database_ticks())
            after = server.metrics()
            if row.subscribed:
                delivery = server.delivery_latencies(first_change)
            rss = server.peak_rss_mb()
        finally:
            server.kill()
        if result.wrapped and row.data != "duplicates" and row.server != "ceiling":
            raise RuntimeError(f"{row.key}: ran out of new event ids: raise --max-rate")
        if row.warm is not None:
            answered += result.requests - result.status_errors
        outcomes = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        counted = server.db is not None or server.database is not None
        stored, again = server.stored_events() if counted else (None, 0)
        return Run(
            row.key,
            result,
            rss,
            cpu / result.seconds,
            loop_cpu / result.seconds,
            None if database is None else database_cpu / result.seconds,
            answered,
            stored,
            again,
            outcomes,
            *delivery,
            worker_cpu / result.seconds,
        )


def _ticks_since(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU seconds between two ``database_ticks``: a process that started in between
    counts whole, one that ended in between is lost (the pool keeps its connections)."""
    ticks = sum(now - before.get(pid, 0) for pid, now in after.items() if now)
    return ticks / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Summary:
    row: Row
    rate: float
    p50_ms: float
    p99_ms: float
    rss_mb: float
    server_cpu: float
    cpu_us: float  # server CPU per request
    loop_cpu_us: float  # of which the event loop's
    database_cpu_us: float | None  # PostgreSQL's CPU per request (None: SQLite)
    wrk_cpu: float
    non_2xx: int
    socket_errors: int
    durable: bool | None
    again: int  # redeliveries the store counted, over every run
    outcomes: dict[str, float]
    delivery_p50_ms: float | None = None
    delivery_p99_ms: float | None = None
    drain_seconds: float | None = None


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summarize(row: Row, runs: Sequence[Run]) -> Summary:
    outcomes: dict[str, float] = {}
    for run in runs:
        for key, value in run.outcomes.items():
            outcomes[key] = outcomes.get(key, 0) + value
    durable = [run.durable for run in runs]
    delivered = [run for run in runs if run.delivery_seconds]
    delivery: dict[str, float | None] = {}
    if delivered:  # per run, then the median over runs, like every other figure
        delivery = {
            "delivery_p50_ms": statistics.median(
                _percentile(r.delivery_seconds, 0.5) * 1000 for r in delivered
            ),
            "delivery_p99_ms": statistics.median(
                _percentile(r.delivery_seconds, 0.99) * 1000 for r in delivered
            ),
            "drain_seconds": max(r.drain_seconds or 0.0 for r in delivered),
        }
    return Summary(
        row=row,
        rate=statistics.median(run.result.rate for run in runs),
        p50_ms=statistics.median(run.result.p50_ms for run in runs),
        p99_ms=statistics.median(run.result.p99_ms for run in runs),
        rss_mb=max(run.rss_mb for run in runs),
        server_cpu=statistics.median(run.server_cpu for run in runs),
        cpu_us=statistics.median(
            run.server_cpu * run.result.seconds / run.result.requests * 1e6 for run in runs
        ),
        loop_cpu_us=statistics.median(
            run.loop_cpu * run.result.seconds / run.result.requests * 1e6 for run in runs
        ),
        database_cpu_us=None
        if not row.postgres
        else statistics.median(
            (run.database_cpu or 0.0) * run.result.seconds / run.result.requests * 1e6
            for run in runs
        ),
        wrk_cpu=statistics.median(run.result.cpu_seconds / run.result.seconds for run in runs),
        non_2xx=sum(run.result.status_errors for run in runs),
        socket_errors=sum(run.result.socket_errors for run in runs),
        durable=None if None in durable else all(d is True for d in durable),
        again=sum(run.again for run in runs),
        outcomes=outcomes,
        **delivery,
    )


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}x" if base else "-"


def table(summaries: Sequence[Summary]) -> str:
    by_key = {s.row.key: s for s in summaries}
    ceiling = by_key["ceiling"].rate if "ceiling" in by_key else None
    naive = by_key["naive"].rate if "naive" in by_key else None
    lines = [
        "| row | requests/s | p50 ms | p99 ms | peak RSS MB | vs ceiling | vs naive"
        " | non-2xx | server CPU | CPU us/request | of which event loop"
        " | PostgreSQL CPU us/request | wrk CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        database = "-" if s.database_cpu_us is None else f"{s.database_cpu_us:.0f}"
        lines.append(
            f"| {s.row.label} | {s.rate:,.0f} | {s.p50_ms:.1f} | {s.p99_ms:.1f}"
            f" | {s.rss_mb:.0f} | {_ratio(s.rate, ceiling)} | {_ratio(s.rate, naive)}"
            f" | {s.non_2xx + s.socket_errors} | {s.server_cpu:.0%} | {s.cpu_us:.0f}"
            f" | {s.loop_cpu_us:.0f} | {database} | {s.wrk_cpu:.0%} |"
        )
    return "\n".join(lines)


def verdicts(summaries: Sequence[Summary]) -> list[tuple[str, bool, str]]:
    """(target, met, the figures that decide it)."""
    by_key = {s.row.key: s for s in summaries}
    receivers = [s for s in summaries if s.row.server == "receiver"]
    receiver = by_key.get("receiver")
    found: list[tuple[str, bool, str]] = []
    if receiver is not None:
        for base, target in (("ceiling", TARGET_CEILING_RATIO), ("naive", TARGET_NAIVE_RATIO)):
            if base in by_key:
                ratio = receiver.rate / by_key[base].rate
                found.append((f"receiver >= {target:g}x {base}", ratio >= target, f"{ratio:.2f}x"))
    if receiver is not None:
        met = receiver.cpu_us <= TARGET_CPU_US
        target = f"receiver CPU <= {TARGET_CPU_US:g} us/request"
        found.append((target, met, f"{receiver.cpu_us:.0f} us"))
    if "ceiling" in by_key:
        shares = (("twilio", TARGET_TWILIO_RATIO), ("duplicates", TARGET_DUPLICATES_RATIO))
        for key, least in shares:
            if key in by_key:
                ratio = by_key[key].rate / by_key["ceiling"].rate
                found.append((f"{key} >= {least:g}x ceiling", ratio >= least, f"{ratio:.2f}x"))
    if receiver is not None:  # the latency target is the receiver row's
        others = "; ".join(f"{s.row.key} {s.p99_ms:.1f} ms" for s in receivers if s is not receiver)
        figures = f"{receiver.p99_ms:.1f} ms" + (f"; not targeted: {others}" if others else "")
        met = receiver.p99_ms <= TARGET_P99_MS
        found.append((f"receiver p99 <= {TARGET_P99_MS:g} ms", met, figures))
    feeds = (
        ("subscriber", "receiver", ""),
        ("subscriber_worker", "receiver", ", delivered by a worker"),
        ("postgres_subscriber", "postgres", ", PostgreSQL"),
        ("postgres_subscriber_worker", "postgres", ", PostgreSQL, delivered by a worker"),
    )
    for key, base_key, where in feeds:
        subscribed, base = by_key.get(key), by_key.get(base_key)
        if base is not None and subscribed is not None:
            ratio = subscribed.rate / base.rate
            target = f"receiver with one subscriber{where} >= {TARGET_SUBSCRIBER_RATIO:g}x without"
            found.append((target, ratio >= TARGET_SUBSCRIBER_RATIO, f"{ratio:.2f}x"))
        if subscribed is not None and subscribed.delivery_p99_ms is not None:
            figures = (
                f"p99 {subscribed.delivery_p99_ms:.0f} ms,"
                f" p50 {subscribed.delivery_p50_ms:.0f} ms under the row's full ingest load;"
                f" every change delivered {subscribed.drain_seconds:.1f} s after the load"
                " stopped at the latest"
            )
            met = subscribed.delivery_p99_ms <= TARGET_DELIVERY_P99_MS
            target = f"change commit -> subscriber 2xx p99 <= {TARGET_DELIVERY_P99_MS:g} ms{where}"
            found.append((target, met, figures))
    if receiver is not None and "no_aggregates" in by_key:
        ratio = receiver.rate / by_key["no_aggregates"].rate
        found.append(
            (
                f"receiver >= {TARGET_AGGREGATES_RATIO:g}x without the delivery aggregates",
                ratio >= TARGET_AGGREGATES_RATIO,
                f"{ratio:.2f}x",
            )
        )
    if receiver is not None and "workers2" in by_key:
        ratio = by_key["workers2"].rate / receiver.rate
        found.append(
            (
                f"receiver --workers 2 >= {TARGET_WORKERS_RATIO:g}x one process",
                ratio >= TARGET_WORKERS_RATIO,
                f"{ratio:.2f}x",
            )
        )
    postgres = by_key.get("postgres")
    if receiver is not None and postgres is not None:
        ratio = postgres.rate / receiver.rate
        target = f"receiver on PostgreSQL >= {TARGET_POSTGRES_RATIO:g}x on SQLite, one process"
        found.append((target, ratio >= TARGET_POSTGRES_RATIO, f"{ratio:.2f}x"))
    if postgres is not None and "postgres_workers2" in by_key:
        ratio = by_key["postgres_workers2"].rate / postgres.rate
        target = f"receiver on PostgreSQL --workers 2 >= {TARGET_WORKERS_RATIO:g}x one process"
        found.append((target, ratio >= TARGET_WORKERS_RATIO, f"{ratio:.2f}x"))
    if receiver is not None and "duplicates" in by_key:
        ratio = by_key["duplicates"].rate / receiver.rate
        found.append(("duplicates at least as fast as new reports", ratio >= 1.0, f"{ratio:.2f}x"))
    # the target is one process's
    single = [s for s in receivers if s.row.workers == 1 and not s.row.delivery_worker]
    if single:
        peak = max(s.rss_mb for s in single)
        figures = f"{peak:.0f} MB, the most of any one-process receiver row"
        found.append((f"peak RSS <= {TARGET_RSS_MB:g} MB", peak <= TARGET_RSS_MB, figures))
    errors = sum(s.non_2xx + s.socket_errors for s in summaries)
    durable = all(s.durable for s in summaries if s.durable is not None)
    found.append(
        (
            "every request answered 200, every 200 on disk after SIGKILL",
            errors == 0 and durable,
            f"{errors} non-2xx or socket errors; stored >= answered: {'yes' if durable else 'NO'}",
        )
    )
    return found


def checks(summaries: Sequence[Summary]) -> list[str]:
    """What would make the figures meaningless (not targets: the benchmark's own
    assumptions): a new-reports run that met a duplicate, a duplicates run that met
    a new report."""
    problems = []
    for s in summaries:
        duplicates = s.outcomes.get("duplicates", 0)
        fresh = s.outcomes.get("applied", 0) + s.outcomes.get("superseded", 0)
        if s.row.server == "receiver" and s.row.data != "duplicates" and duplicates:
            problems.append(f"{s.row.key}: {duplicates:.0f} duplicates in a new-reports run")
        if s.row.key == "duplicates" and fresh:
            problems.append(f"duplicates: {fresh:.0f} reports were new")
        if s.row.server == "receiver" and s.row.data != "duplicates" and s.again:
            problems.append(f"{s.row.key}: the store counted {s.again} redeliveries")
    return problems


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _filesystem(path: str) -> str:
    """The device and type of the filesystem that holds ``path`` (/proc/mounts)."""
    best = ("?", "?", "")
    for line in _read("/proc/mounts").splitlines():
        device, mount, kind = line.split()[:3]
        inside = path == mount or path.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best[2]):
            best = (device, kind, mount)
    return f"{best[0]} ({best[1]})"


def machine() -> list[str]:
    cpu = re.search(r"^model name\s*:\s*(.*)$", _read("/proc/cpuinfo"), re.MULTILINE)
    memory = re.search(r"^MemTotal:\s+(\d+) kB", _read("/proc/meminfo"), re.MULTILINE)
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    nproc = len(os.sched_getaffinity(0))
    temp = tempfile.gettempdir()
    return [
        f"CPU: `nproc` = {nproc}, {cpu[1] if cpu else platform.processor()}",
        f"RAM: {int(memory[1]) / 1024 / 1024:.1f} GiB" if memory else "RAM: unknown",
        f"kernel: {platform.system()} {platform.release()}",
        f"Python: {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        f"wrk: {(wrk.stdout or wrk.stderr).splitlines()[0].split(' Copyright')[0]}",
        f"databases in {temp}, on {_filesystem(temp)}",
    ]


def _load() -> str:
    return " ".join(_read("/proc/loadavg").split()[:3])


def render(
    summaries: Sequence[Summary],
    options: Options,
    command: str,
    started: datetime,
    load: tuple[str, str],
) -> str:
    lines = [
        f"Measured {started:%Y-%m-%d %H:%M} UTC with `{command}`: {options.repetitions}"
        f" repetitions x {options.seconds} s per row (after a {options.warmup_seconds} s"
        f" warm-up), {options.connections} connections, {options.threads} wrk thread(s);"
        " medians, peak RSS the maximum.",
        "",
        *[f"- {line}" for line in machine()],
        f"- load average (1, 5, 15 min) at start: {load[0]}; at the end: {load[1]}",
        "",
        table(summaries),
        "",
        "Targets:",
        "",
    ]
    for target, met, figures in verdicts(summaries):
        lines.append(f"- {'met' if met else 'NOT MET'}: {target} ({figures})")
    for problem in checks(summaries):
        lines.append(f"- benchmark check failed: {problem}")
    return "\n".join(lines)


def write_doc(path: Path, results: str) -> None:
    """Replace the results block of the Ingest section, leaving the rest alone."""
    block = f"{DOC_BEGIN}\n{results}\n{DOC_END}"
    text = path.read_text() if path.exists() else ""  # re-read: others edit this file too
    if DOC_BEGIN in text and DOC_END in text:
        head, rest = text.split(DOC_BEGIN, 1)
        text = head + block + rest.split(DOC_END, 1)[1]
    elif INGEST_HEADING in text:
        head, rest = text.split(INGEST_HEADING, 1)
        first, _, tail = rest.partition("\n")
        text = f"{head}{INGEST_HEADING}{first}\n\n{block}\n{tail}"
    elif not text:
        text = f"# Performance\n\n{INGEST_HEADING}\n\n{block}\n\n{STORE_HEADING}\n"
    else:
        text = text.rstrip("\n") + f"\n\n{INGEST_HEADING}\n\n{block}\n"
    path.write_text(text)


# --------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run; writes nothing")
    parser.add_argument("--seconds", type=int, help="per measured run (default 10, quick 2)")
    parser.add_argument("--repetitions", type=int, help="per row (default 3, quick 1)")
    parser.add_argument("--connections", type=int, help="wrk connections (default 64, quick 16)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument(
        "--max-rate", type=int, default=20000, help="requests/s the new-report sets can feed"
    )
    keys = ",".join(row.key for row in ROWS)
    parser.add_argument("--rows", help=f"comma-separated subset of {keys}")
    parser.add_argument(
        "--output", type=Path, help=f"where to write the results (default {DOC.relative_to(ROOT)})"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy record each receiver row's first measured run to PATH-ROW.svg (.txt: raw)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench/ingest.py needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    quick = args.quick
    rows = (
        tuple(args.rows.split(",")) if args.rows else tuple(r.key for r in ROWS if not r.named_only)
    )
    options = Options(
        seconds=args.seconds or (2 if quick else 10),
        warmup_seconds=1 if quick else 2,
        repetitions=args.repetitions or (1 if quick else 3),
        connections=args.connections or (16 if quick else 64),
        threads=args.threads,
        max_rate=args.max_rate,
        duplicates=2000 if quick else 20000,
        profile=args.profile,
    )
    if unknown := set(rows) - {row.key for row in ROWS}:
        print(f"bench/ingest.py: unknown rows {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    chosen = [row for row in ROWS if row.key in rows]
    output = None if args.no_write or (quick and args.output is None) else (args.output or DOC)
    command = (
        "python bench/ingest.py"
        + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    )
    started = datetime.now(UTC)
    load_start = _load()
    secret, twilio_token = new_whsec(), secrets.token_hex(16)

    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        data_dir = Path(tmp)
        new_count = options.max_rate * options.seconds
        warm_count = options.max_rate * options.warmup_seconds
        makers: dict[str, Callable[[], Iterator[tuple[str, dict[str, str], bytes]]]] = {
            "new": lambda: standard_requests(secret, "n", new_count),
            "warm": lambda: standard_requests(secret, "w", warm_count),
            "duplicates": lambda: standard_requests(secret, "d", options.duplicates),
            "twilio": lambda: twilio_requests(twilio_token, "a", new_count),
            "warm_twilio": lambda: twilio_requests(twilio_token, "b", warm_count),
        }
        needed = {name for row in chosen for name in (row.data, row.warm) if name}
        files = {
            name: _write_records(data_dir / f"{name}.http", makers[name]())
            for name in sorted(needed)
        }
        signed = sum(file.count for file in files.values())
        print(f"signed {signed:,} requests", file=sys.stderr, flush=True)
        runs: dict[str, list[Run]] = {row.key: [] for row in chosen}
        for repetition in range(options.repetitions):
            for row in chosen:
                profile = None
                if options.profile is not None and repetition == 0 and row.server == "receiver":
                    profile = options.profile.with_name(
                        f"{options.profile.stem}-{row.key}{options.profile.suffix}"
                    )
                run = measure(row, files, options, secret, twilio_token, profile)
                runs[row.key].append(run)
                print(
                    f"[{repetition + 1}/{options.repetitions}] {row.key:<10}"
                    f" {run.result.rate:8,.0f} req/s  p50 {run.result.p50_ms:5.1f} ms"
                    f"  p99 {run.result.p99_ms:5.1f} ms  rss {run.rss_mb:4.0f} MB"
                    f"  cpu {run.server_cpu:4.0%}"
                    + ("" if run.database_cpu is None else f" + pg {run.database_cpu:4.0%}")
                    + ("" if not run.worker_cpu else f" (worker {run.worker_cpu:4.0%})")
                    + f"  non-2xx {run.result.status_errors}"
                    f"  stored {run.stored}/{run.answered}",
                    file=sys.stderr,
                    flush=True,
                )

    summaries = [summarize(row, runs[row.key]) for row in chosen]
    report = render(summaries, options, command, started, (load_start, _load()))
    print(report)
    if output is not None:
        write_doc(output, report)
        print(f"\nwrote {output}", file=sys.stderr)
    failed = checks(summaries) or any(s.non_2xx or s.socket_errors for s in summaries)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
