"""Copy a whole SQLite store into another store, SQLite or PostgreSQL (``receiver migrate``).

Every table that holds data is copied in foreign-key order (``TABLES``), streamed from
the source in batches through its ``_stream`` hook and written to the target in one
transaction per batch through its ``_submit`` hook: never the whole store in memory, and
no SQL driver here. Each row keeps its ids, so the change feed's cursors stay valid: a
change's cursor is its ``id`` on SQLite and its ``position`` on PostgreSQL, and a copied
change gets the same number in both. The target's id sequence for changes is then set
past the source's (SQLite's AUTOINCREMENT counter counts changes pruned since, too).

The delivery aggregates (``REBUILT``) are not copied: the target's triggers count every
copied message into them, as they count every message the target stores later. The
source's and the target's are then compared (summed over the target's shards; a count
at 0 is no row): a difference means the source's counts had drifted from its messages,
and the target's are the recount.

Safe to run again after a failure, though not resumable where it stopped: each batch
commits whole, and a row whose primary key (or other unique key) the target already
holds is skipped (``ON CONFLICT DO NOTHING``), so a second run into the half-filled
target (``resume``) reads the whole source again and writes only the rows missing.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from receiver.errors import Conflict, UsageError
from receiver.store.sql import SqlStore
from receiver.store.tx import Row, Tx


@dataclass(frozen=True, slots=True)
class Table:
    """A table the migration copies: its name, its primary key (the copy's order) and
    how many rows one batch holds."""

    name: str
    key: str
    batch: int = 1000


TABLES = (
    Table("messages", "id"),
    Table("raw_requests", "id", batch=100),  # bodies up to the request size limit
    Table("events", "provider, event_id"),
    Table("staff", "id"),
    Table("idempotency_keys", "client_id, key"),
    Table("outbox", "message_id"),
    Table("erasures", "id"),
    Table("changes", "id"),
    Table("subscribers", "name"),
    Table("change_deliveries", "subscriber, change"),
    Table("lookups", "message_id"),
    Table("rate_limits", "key"),  # the send limits' state, so a client's budget carries over
    Table("idempotency_claims", "client_id, key"),  # keys in flight (none once stopped)
)
"""Every table of schema.sql that holds data, each after the tables it references."""


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A delivery aggregate the target's triggers rebuild: its name and its key columns
    (a PostgreSQL aggregate row also names a shard, which the comparison sums over)."""

    name: str
    key: str
    counts: str


_LATENCY = ", ".join(f"sum(l{i})" for i in range(49))
REBUILT = (
    Aggregate("delivery_hourly", "period, provider, country, network, status", "sum(messages)"),
    Aggregate("delivery_daily", "period, provider, country, network, status", "sum(messages)"),
    Aggregate("latency_hourly", "period, provider, country, network", _LATENCY),
    Aggregate("latency_daily", "period, provider, country, network", _LATENCY),
)


NOT_COPIED = ("schema_version", "change_positions")
"""Each store keeps its own: the schema version (its own migrations made its schema),
and on PostgreSQL the feed's highest position given, set past the copied cursors."""


@dataclass(frozen=True, slots=True)
class Copied:
    """One table's copy: rows read from the source, rows the target gained."""

    table: str
    read: int
    copied: int


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """One aggregate after the copy: its non-zero rows in the target, and how many of
    them (or of the source's) differ."""

    table: str
    rows: int
    differ: int


SOURCE_NOT_SQLITE = (
    "the source must be a SQLite store (sqlite:///PATH);"
    " copy a PostgreSQL database with pg_dump and pg_restore"
)


class TargetNotEmpty(Conflict):
    """The target already holds messages and the run is not a resume."""


@dataclass(frozen=True, slots=True)
class _Feed:
    """How a target backend numbers the change feed."""

    insert_suffix: str
    """Written after the column list of an INSERT into changes that gives the ids."""
    cursor_column: str | None
    """The column that holds a change's cursor besides ``id``, if any."""
    set_sequence: tuple[str, ...]
    """SQL run with the last id the source gave (``?``): the next id is above it."""


_FEEDS = {
    "sqlite": _Feed(
        insert_suffix="",
        cursor_column=None,
        set_sequence=(
            "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'changes'",
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'changes', ?"
            " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'changes')",
        ),
    ),
    "postgresql": _Feed(
        insert_suffix=" OVERRIDING SYSTEM VALUE",
        cursor_column="position",
        set_sequence=(
            "SELECT setval(pg_get_serial_sequence('changes', 'id'),"
            " greatest(CAST(? AS BIGINT), (SELECT coalesce(max(id), 0) FROM changes), 1))",
            # the feed's positions go on above the highest given (postgres/feed.py)
            "UPDATE change_positions SET position = greatest(position, CAST(? AS BIGINT))",
        ),
    ),
}


_LAST_CHANGE_ID = (
    "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0),"
    " coalesce((SELECT max(id) FROM changes), 0))"
)
"""The last change id a SQLite source gave: AUTOINCREMENT's counter, which also counts
the newest changes if retention has pruned them since."""


async def target_holds_messages(target: SqlStore) -> bool:
    """True when ``target`` has at least one message."""
    return bool(await target._query("SELECT 1 FROM messages LIMIT 1"))


async def _count(store: SqlStore, table: str) -> int:
    rows = await store._query(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
    return int(rows[0][0])


async def _insert(tx: Tx, sql: str, rows: list[Sequence[Any]]) -> None:
    await tx.run_many(sql, rows)


def _insert_sql(table: str, columns: Sequence[str], feed: _Feed) -> str:
    names, suffix = list(columns), ""
    if table == "changes":
        suffix = feed.insert_suffix
        if feed.cursor_column is not None:
            names.append(feed.cursor_column)
    marks = ", ".join("?" for _ in names)
    return (
        f"INSERT INTO {table} ({', '.join(names)}){suffix} VALUES ({marks})"  # noqa: S608
        " ON CONFLICT DO NOTHING"
    )


async def copy_table(source: SqlStore, target: SqlStore, table: Table) -> Copied:
    """Copy ``table`` batch by batch, each batch one transaction of the target."""
    feed = _FEEDS[target._dialect.name]
    before = await _count(target, table.name)
    read = 0
    rows = source._stream(f"SELECT * FROM {table.name} ORDER BY {table.key}", (), table.batch)  # noqa: S608
    async for batch in _batches(rows, table.batch):
        columns = list(batch[0].keys())
        values: list[Sequence[Any]] = [tuple(row) for row in batch]
        if table.name == "changes" and feed.cursor_column is not None:
            values = [(*row, row[columns.index("id")]) for row in values]
        sql = _insert_sql(table.name, columns, feed)
        await target._submit(functools.partial(_insert, sql=sql, rows=values))
        read += len(batch)
    if table.name == "changes":
        await _carry_sequence(source, target)
    return Copied(table.name, read, await _count(target, table.name) - before)


async def _batches(rows: AsyncIterator[Row], size: int) -> AsyncIterator[list[Row]]:
    batch: list[Row] = []
    async for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


async def _carry_sequence(source: SqlStore, target: SqlStore) -> None:
    """Set the target's next change id past every id the source ever gave."""
    last = int((await source._query(_LAST_CHANGE_ID))[0][0])

    async def carry(tx: Tx) -> None:
        for sql in _FEEDS[target._dialect.name].set_sequence:
            await tx.run(sql, (last,))

    await target._submit(carry)


async def compare_aggregate(source: SqlStore, target: SqlStore, aggregate: Aggregate) -> Rebuilt:
    """The target's rebuilt ``aggregate`` against the source's, row by row in key order."""
    keys = len(aggregate.key.split(","))
    sql = (
        f"SELECT {aggregate.key}, {aggregate.counts} FROM {aggregate.name}"  # noqa: S608
        f" GROUP BY {aggregate.key} ORDER BY {aggregate.key}"
    )

    async def nonzero(store: SqlStore) -> AsyncIterator[tuple[Any, ...]]:
        async for row in store._stream(sql, (), 1000):
            if any(row[keys:]):
                yield tuple(row)

    theirs, ours = nonzero(source), nonzero(target)
    rows = differ = 0
    left, right = await anext(theirs, None), await anext(ours, None)
    while left is not None or right is not None:
        if right is None or (left is not None and left[:keys] < right[:keys]):
            differ += 1  # the source counts a group the target has none of
            left = await anext(theirs, None)
        elif left is None or right[:keys] < left[:keys]:
            rows, differ = rows + 1, differ + 1
            right = await anext(ours, None)
        else:
            rows, differ = rows + 1, differ + int(left != right)
            left, right = await anext(theirs, None), await anext(ours, None)
    return Rebuilt(aggregate.name, rows, differ)


async def migrate(
    source: SqlStore,
    target: SqlStore,
    *,
    resume: bool = False,
    on_table: Callable[[Copied | Rebuilt], None] = lambda result: None,
) -> list[Copied | Rebuilt]:
    """Copy every table of ``source`` into ``target`` (both open; the target with its
    writer), then compare the aggregates; one result per table, in order, each also
    handed to ``on_table`` when done. Raise ``TargetNotEmpty`` if the target holds
    messages, unless ``resume``."""
    if source._dialect.name != "sqlite":
        raise UsageError(SOURCE_NOT_SQLITE)
    if not resume and await target_holds_messages(target):
        raise TargetNotEmpty("the target already holds messages")
    done: list[Copied | Rebuilt] = []
    for table in TABLES:
        done.append(await copy_table(source, target, table))
        on_table(done[-1])
    for aggregate in REBUILT:
        done.append(await compare_aggregate(source, target, aggregate))
        on_table(done[-1])
    return done
