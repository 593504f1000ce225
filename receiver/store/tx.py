"""The one seam between the store's rules and a database: a transaction (``Tx``).

The rules (``receiver.store.ingest``, ``outbox``, ``changes``, ``reconcile``,
``retention``, ``queries``) are written once, as ``async`` functions of a ``Tx``, in
SQL both backends run: ``?`` placeholders, ``INSERT ... ON CONFLICT``, ``RETURNING``,
text timestamps of one fixed width. Where the dialects differ a rule asks
``tx.dialect``. A backend supplies the ``Tx`` and runs the rules: connections,
transactions, group commit, retries.

SQLite's ``Tx`` wraps the writer thread's ``sqlite3`` connection: its methods never
suspend, so the writer runs a rule to the end with ``run_sync`` without an event loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import aiosqlite

T = TypeVar("T")

Row = Any
"""A result row: ``row["column"]`` and ``row[0]`` (``sqlite3.Row``, ``asyncpg.Record``)."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """What a rule may need to know about the database it runs on."""

    name: str
    """``sqlite`` or ``postgresql``."""
    lock_rows: str
    """Appended to a SELECT whose rows the transaction goes on to change: PostgreSQL
    locks them (``FOR UPDATE``); SQLite's one writer needs nothing."""
    skip_locked: str
    """Appended to a claim's SELECT: rows another transaction holds are skipped."""
    json_has: str
    """SQL true when JSON array text ``{array}`` holds the text ``{value}``."""
    json_field: str
    """SQL for the text field ``{key}`` of the JSON object text ``{doc}``."""
    bytes_find: str
    """SQL true when the bytes ``{haystack}`` hold the bytes ``{needle}``."""
    json_clear: str
    """SQL for the JSON object text ``{doc}`` with its field ``{key}`` set to null."""
    planner_hints: bool
    """SQLite keeps no statistics (we never ANALYZE), so a few reads tell its planner
    which index to use (``INDEXED BY``) or not to use (``+column``); PostgreSQL plans
    from its statistics and has no such syntax."""

    def index(self, name: str) -> str:
        """`` INDEXED BY name`` where the planner needs telling, else nothing."""
        return f" INDEXED BY {name}" if self.planner_hints else ""

    def unindexed(self, column: str) -> str:
        """``column`` written so that no index serves it, where the planner needs telling."""
        return f"+{column}" if self.planner_hints else column

    def cleared(self, doc: str, key: str) -> str:
        """``json_clear`` for this SQL expression and key."""
        return self.json_clear.format(doc=doc, key=key)

    def bytes_hold(self, haystack: str, needle: str) -> str:
        """``bytes_find`` for these SQL expressions."""
        return self.bytes_find.format(haystack=haystack, needle=needle)

    def contains(self, array: str, value: str) -> str:
        """``json_has`` for these SQL expressions."""
        return self.json_has.format(array=array, value=value)

    def field(self, doc: str, key: str) -> str:
        """``json_field`` for this SQL expression and key."""
        return self.json_field.format(doc=doc, key=key)


SQLITE = Dialect(
    "sqlite",
    lock_rows="",
    skip_locked="",
    json_has="EXISTS (SELECT 1 FROM json_each({array}) WHERE value = {value})",
    json_field="json_extract({doc}, '$.{key}')",
    bytes_find="instr({haystack}, {needle}) > 0",
    json_clear="json_set({doc}, '$.{key}', NULL)",
    planner_hints=True,
)
POSTGRESQL = Dialect(
    "postgresql",
    lock_rows=" FOR UPDATE",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    json_has="{value} IN (SELECT json_array_elements_text(CAST({array} AS json)))",
    json_field="(CAST({doc} AS json) ->> '{key}')",
    bytes_find="position({needle} IN {haystack}) > 0",
    json_clear="CAST(jsonb_set(CAST({doc} AS jsonb), '{{{key}}}', 'null') AS text)",
    planner_hints=False,
)


class Tx(Protocol):
    """One connection inside one open transaction."""

    dialect: Dialect

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row the statement returns."""

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row:
        """The first row, or None."""

    async def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None."""

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; how many rows it inserted, changed or deleted."""

    async def run_many(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        """Run a statement once per parameter tuple."""


Work = Callable[[Tx], Coroutine[Any, Any, Any]]
"""A unit of writes: a rule bound to its arguments, run in the open transaction."""


class SqliteTx:
    """``Tx`` over a ``sqlite3`` connection (the writer thread's, or a tool's)."""

    dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.conn.execute(sql, params).fetchall()

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row:
        return self.conn.execute(sql, params).fetchone()

    async def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql, params).rowcount

    async def run_many(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, params)


class AioSqliteTx:
    """``Tx`` over the ``aiosqlite`` reader connection (reads and autocommit writes)."""

    dialect = SQLITE

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self.conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row:
        async with self.conn.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.row(sql, params)
        return None if row is None else row[0]

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self.conn.execute(sql, params) as cursor:
            return cursor.rowcount

    async def run_many(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, params)


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a rule over ``SqliteTx`` to its end, here and now: it never suspends, so no
    event loop is needed (the writer thread has none)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coroutine.close()
    raise RuntimeError("a store rule awaited something other than its transaction")
