"""Retention and erasure: what may be deleted, as SQL that SQLite and PostgreSQL share.

Each function here is a unit of writes for the store's writer (one short transaction,
bounded by ``limit``), or a clause shared by the deletes and the dry run's counts, so
that ``receiver prune --dry-run`` and the real pass follow one rule.

The rules (docs/design.md, "Retention and erasure"):
- A raw request received before the cut-off is deleted. Its events stay, because the
  events' primary key is the processed set: a late redelivery of such a report is still
  a duplicate. Their ``request_id`` becomes NULL ("raw request deleted").
- A message last changed (``updated_at``) before the cut-off goes with its events,
  outbox row and Idempotency-Key answers, unless a sender still needs it: its outbox row
  is not done, or its key has not expired (a retry with that key must get the stored
  answer, never a second message). The configuration guarantees the cut-off is older
  than any configured provider's redelivery horizon (``receiver.config``), so no report
  of a pruned message can be redelivered.
- Erasure blanks a number and pins it (``erased_at``); see ``erase_messages``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from datetime import datetime

from receiver.records import Pruned
from receiver.store.base import to_text
from receiver.store.tx import Tx

ERASED_FINGERPRINT = "erased"
"""The fingerprint of an Idempotency-Key answer whose message was erased: the request's
own fingerprint hashed the number with the body, so it is dropped. A retry with such a
key gets the stored answer (never a second send), whatever its body."""

_CHUNK = 500
"""Ids per ``IN (...)`` list, well under any driver's parameter limit."""

RAW_PRUNABLE = "received_at < ?"
"""Raw requests received before a cut-off (index ``raw_requests_by_received_at``)."""

MESSAGES_PRUNABLE = (
    "updated_at < ?"
    " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = messages.id"
    " AND o.state <> 'done')"
    " AND NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.message_id = messages.id"
    " AND k.expires_at > ?)"
)
"""Messages last changed before a cut-off that no sender needs; parameters (cut-off, now)."""

_DEPENDENTS = ("events", "outbox", "idempotency_keys")
"""The tables (and ``Pruned`` fields) of the rows that go with a pruned message."""

# Only the fixed clauses and table names above are ever put into SQL text (S608).
_OLDEST_RAW = f"SELECT id FROM raw_requests WHERE {RAW_PRUNABLE} ORDER BY received_at LIMIT ?"  # noqa: S608
_OLDEST_MESSAGES = f"SELECT id FROM messages WHERE {MESSAGES_PRUNABLE} ORDER BY updated_at LIMIT ?"  # noqa: S608


def _in(sql: str, values: Sequence[str]) -> str:
    """``sql`` with its ``IN (?)`` widened to one placeholder per value."""
    return sql.replace("IN (?)", "IN (" + ", ".join("?" * len(values)) + ")")


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


async def delete_raw_requests(tx: Tx, ids: Sequence[str]) -> int:
    """Delete these raw requests; the events they carried keep their row without one."""
    deleted = 0
    for chunk in _chunks(ids):
        await tx.run(
            _in("UPDATE events SET request_id = NULL WHERE request_id IN (?)", chunk), chunk
        )
        deleted += await tx.run(_in("DELETE FROM raw_requests WHERE id IN (?)", chunk), chunk)
    return deleted


async def prune_raw_batch(tx: Tx, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` of the oldest raw requests received before ``before``."""
    rows = await tx.rows(_OLDEST_RAW, (to_text(before), limit))
    return await delete_raw_requests(tx, [row[0] for row in rows])


async def prune_messages_batch(tx: Tx, before: datetime, now: datetime, limit: int) -> Pruned:
    """Delete up to ``limit`` prunable messages (oldest change first) and what goes with
    them; ``limit`` must fit one ``IN`` list (500)."""
    rows = await tx.rows(_OLDEST_MESSAGES, (to_text(before), to_text(now), limit))
    ids = [row[0] for row in rows]
    if not ids:
        return Pruned()
    counts = {}
    for table in _DEPENDENTS:
        dependents = _in(f"DELETE FROM {table} WHERE message_id IN (?)", ids)  # noqa: S608
        counts[table] = await tx.run(dependents, ids)
    # The change feed's record of them goes too (it holds the message, number included).
    await tx.run(
        _in(
            "DELETE FROM change_deliveries"
            " WHERE change IN (SELECT id FROM changes WHERE message_id IN (?))",
            ids,
        ),
        ids,
    )
    await tx.run(_in("DELETE FROM changes WHERE message_id IN (?)", ids), ids)
    messages = await tx.run(_in("DELETE FROM messages WHERE id IN (?)", ids), ids)
    return Pruned(messages=messages, **counts)


def count_queries(
    raw_before: datetime | None, messages_before: datetime | None, now: datetime
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """For each ``Pruned`` field, the COUNT query (and parameters) of what a pass would
    delete, by the clauses the deletes use; a kind kept forever (None) is left out."""
    queries: dict[str, tuple[str, tuple[str, ...]]] = {}
    if raw_before is not None:
        raw = f"SELECT count(*) FROM raw_requests WHERE {RAW_PRUNABLE}"  # noqa: S608
        queries["raw_requests"] = (raw, (to_text(raw_before),))
    if messages_before is not None:
        params = (to_text(messages_before), to_text(now))
        prunable = f"SELECT id FROM messages WHERE {MESSAGES_PRUNABLE}"  # noqa: S608
        queries["messages"] = (f"SELECT count(*) FROM ({prunable}) AS prunable", params)  # noqa: S608
        for table in _DEPENDENTS:
            dependent = f"SELECT count(*) FROM {table} WHERE message_id IN ({prunable})"  # noqa: S608
            queries[table] = (dependent, params)
    return queries


# --------------------------------------------------------------------------- erasure


def digits_pattern(number: str) -> re.Pattern[bytes]:
    """A stored body names ``number`` (E.164) when it holds its digits with no digit
    either side: ``+639171234567`` in JSON, ``%2B639171234567`` in a form, Vonage's bare
    ``639171234567``."""
    digits = number.removeprefix("+")
    return re.compile(rb"(?<![0-9])" + re.escape(digits.encode()) + rb"(?![0-9])")


def _without_number(response: str) -> str:
    """A stored Idempotency-Key answer (the message JSON) with ``to`` blanked."""
    try:
        answer = json.loads(response)
    except ValueError:
        return response
    if isinstance(answer, dict) and "to" in answer:
        answer["to"] = None
    return json.dumps(answer, separators=(",", ":"), ensure_ascii=False)


async def erase_messages(tx: Tx, number: str, now: datetime) -> tuple[int, int]:
    """Blank ``number`` in every message to it and pin it there (``erased_at``: the merge
    keeps the number of an erased message NULL), also in the change feed's copies of it;
    drop the bodies of their unsent outbox rows (the worker then gives them up rather
    than send them) and the number from their Idempotency-Key answers; delete the raw
    requests that carried their reports. Status, counts and timelines stay. (messages
    erased, raw requests deleted)."""
    ids = [
        row[0] for row in await tx.rows("SELECT id FROM messages WHERE to_number = ?", (number,))
    ]
    request_ids: list[str] = []
    at = to_text(now)
    for chunk in _chunks(ids):
        erased = _in("UPDATE messages SET to_number = NULL, erased_at = ? WHERE id IN (?)", chunk)
        await tx.run(erased, (at, *chunk))
        await tx.run(
            _in("UPDATE outbox SET body = NULL, template = NULL WHERE message_id IN (?)", chunk),
            chunk,
        )
        # The change feed keeps each message as a change left it: without the number too.
        await tx.run(
            _in(
                f"UPDATE changes SET message = {tx.dialect.without('message', 'to_number')}"  # noqa: S608 - fixed SQL
                " WHERE message_id IN (?)",
                chunk,
            ),
            chunk,
        )
        answers = _in(
            "SELECT client_id, key, response FROM idempotency_keys WHERE message_id IN (?)", chunk
        )
        for client_id, key, response in await tx.rows(answers, chunk):
            await tx.run(
                "UPDATE idempotency_keys SET fingerprint = ?, response = ?"
                " WHERE client_id = ? AND key = ?",
                (ERASED_FINGERPRINT, _without_number(response), client_id, key),
            )
        carried = _in(
            "SELECT DISTINCT request_id FROM events"
            " WHERE message_id IN (?) AND request_id IS NOT NULL",
            chunk,
        )
        request_ids += [row[0] for row in await tx.rows(carried, chunk)]
    return len(ids), await delete_raw_requests(tx, sorted(set(request_ids)))


async def record_erasure(
    tx: Tx,
    erasure_id: str,
    now: datetime,
    requested_by: str,
    messages: int,
    raw_requests: int,
) -> None:
    """The audit row of one erasure run: never the number."""
    await tx.run(
        "INSERT INTO erasures (id, erased_at, requested_by, messages, raw_requests)"
        " VALUES (?, ?, ?, ?, ?)",
        (erasure_id, to_text(now), requested_by, messages, raw_requests),
    )
