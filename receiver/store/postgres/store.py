"""``SqlStore`` on PostgreSQL: the store's hooks over ``PgBackend``."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg

from receiver.errors import Conflict, ReceiverError
from receiver.records import ChangeRecord
from receiver.store.postgres import feed
from receiver.store.postgres.backend import CommitObserver, PgBackend, unavailable
from receiver.store.postgres.tx import numbered
from receiver.store.rows import change_record
from receiver.store.sql import SqlStore
from receiver.store.tx import POSTGRESQL, Row, Tx, Work


class PostgresStore(SqlStore):
    """The PostgreSQL backend of ``SqlStore``: several processes may share one database."""

    _dialect = POSTGRESQL

    def __init__(self, url: str, on_commit: CommitObserver | None = None) -> None:
        super().__init__()
        self.backend = PgBackend(url, on_commit=on_commit)

    async def open(self, *, ingest: bool = True) -> None:
        """Migrate the schema (under an advisory lock) and connect. The writer connects
        at its first write, so a command that only reads never opens it."""
        await self.backend.open()

    async def close(self) -> None:
        await self.backend.close()

    async def ping(self) -> None:
        await self.backend.ping()

    async def _submit(self, work: Work, reports: int = 0) -> Any:
        return await self.backend.write(work, reports)

    async def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        rows: list[Row] = await self.backend.read(functools.partial(_rows, sql=sql, params=params))
        return rows

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        changed: int = await self.backend.transact(
            functools.partial(_statement, sql=sql, params=params)
        )
        return changed

    async def _stream(self, sql: str, params: Sequence[Any], batch: int) -> AsyncIterator[Row]:
        try:
            async with self.backend.connection() as conn, conn.transaction():
                async for row in conn.cursor(numbered(sql), *params, prefetch=batch):
                    yield row
        except ReceiverError:
            raise
        except Exception as exc:
            raise unavailable(exc, "answer a read") from exc

    async def changes_after(self, cursor: int, limit: int) -> list[ChangeRecord]:
        """Changes after ``cursor`` in position order: the cursor here is the change's
        position (receiver/store/postgres/feed.py), not its id."""
        rows = await self.backend.transact(
            functools.partial(feed.changes_after, cursor=cursor, limit=limit)
        )
        return [dataclasses.replace(change_record(row), cursor=row["position"]) for row in rows]


async def _rows(tx: Tx, sql: str, params: Sequence[Any]) -> list[Row]:
    return await tx.rows(sql, params)


async def _statement(tx: Tx, sql: str, params: Sequence[Any]) -> int:
    try:
        return await tx.run(sql, params)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise Conflict(f"the store refused the write: {exc}") from exc
