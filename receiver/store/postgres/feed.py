"""The change feed's cursor on PostgreSQL: a position in commit order.

On SQLite one writer commits one transaction after another, so ``changes.id`` order is
commit order. Here several processes write changes at once, and an id drawn earlier
can commit later: a reader that had paged past a higher id would never see it. So each
change records its transaction (``xact_id``), and ``sequence`` gives ``position``s, in
(xact_id, id) order, to the changes whose transaction is older than every transaction
still running (below the snapshot's xmin: committed or rolled back, none can still
commit). One sequencer at a time (a transaction-level advisory lock) continues from
the highest position, so positions only grow, and every change gets one after its
commit: a reader paging by position misses nothing and sees nothing twice.

A transaction left open (a session idle in one) holds every later change back until
it ends; ``idle_in_transaction_session_timeout`` bounds that (docs/operations.md).
"""

from __future__ import annotations

from receiver.store.postgres.backend import FEED_LOCK, LOCK_CLASS
from receiver.store.tx import Row, Tx

SEQUENCE = """
WITH ready AS (
    SELECT id, row_number() OVER (ORDER BY xact_id, id) AS n FROM changes
    WHERE position IS NULL AND xact_id < pg_snapshot_xmin(pg_current_snapshot())
), top AS (
    SELECT coalesce(max(position), 0) AS position FROM changes
)
UPDATE changes SET position = top.position + ready.n
FROM ready, top WHERE changes.id = ready.id
"""

CHANGES_AFTER = "SELECT * FROM changes WHERE position > ? ORDER BY position LIMIT ?"


async def sequence(tx: Tx) -> int:
    """Give positions to the changes that can no longer be overtaken; how many. Runs
    in the caller's transaction, which must commit soon: it holds the sequencer's lock."""
    await tx.value("SELECT pg_advisory_xact_lock(?, ?)", (LOCK_CLASS, FEED_LOCK))
    return await tx.run(SEQUENCE)


async def changes_after(tx: Tx, cursor: int, limit: int) -> list[Row]:
    """Up to ``limit`` changes after position ``cursor``, in commit order (each row's
    ``position`` is its cursor). Run in a transaction (``PgBackend.transact``)."""
    await sequence(tx)
    return await tx.rows(CHANGES_AFTER, (cursor, limit))
