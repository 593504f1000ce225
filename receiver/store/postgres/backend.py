"""A PostgreSQL database under the store's rules: a pool, the schema, a group commit.

Theory of operation
-------------------
Writes: each process has one writer, an asyncio task with a connection of its own.
It takes every job waiting (up to ``MAX_BATCH``), runs them in one transaction, commits
once, and only then resolves each job's future. When a job fails (a ``ReceiverError``,
a refused statement or a bug) the batch is rolled back and run again with a savepoint
per job, so the failed job undoes only its own writes and its error is raised to its
caller (as ``StoreUnavailable``, or as it is). Several processes write at once: a
deadlock, a serialization failure or a unique key two processes raced for rolls the
batch back and runs it again (the rules are functions of what they read, so a second
run decides afresh), up to ``ATTEMPTS`` times. A lost connection or a restarting server
fails the batch in flight with ``StoreUnavailable`` (503 with Retry-After: the sender
retries); the next batch connects again.

The writer's connection holds an aggregate shard (schema.sql, version 11 postgresql):
a session advisory lock on one of ``SHARDS`` numbers, and ``receiver.shard`` set to it,
so that no two processes' batches update the same aggregate rows.

Reads take a pooled connection each, in autocommit. ``transact`` runs work in a
transaction of its own, outside the group commit (the change feed's sequencer).

No driver or server error leaves this module: each becomes ``StoreUnavailable``,
logged with its trace when it is not a plain outage. (A job's own bug, not the
database's, reaches its caller unchanged, as on SQLite.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import asyncpg

from receiver.errors import ReceiverError, StoreUnavailable
from receiver.store.base import migrations
from receiver.store.ingest import run_jobs
from receiver.store.postgres.tx import PgTx
from receiver.store.tx import POSTGRESQL, Tx, Work

if TYPE_CHECKING:
    from receiver.store.postgres.tx import Connection

log = logging.getLogger("receiver.store")

LOCK_CLASS = 0x72656376
"""The first key of every advisory lock receiver takes ("recv")."""
SCHEMA_LOCK = 1
SHARD_LOCKS = 1000
"""Shard n is advisory lock (LOCK_CLASS, SHARD_LOCKS + n)."""
SHARDS = 64
"""More writers than this share shard 0 (correct, but they wait on each other)."""

MAX_BATCH = 512
ATTEMPTS = 5
"""Runs of a batch that lost a race with another process, before it fails with 503."""
PROBE_WAIT_SECONDS = 2.0

RETRYABLE = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.UniqueViolationError,
    asyncpg.exceptions.InvalidCachedStatementError,
)
"""Another process got there first (or changed the schema under a cached plan): the
same work, run again, decides afresh."""

OUTAGE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.PostgresSystemError,
    OSError,
    TimeoutError,
)
"""The server is gone, restarting, out of room, or did not answer in time."""

CommitObserver = Callable[[int, float], None]
"""Called after each commit with (reports in the batch, seconds)."""


def target(url: str) -> str:
    """``host:port/database`` of a URL, for messages (never the user or password)."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


def unavailable(exc: BaseException, doing: str) -> StoreUnavailable:
    """The ``StoreUnavailable`` for a driver or server error (logged with its trace
    when it is not an outage: that is a bug)."""
    if not isinstance(exc, OUTAGE):
        log.error("PostgreSQL refused %s", doing, exc_info=exc)
    return StoreUnavailable(f"PostgreSQL could not {doing}: {str(exc) or type(exc).__name__}")


async def migrate(conn: Connection) -> int:
    """Apply every PostgreSQL section of schema.sql newer than the database, in one
    transaction under an advisory lock, so that processes starting together apply
    each section once; return the version."""
    sections = migrations(POSTGRESQL)
    newest = sections[-1][0]
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_CLASS, SCHEMA_LOCK)
        current: int = 0
        if await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL"):
            current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
        if current > newest:
            raise StoreUnavailable(
                f"database schema version {current} is newer than this receiver ({newest})"
            )
        for version, sql in sections:
            if version > current:
                await conn.execute(sql)
                await conn.execute("DELETE FROM schema_version")
                await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
                current = version
    return current


@dataclass(slots=True)
class _Job:
    work: Work
    reports: int
    future: asyncio.Future[Any]


class PgBackend:
    """A PostgreSQL database for the store: ``write`` (group commit), ``read``,
    ``transact``, ``ping``. ``open`` migrates the schema and starts the writer."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        command_timeout: float = 10.0,
        on_commit: CommitObserver | None = None,
    ) -> None:
        self.url = url
        self.pool_size = pool_size
        self.command_timeout = command_timeout
        self.version = 0
        self.shard = 0
        """The writer connection's aggregate shard (0 until it connects)."""
        self._on_commit = on_commit
        self._pool: asyncpg.Pool | None = None
        self._conn: asyncpg.Connection | None = None
        self._queue: list[_Job] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False

    async def open(self) -> None:
        """Connect, create or migrate the schema, start the writer."""
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self.pool_size,
                command_timeout=self.command_timeout,
                server_settings={"application_name": "receiver"},
            )
            async with self._pool.acquire() as conn:
                self.version = await migrate(conn)
        except ReceiverError:
            await self.close()
            raise
        except (asyncpg.PostgresError, *OUTAGE) as exc:
            await self.close()
            raise StoreUnavailable(
                f"cannot open the PostgreSQL store at {target(self.url)}: {exc}"
            ) from exc
        self._writer = asyncio.create_task(self._write_loop(), name="receiver-pg-writer")

    async def close(self) -> None:
        """Refuse new work, let the writer finish what is queued, disconnect."""
        self._closing = True
        self._wake.set()
        if self._writer is not None:
            await self._writer
            self._writer = None
        if self._conn is not None:
            await self._drop_connection()
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), self.command_timeout)
            except TimeoutError:
                self._pool.terminate()
            self._pool = None

    # ------------------------------------------------------------ reads, transactions

    async def read(self, work: Work) -> Any:
        """Run ``work`` on a pooled connection in autocommit (each statement sees what
        was committed when it started)."""
        if self._pool is None:
            raise StoreUnavailable("the store is not open")
        try:
            async with self._pool.acquire() as conn:
                return await work(PgTx(conn))
        except ReceiverError:
            raise
        except Exception as exc:
            raise unavailable(exc, "answer a read") from exc

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection of the caller's own, for a read too big for ``read``
        (a server-side cursor); the caller maps errors (``unavailable``)."""
        if self._pool is None:
            raise StoreUnavailable("the store is not open")
        async with self._pool.acquire() as conn:
            yield conn

    async def transact(self, work: Work) -> Any:
        """Run ``work`` in a transaction of its own on a pooled connection, outside the
        group commit; run again if it lost a race with another process."""
        if self._pool is None:
            raise StoreUnavailable("the store is not open")
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    return await work(PgTx(conn))
            except ReceiverError:
                raise
            except RETRYABLE as exc:
                if attempt == ATTEMPTS:
                    raise unavailable(exc, "commit a transaction") from exc
                await _backoff(attempt)
            except Exception as exc:
                raise unavailable(exc, "commit a transaction") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless a read and a commit through the writer both
        succeed within PROBE_WAIT_SECONDS."""
        try:
            async with asyncio.timeout(PROBE_WAIT_SECONDS):
                await self.read(_select_one)
                await self.write(_select_one)
        except TimeoutError:
            raise StoreUnavailable(
                f"PostgreSQL did not answer within {PROBE_WAIT_SECONDS:g} s"
            ) from None

    # ------------------------------------------------------------ the group commit

    async def write(self, work: Work, reports: int = 0) -> Any:
        """Run ``work`` in the next group commit; its result once committed. A
        ``ReceiverError`` it raises undoes only its own writes and is raised here."""
        if self._closing or self._writer is None:
            raise StoreUnavailable("the store is not accepting writes")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(work, reports, future))
        self._wake.set()
        return await future

    async def _write_loop(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                await self._commit(batch)
            except BaseException as exc:  # never leave a request waiting forever
                _resolve(batch, [StoreUnavailable("the writer failed") for _ in batch])
                if not isinstance(exc, Exception):
                    raise
                log.exception("the PostgreSQL writer failed")

    async def _commit(self, batch: list[_Job]) -> None:
        started = time.perf_counter()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                conn = await self._connection()
                results = await self._run_batch(conn, batch)
            except RETRYABLE as exc:
                await self._roll_back()
                if attempt < ATTEMPTS:
                    log.info("a batch lost a race (%s), running it again", type(exc).__name__)
                    await _backoff(attempt)
                    continue
                failure = unavailable(exc, "commit a batch")
            except Exception as exc:
                await self._drop_connection()
                failure = unavailable(exc, "commit a batch")
            else:
                if self._on_commit is not None:
                    reports = sum(job.reports for job in batch)
                    self._on_commit(reports, time.perf_counter() - started)
                _resolve(batch, results)
                return
            log.error("commit failed, %d jobs answered 503: %s", len(batch), failure.detail)
            _resolve(batch, [StoreUnavailable(failure.detail) for _ in batch])
            return

    async def _run_batch(self, conn: asyncpg.Connection, batch: list[_Job]) -> list[Any]:
        """One transaction for the whole batch (its ingest requests applied together:
        ``run_jobs``); the results. If a job fails, the batch
        is rolled back and run again with each job in a savepoint (``_run_isolated``),
        so that the failed job undoes only its own writes. (A savepoint per job in every
        batch would cost a round trip each, and past 64 in one transaction every
        session's snapshots overflow into pg_subtrans.)"""
        await conn.execute("BEGIN")
        try:
            results = await run_jobs(PgTx(conn), [job.work for job in batch])
        except (*RETRYABLE, *OUTAGE):
            raise
        except Exception:  # decided again in isolation, where it is reported
            await conn.execute("ROLLBACK")
            return await self._run_isolated(conn, batch)
        await conn.execute("COMMIT")
        return results

    async def _run_isolated(self, conn: asyncpg.Connection, batch: list[_Job]) -> list[Any]:
        """One transaction, each job in a savepoint; the results (or each job's error)."""
        tx = PgTx(conn)
        results: list[Any] = []
        await conn.execute("BEGIN; SAVEPOINT job")
        for index, job in enumerate(batch):
            if index:
                await conn.execute("RELEASE job; SAVEPOINT job")
            try:
                results.append(await job.work(tx))
            except (*RETRYABLE, *OUTAGE):
                raise
            except ReceiverError as exc:  # refused on purpose (e.g. a conflict)
                await conn.execute("ROLLBACK TO job")
                results.append(exc)
            except asyncpg.PostgresError as exc:  # a statement PostgreSQL refused: a bug
                await conn.execute("ROLLBACK TO job")
                results.append(unavailable(exc, "apply a write"))
            except Exception as exc:  # a bug of this job's, raised as it is (as on SQLite)
                log.exception("a write job failed")
                await conn.execute("ROLLBACK TO job")
                results.append(exc)
        await conn.execute("COMMIT")
        return results

    async def _connection(self) -> asyncpg.Connection:
        """The writer's connection, connected (with a shard) if it is not."""
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        conn = await asyncpg.connect(
            self.url,
            command_timeout=self.command_timeout,
            server_settings={"application_name": "receiver writer"},
        )
        try:
            self.shard = await _claim_shard(conn)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        return conn

    async def _roll_back(self) -> None:
        """End the failed transaction, keeping the connection if it still works."""
        conn = self._conn
        if conn is None or conn.is_closed():
            return
        try:
            await conn.execute("ROLLBACK")
        except Exception:
            await self._drop_connection()

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()


async def _claim_shard(conn: asyncpg.Connection) -> int:
    """Take the first free aggregate shard for this session (0 if all are taken)."""
    for shard in range(1, SHARDS + 1):
        if await conn.fetchval(
            "SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, SHARD_LOCKS + shard
        ):
            await conn.execute("SELECT set_config('receiver.shard', $1, false)", str(shard))
            return shard
    log.warning("all %d aggregate shards are taken: this writer shares shard 0", SHARDS)
    return 0


async def _select_one(tx: Tx) -> Any:
    return await tx.value("SELECT 1")


async def _backoff(attempt: int) -> None:
    await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 - jitter


def _resolve(batch: list[_Job], results: list[Any]) -> None:
    for job, result in zip(batch, results, strict=True):
        if job.future.done():  # the request went away
            continue
        if isinstance(result, BaseException):
            job.future.set_exception(result)
        else:
            job.future.set_result(result)
