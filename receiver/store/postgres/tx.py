"""``Tx`` over an asyncpg connection: the store's rules, unchanged, on PostgreSQL.

The rules write ``?`` placeholders and pass Python values as SQLite takes them. Two
differences are bridged here:

* placeholders: ``?`` becomes ``$1 .. $n`` (not inside quoted literals, quoted names or
  comments), translated once per SQL text;
* types: asyncpg encodes each value as the type PostgreSQL inferred for its parameter,
  and refuses what does not fit, where SQLite converts by the column's affinity (an int
  into a TEXT column is stored as text, ``'7'`` into an INTEGER one as 7). A statement
  that was refused a value learns its parameters' types once and from then on converts
  its values the way SQLite would; a statement that never was pays nothing.

A parameter PostgreSQL cannot infer a type for (``? IS NULL`` alone) is an error on
PostgreSQL: write ``CAST(? AS TEXT) IS NULL``, which both run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from receiver.store.tx import POSTGRESQL, Row

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
    """A connection of its own (the writer's) or one lent by the pool."""

Convert = Callable[[Any], Any]


@lru_cache(maxsize=4096)
def numbered(sql: str) -> str:
    """``sql`` with each ``?`` placeholder numbered as PostgreSQL wants (``$1``, ``$2``..);
    a ``?`` inside '...' literals, "..." names, -- and /* */ comments stays."""
    out: list[str] = []
    n = 0
    i, end = 0, len(sql)
    while i < end:
        char = sql[i]
        if char == "?":
            n += 1
            out.append(f"${n}")
            i += 1
            continue
        if char in "'\"":
            close = sql.find(char, i + 1)
            while close != -1 and sql.startswith(char, close + 1):  # '' or "" escapes
                close = sql.find(char, close + 2)
            stop = end if close == -1 else close + 1
        elif sql.startswith("--", i):
            close = sql.find("\n", i)
            stop = end if close == -1 else close + 1
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            stop = end if close == -1 else close + 2
        else:
            stop = i + 1
        out.append(sql[i:stop])
        i = stop
    return "".join(out)


def rowcount(status: str) -> int:
    """The rows a command touched, from its status (``UPDATE 3``, ``INSERT 0 1``)."""
    last = status.rpartition(" ")[2]
    return int(last) if last.isdigit() else 0


def _as_text(value: Any) -> Any:
    if isinstance(value, bool):
        return str(int(value))
    return str(value) if isinstance(value, int | float) else value


def _as_integer(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value  # not a number: let asyncpg refuse it with its own message
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _as_bytes(value: Any) -> Any:
    return value.encode() if isinstance(value, str) else value


_CONVERT: dict[str, Convert] = {
    "text": _as_text,
    "varchar": _as_text,
    "bpchar": _as_text,
    "int2": _as_integer,
    "int4": _as_integer,
    "int8": _as_integer,
    "bytea": _as_bytes,
}

_converters: dict[str, tuple[Convert | None, ...]] = {}
"""Per translated SQL that was refused a value: how to convert each parameter."""


def _refused(exc: asyncpg.DataError) -> bool:
    """True if asyncpg refused a value before sending it (so the transaction is intact),
    not PostgreSQL a statement."""
    return isinstance(exc.__cause__, TypeError | ValueError | OverflowError)


class PgTx:
    """``Tx`` over an asyncpg connection (inside a transaction the backend opened, or
    in autocommit for reads)."""

    dialect = POSTGRESQL

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._call(self.conn.fetch, sql, params)  # type: ignore[no-any-return]

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return await self._call(self.conn.fetchrow, sql, params)

    async def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self._call(self.conn.fetchval, sql, params)

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return rowcount(await self._call(self.conn.execute, sql, params))

    async def run_many(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        await self._call_many(self.conn.executemany, sql, params)

    async def rows_many(self, sql: str, params: Iterable[Sequence[Any]]) -> list[Row]:
        rows: list[Row] = await self._call_many(self.conn.fetchmany, sql, params)
        return rows

    async def _call_many(
        self, method: Callable[..., Any], sql: str, params: Iterable[Sequence[Any]]
    ) -> Any:
        """``method`` (``executemany``, ``fetchmany``: one round trip) over every tuple."""
        query = numbered(sql)
        batch = [tuple(args) for args in params]
        if not batch:
            return []
        convert = _converters.get(query)
        if convert is None:
            try:
                return await method(query, batch)
            except asyncpg.DataError as exc:
                if not _refused(exc):
                    raise
            convert = await self._learn(query)
        return await method(query, [_converted(convert, args) for args in batch])

    async def _call(self, method: Callable[..., Any], sql: str, params: Sequence[Any]) -> Any:
        query = numbered(sql)
        convert = _converters.get(query)
        if convert is None:
            try:
                return await method(query, *params)
            except asyncpg.DataError as exc:
                if not _refused(exc):
                    raise
            convert = await self._learn(query)
        return await method(query, *_converted(convert, params))

    async def _learn(self, query: str) -> tuple[Convert | None, ...]:
        """Ask PostgreSQL the statement's parameter types; remember how to convert."""
        statement = await self.conn.prepare(query)
        convert = tuple(_CONVERT.get(kind.name) for kind in statement.get_parameters())
        _converters[query] = convert
        return convert


def _converted(convert: tuple[Convert | None, ...], params: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(
        value if how is None else how(value) for how, value in zip(convert, params, strict=True)
    )
