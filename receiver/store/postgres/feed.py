"""The change feed's cursor on PostgreSQL: a position given after commit.

On SQLite one writer commits one transaction after another, so ``changes.id`` order is
commit order. Here several processes write changes at once, and an id drawn earlier
can commit later: a reader that had paged past a higher id would never see it. So the
cursor is ``position``, which ``sequence`` gives to the changes committed and not yet
positioned, in id order, above the highest position ever given (``change_positions``,
whose one row also serializes the sequencers: each locks it first, and then sees what
the one before it committed). A change gets a position only once it is visible, and
every later position is higher, even after the newest changes were pruned: a reader
paging by position misses nothing and sees nothing twice. Per message, ``seq`` order
is id order (a change of a message is written only after the one before it committed),
so it is position order too.

Readers sequence as they read: nothing runs in the background, and a change is
readable at once after its commit.
"""

from __future__ import annotations

from receiver.store.tx import Row, Tx

SEQUENCE = (
    "UPDATE changes SET position = ? + ready.n FROM (SELECT id, row_number() OVER"
    " (ORDER BY id) AS n FROM changes WHERE position IS NULL) AS ready"
    " WHERE changes.id = ready.id"
)

CHANGES_AFTER = "SELECT * FROM changes WHERE position > ? ORDER BY position LIMIT ?"


async def sequence(tx: Tx) -> int:
    """Give positions to the committed changes that have none; how many. Runs in the
    caller's transaction, which must end soon: it holds the sequencer's lock."""
    top = await tx.value("SELECT position FROM change_positions FOR UPDATE")
    given = await tx.run(SEQUENCE, (top,))
    if given:
        await tx.run("UPDATE change_positions SET position = ?", (top + given,))
    return given


async def changes_after(tx: Tx, cursor: int, limit: int) -> list[Row]:
    """Up to ``limit`` changes after position ``cursor``, in the order they were
    positioned (each row's ``position`` is its cursor). Run in a transaction
    (``PgBackend.transact``)."""
    await sequence(tx)
    return await tx.rows(CHANGES_AFTER, (cursor, limit))
