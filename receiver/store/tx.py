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
    """Appended (``lock``) to a SELECT whose rows of ``{table}`` (a name or alias) the
    transaction goes on to change: PostgreSQL locks them (``FOR UPDATE``), so another
    process's transaction waits, then reads what this one wrote; SQLite's one writer
    needs nothing."""
    skip_locked: str
    """Appended (``skip``) to a claim's SELECT: rows of ``{table}`` another transaction
    holds are skipped, the others locked."""
    json_has: str
    """SQL true when JSON array text ``{array}`` holds the text ``{value}``."""
    json_field: str
    """SQL for the text field ``{key}`` of the JSON object text ``{doc}``."""
    bytes_find: str
    """SQL true when the bytes ``{haystack}`` hold the bytes ``{needle}``."""
    json_null: str
    """SQL for the JSON object text ``{doc}`` with its field ``{key}`` set to null."""
    indexed_by: str
    """After a table in FROM (``using``): read it through the index ``{index}``.
    SQLite's planner has no statistics (we never ANALYZE) and needs telling;
    PostgreSQL's has them (autovacuum) and has no such clause."""
    json_elements: str
    """A FROM item: the elements of the JSON array text ``{array}``, as rows of one
    column, ``value``."""
    json_item: str
    """SQL for the text at index ``{index}`` of the JSON array ``{element}`` (compared
    with a key column: PostgreSQL's in the columns' collation, so its index serves)."""

    def json_table(self, array: str, columns: Sequence[str]) -> str:
        """A subquery: the JSON array of arrays ``array`` (an SQL expression, e.g. ``?``)
        as rows of the text ``columns``. One parameter for any number of keys, so the
        statement's text (and PostgreSQL's plan of it) is the same for every batch."""
        items = ", ".join(
            f"{self.json_item.format(element='value', index=index)} AS {column}"
            for index, column in enumerate(columns)
        )
        return f"(SELECT {items} FROM {self.json_elements.format(array=array)})"  # noqa: S608

    def bytes_hold(self, haystack: str, needle: str) -> str:
        """``bytes_find`` for these SQL expressions."""
        return self.bytes_find.format(haystack=haystack, needle=needle)

    def contains(self, array: str, value: str) -> str:
        """``json_has`` for these SQL expressions."""
        return self.json_has.format(array=array, value=value)

    def using(self, index: str) -> str:
        """``indexed_by`` for this index."""
        return self.indexed_by.format(index=index)

    def lock(self, table: str) -> str:
        """``lock_rows`` for the rows of ``table`` (not of the rest of a join)."""
        return self.lock_rows.format(table=table)

    def skip(self, table: str) -> str:
        """``skip_locked`` for the rows of ``table`` (not of the rest of a join)."""
        return self.skip_locked.format(table=table)

    def without(self, doc: str, key: str) -> str:
        """``json_null`` for this SQL expression and key."""
        return self.json_null.format(doc=doc, key=key)

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
    json_null="json_set({doc}, '$.{key}', NULL)",
    indexed_by=" INDEXED BY {index}",
    json_elements="json_each({array})",
    json_item="({element} ->> {index})",
)
POSTGRESQL = Dialect(
    "postgresql",
    lock_rows=" FOR UPDATE OF {table}",
    skip_locked=" FOR UPDATE OF {table} SKIP LOCKED",
    json_has="{value} IN (SELECT json_array_elements_text(CAST({array} AS json)))",
    json_field="(CAST({doc} AS json) ->> '{key}')",
    bytes_find="position({needle} IN {haystack}) > 0",
    json_null="CAST(jsonb_set(CAST({doc} AS jsonb), '{{{key}}}', 'null') AS text)",
    indexed_by="",
    json_elements="json_array_elements(CAST({array} AS json)) AS elements(value)",
    json_item='(({element} ->> {index}) COLLATE "C")',
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

    async def rows_many(self, sql: str, params: Iterable[Sequence[Any]]) -> list[Row]:
        """Run a statement once per parameter tuple; the rows of every run, in order
        (PostgreSQL: in one round trip)."""


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

    async def rows_many(self, sql: str, params: Iterable[Sequence[Any]]) -> list[Row]:
        return [row for args in params for row in self.conn.execute(sql, args).fetchall()]


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

    async def rows_many(self, sql: str, params: Iterable[Sequence[Any]]) -> list[Row]:
        return [row for args in params for row in await self.rows(sql, args)]


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
