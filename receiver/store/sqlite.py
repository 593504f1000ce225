"""The embedded SQLite store, with a durable group commit on the ingest path.

Theory of operation
-------------------
Ingest: requests verify and parse on the event loop, then ``ingest`` puts their
reports on a queue and awaits a future. One writer thread owns a stdlib ``sqlite3``
connection (WAL, ``synchronous=FULL``). It takes everything waiting, applies it in
one transaction, commits once, and only then resolves each request's future: a 200
always means "on disk". One request's error or bug cannot spoil the others: the batch
then runs again with a savepoint per request (``_apply``). If the transaction fails,
it is rolled back whole and every request in it gets ``StoreUnavailable`` (503, the
provider retries).

Reads and the low-volume staff writes go through one ``aiosqlite`` connection;
WAL lets them run beside the writer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from receiver.core.network import country_of
from receiver.errors import (
    Conflict,
    ReceiverError,
    StoreUnavailable,
)
from receiver.store.base import migrations
from receiver.store.files import (
    WAL_KEEP_BYTES,
    ShmGuard,
    WalWatch,
    check_free_space,
    ensure_writable,
    file_size,
    make_folder,
    wal_path,
)
from receiver.store.ingest import run_jobs
from receiver.store.sql import SqlStore
from receiver.store.tx import SQLITE, Row, SqliteTx, Tx, Work, run_sync

log = logging.getLogger("receiver.store")


MAX_BATCH_REQUESTS = 512


BUSY_TIMEOUT_MS = 5000


PROBE_FRESH_SECONDS = 1.0
"""A commit this recent proves readiness without a probe commit of its own."""


PROBE_WAIT_SECONDS = 2.0


CommitObserver = Callable[[int, float], None]
"""Called by the writer after each commit with (reports in the batch, seconds)."""


@dataclass(slots=True)
class _Job:
    work: Work
    reports: int
    """Reports this job applies (for the batch-size metric)."""
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


_STOP = object()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    # The savepoint around each request of a group commit journals the pages it
    # changes; in a temporary file that was 10x the I/O of the commit itself (34 write
    # calls and 72 KB per report; docs/performance.md). In memory it is a few pages.
    conn.execute("PRAGMA temp_store = MEMORY")
    # Once a checkpoint has finished, the WAL restarts and is cut back to this size, so
    # a WAL that grew while checkpoints could not finish does not stay big (files.py).
    conn.execute(f"PRAGMA journal_size_limit = {WAL_KEEP_BYTES}")
    return conn


def _schema_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _statements(sql: str) -> list[str]:
    """Split a schema section into complete SQL statements."""
    statements, pending = [], ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every schema.sql section newer than the database; return the version.

    The version is read under the write lock, so two processes opening a fresh
    file at once cannot both apply the same section.
    """
    sections = migrations(SQLITE)
    newest = sections[-1][0]
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = _schema_version(conn)
        if current > newest:
            raise StoreUnavailable(
                f"database schema version {current} is newer than this receiver ({newest})"
            )
        for version, sql in sections:
            if version > current:
                for statement in _statements(sql):
                    conn.execute(statement)
                if version == COUNTRY_VERSION:
                    _backfill_countries(conn)
                conn.execute("DELETE FROM schema_version")
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                current = version
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return current


COUNTRY_VERSION = 11
"""The schema section that added ``messages.country`` (renumber with it)."""


def _backfill_countries(conn: sqlite3.Connection) -> None:
    """Set the country of the messages stored before ``country`` existed, in the
    migration's transaction (the aggregates' triggers count them in their country).
    libphonenumber is Python, so SQL cannot do it; about 20 us a message."""
    rows = conn.execute(
        "SELECT id, to_number FROM messages WHERE to_number IS NOT NULL AND country IS NULL"
    ).fetchall()
    updates = [(country, row[0]) for row in rows if (country := country_of(row[1]))]
    conn.executemany("UPDATE messages SET country = ? WHERE id = ?", updates)


async def _touch(tx: Tx) -> None:
    """The readiness probe's write: the database header's ``user_version`` (unused by
    receiver), written back unchanged. It commits one page like any report would."""
    (version,) = await tx.row("PRAGMA user_version")
    await tx.run(f"PRAGMA user_version = {int(version)}")


def _resolve(jobs: Sequence[_Job], results: Sequence[Any]) -> None:
    """Hand each job its result on its own loop: one wake-up per loop per batch, not
    one per job (each ``call_soon_threadsafe`` is a lock and a syscall)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Any]]] = {}
    for job, result in zip(jobs, results, strict=True):
        by_loop.setdefault(job.loop, []).append((job, result))
    for loop, settled in by_loop.items():
        loop.call_soon_threadsafe(_resolve_futures, settled)


def _unavailable() -> StoreUnavailable:
    return StoreUnavailable("the store could not commit the reports")


def _resolve_futures(settled: list[tuple[_Job, Any]]) -> None:
    for job, result in settled:
        if job.future.done():  # the request was cancelled (client went away)
            continue
        if isinstance(result, BaseException):
            job.future.set_exception(result)
        else:
            job.future.set_result(result)


def _apply(conn: sqlite3.Connection, batch: list[_Job], *, isolated: bool) -> list[Any] | None:
    """Begin the batch's transaction and run its jobs; their results, or each job's
    error. ``isolated``: each job in a savepoint, so that an error (a ``ReceiverError``
    refusing on purpose, or a bug) undoes that job's writes only. Not ``isolated``: no
    savepoints (two statements per job, a tenth of the writer's SQLite time), the
    ingest requests applied together (``run_jobs``), and the first job to raise rolls
    everything back: None, and the caller runs the batch again
    isolated (a rule decides afresh from what it reads, as on PostgreSQL). An SQLite
    error always ends the batch."""
    conn.execute("BEGIN IMMEDIATE")
    tx = SqliteTx(conn)
    if not isolated:
        try:
            return run_sync(run_jobs(tx, [job.work for job in batch]))
        except sqlite3.Error:
            raise
        except Exception:
            conn.execute("ROLLBACK")
            return None
    results: list[Any] = []
    for job in batch:
        conn.execute("SAVEPOINT request")
        try:
            results.append(run_sync(job.work(tx)))
        except sqlite3.Error:
            raise
        except Exception as exc:
            if not isinstance(exc, ReceiverError):  # a bug for this job only: isolate it
                log.exception("a write job failed")
            conn.execute("ROLLBACK TO request")
            results.append(exc)
        conn.execute("RELEASE request")
    return results


class IngestWriter:
    """The one thread that writes reports: group commit over everything waiting."""

    def __init__(
        self,
        path: Path,
        on_commit: CommitObserver | None = None,
        *,
        guard: ShmGuard | None = None,
        wal_watch: WalWatch | None = None,
    ) -> None:
        self._path = path
        self._on_commit = on_commit
        self._guard = guard
        self._wal_watch = wal_watch
        self._queue: queue.SimpleQueue[list[_Job] | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="receiver-writer", daemon=True)
        self._closed = False
        self._lock = threading.Lock()
        self._pending: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        self._carried: list[_Job] = []  # taken from the queue beyond a full batch
        self.healthy = True
        self.committed_at = -PROBE_FRESH_SECONDS
        """``time.monotonic()`` of the last successful commit."""

    def start(self) -> None:
        self._thread.start()

    async def submit(self, work: Work, reports: int = 0) -> Any:
        """Run ``work`` in the next group commit; its result once committed to disk.
        An exception it raises (not an SQLite error) undoes only its own writes and is
        raised here.

        The jobs submitted during one event-loop iteration are handed to the writer
        together, at the end of it: handed over one by one, the writer woke for the
        first and committed it alone while the loop was still parsing the others, so
        every other commit held one request (docs/performance.md)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:  # so no job can land behind the stop marker
            if self._closed:
                raise StoreUnavailable("the service is shutting down")
            pending = self._pending.get(loop)
            if pending is None:
                pending = self._pending[loop] = []
                loop.call_soon(self._hand_over, loop)
            pending.append(_Job(work, reports, future, loop))
        return await future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            jobs = self._pending.pop(loop, None)
            if jobs:  # None: stop() already queued them
                self._queue.put(jobs)

    def stop(self) -> None:
        """Refuse new work, let the writer drain what is queued (and submitted), and
        wait for it."""
        with self._lock:
            self._closed = True
            for jobs in self._pending.values():
                self._queue.put(jobs)
            self._pending.clear()
            self._queue.put(_STOP)
        self._thread.join()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _next_batch(self) -> tuple[list[_Job], bool]:
        """Block for jobs, then take everything else waiting, up to
        MAX_BATCH_REQUESTS: (batch, stop seen)."""
        batch, self._carried = self._carried, []
        item = self._queue.get() if not batch else self._queue_nowait()
        while item is not None:
            if item is _STOP:
                return batch, True
            assert isinstance(item, list)
            batch.extend(item)
            if len(batch) >= MAX_BATCH_REQUESTS:
                batch, self._carried = batch[:MAX_BATCH_REQUESTS], batch[MAX_BATCH_REQUESTS:]
                return batch, False
            item = self._queue_nowait()
        return batch, False

    def _queue_nowait(self) -> list[_Job] | object | None:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        stopping = False
        while not stopping:
            batch, stopping = self._next_batch()
            if not batch:
                continue
            try:
                if self._guard is not None:  # before SQLite touches the -shm mapping
                    self._guard.check()
                if conn is None:
                    conn = _connect(self._path)
                    conn.row_factory = sqlite3.Row
                self._commit(conn, batch)
            except Exception as exc:  # never leave a request waiting forever
                self.healthy = False
                log.error("the writer failed, %d requests answered 503: %s", len(batch), exc)
                _resolve(batch, [_unavailable() for _ in batch])
                if conn is not None:
                    conn.close()
                    conn = None
        if conn is not None:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        started = time.perf_counter()
        try:
            check_free_space(self._path)
            results = _apply(conn, batch, isolated=False)
            if results is None:  # a job raised: again, each job in a savepoint of its own
                results = _apply(conn, batch, isolated=True)
                assert results is not None  # isolated, every job has its result or error
            conn.execute("COMMIT")
        except (sqlite3.Error, StoreUnavailable) as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.healthy = False
            log.error("commit failed, %d requests answered 503: %s", len(batch), exc)
            _resolve(batch, [_unavailable() for _ in batch])
            return
        self.healthy = True
        self.committed_at = time.monotonic()
        if self._wal_watch is not None:
            self._wal_watch.after_commit(conn)
        if self._on_commit is not None:
            self._on_commit(sum(job.reports for job in batch), time.perf_counter() - started)
        _resolve(batch, results)


class SqliteStore(SqlStore):
    """The SQLite backend of ``SqlStore``."""

    _dialect = SQLITE

    def __init__(
        self,
        path: Path,
        on_commit: CommitObserver | None = None,
        *,
        wal_watch: WalWatch | None = None,
    ) -> None:
        super().__init__()
        self.path = path
        self._on_commit = on_commit
        self._wal_watch = wal_watch or WalWatch(path)
        self._guard = ShmGuard(path)
        self._writer: IngestWriter | None = None
        self._reader: aiosqlite.Connection | None = None
        self._probe: asyncio.Future[Any] | None = None

    async def open(self, *, ingest: bool = True) -> None:
        """Migrate the schema, start the writer (if ``ingest``) and the reader. To
        ingest, the folder and the database files must be writable."""
        try:
            if ingest:
                ensure_writable(self.path)
            else:
                make_folder(self.path)
            if not self.path.exists():  # message data: readable by the service user only
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            conn = _connect(self.path)
            try:
                migrate(conn)
            finally:
                conn.close()
            self._reader = await aiosqlite.connect(self.path)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
        self._reader.row_factory = aiosqlite.Row
        await self._reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await self._reader.execute("PRAGMA synchronous = FULL")
        if ingest:
            self._writer = IngestWriter(
                self.path, self._on_commit, guard=self._guard, wal_watch=self._wal_watch
            )
            self._writer.start()

    async def close(self) -> None:
        """Drain the writer, then close; safe to call twice."""
        if self._writer is not None:
            await asyncio.to_thread(self._writer.stop)
            self._writer = None
        if self._reader is not None:
            await self._reader.close()
            self._reader = None

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise StoreUnavailable("the store is not open")
        return self._reader

    def wal_bytes(self) -> int:
        """The size of the write-ahead log file now (0 when there is none)."""
        return file_size(wal_path(self.path))

    async def ping(self) -> None:
        """Raise StoreUnavailable unless a report could be committed right now.

        Reads must work, the disk must have its reserve (files.py), and the writer must
        have committed within PROBE_FRESH_SECONDS, or else commit a probe (``_touch``)
        within PROBE_WAIT_SECONDS. Concurrent callers share one probe, and a success
        counts as a fresh commit, so polling costs at most one small commit a second."""
        await self._query("SELECT 1")  # checks the -shm file first
        writer = self._writer
        if writer is None:
            return
        check_free_space(self.path)
        if not writer.alive:
            raise StoreUnavailable("the writer thread has stopped")
        if writer.healthy and time.monotonic() - writer.committed_at < PROBE_FRESH_SECONDS:
            return
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(writer.submit(_touch))
            self._probe.add_done_callback(lambda probe: probe.cancelled() or probe.exception())
        try:
            await asyncio.wait_for(asyncio.shield(self._probe), PROBE_WAIT_SECONDS)
        except TimeoutError:
            raise StoreUnavailable(
                f"the store could not commit within {PROBE_WAIT_SECONDS:g} s"
            ) from None

    async def _submit(self, work: Work, reports: int = 0) -> Any:
        if self._writer is None:
            raise StoreUnavailable("the store is not accepting writes")
        return await self._writer.submit(work, reports)

    async def _stream(self, sql: str, params: Sequence[Any], batch: int) -> AsyncIterator[Row]:
        self._guard.check()
        try:
            async with self.reader.execute(sql, params) as cursor:
                while rows := await cursor.fetchmany(batch):
                    for row in rows:
                        yield row
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the store could not be read: {exc}") from exc

    async def _query(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        self._guard.check()  # before SQLite touches the -shm mapping (files.py)
        try:
            async with self.reader.execute(sql, params) as cursor:
                return list(await cursor.fetchall())
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the store could not be read: {exc}") from exc

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        self._guard.check()
        try:
            cursor = await self.reader.execute(sql, params)
            await self.reader.commit()
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"the store refused the write: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the store could not be written: {exc}") from exc
        return cursor.rowcount
