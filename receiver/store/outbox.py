"""The rules of sends and the outbox: what a send and each step of its attempts write.

A send commits its message (``queued``), its outbox row and its Idempotency-Key answer
in one transaction. A worker claims due rows with a lease; every later step checks the
lease, so a worker that lost it writes nothing. Written once against ``Tx``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from receiver.core.network import country_of
from receiver.core.status import Status
from receiver.errors import (
    ClientReferenceTaken,
    Conflict,
    IdempotencyKeyReused,
)
from receiver.records import (
    HeldSend,
    NewSend,
    OutboxItem,
    RenderAnswer,
    SendAnswer,
    Template,
)
from receiver.store import changes, ingest, retention
from receiver.store.base import from_text, new_id, to_text
from receiver.store.rows import message_record
from receiver.store.tx import Tx


async def create_send(tx: Tx, send: NewSend, render: RenderAnswer) -> SendAnswer:
    """The message, its outbox row and the key's answer, in the open transaction."""
    now = to_text(send.now)
    if send.idempotency_key is not None:
        row = await tx.row(
            "SELECT * FROM idempotency_keys WHERE client_id = ? AND key = ?",
            (send.client_id, send.idempotency_key),
        )
        if row is not None and row["expires_at"] > now:
            if row["fingerprint"] not in (send.fingerprint, retention.ERASED_FINGERPRINT):
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used for a different request; use a new key"
                    " for a new message"
                )
            return SendAnswer(row["status_code"], row["response"], True, row["message_id"])
        if row is not None:  # expired: the key is free again
            await tx.run(
                "DELETE FROM idempotency_keys WHERE client_id = ? AND key = ?",
                (send.client_id, send.idempotency_key),
            )
    if send.client_reference is not None:
        taken = await tx.row(
            "SELECT id FROM messages WHERE client_id = ? AND client_reference = ?",
            (send.client_id, send.client_reference),
        )
        if taken is not None:
            raise ClientReferenceTaken(send.client_reference, taken["id"])
    message_id = new_id("msg_")
    await tx.run(
        "INSERT INTO messages (id, provider, to_number, client_reference, client_id, sender,"
        " segments, country, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            message_id,
            send.provider,
            send.to,
            send.client_reference,
            send.client_id,
            send.sender,
            send.segments,
            country_of(send.to),
            now,
            now,
        ),
    )
    await tx.run(
        "INSERT INTO outbox (message_id, provider, body, template, state, next_attempt_at,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
        (
            message_id,
            send.provider,
            send.body,
            None if send.template is None else send.template.to_json(),
            now,
            now,
            now,
        ),
    )
    await outbound_event(tx, send.provider, message_id, "accepted", Status.QUEUED, now)
    record = message_record(await tx.row("SELECT * FROM messages WHERE id = ?", (message_id,)))
    status_code, body = render(record)
    if send.idempotency_key is not None:
        await tx.run(
            "INSERT INTO idempotency_keys (client_id, key, fingerprint, status_code, response,"
            " message_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                send.client_id,
                send.idempotency_key,
                send.fingerprint,
                status_code,
                body,
                message_id,
                now,
                to_text(send.key_expires_at or send.now),
            ),
        )
    return SendAnswer(status_code, body, False, message_id)


async def prune_keys(tx: Tx, now: str) -> int:
    """Delete the Idempotency-Key answers expired at ``now``; how many."""
    return await tx.run("DELETE FROM idempotency_keys WHERE expires_at <= ?", (now,))


_OWN_EVENT_PREFIX = {"outbound": "out", "receiver": "rcv"}


async def outbound_event(
    tx: Tx,
    provider: str,
    message_id: str,
    step: str,
    status: Status,
    now: str,
    error_code: str | None = None,
    error_message: str | None = None,
    provider_status: str | None = None,
    source: str = "outbound",
) -> None:
    """One of our own send steps in the timeline (event id ``out:MESSAGE:STEP``; our
    verdict on a message whose report never came, ``source = 'receiver'``:
    ``rcv:MESSAGE:STEP``), merged like a report; then the message is recomputed.
    ``provider_status`` is the provider's own word for it, if it said one."""
    event_id = f"{_OWN_EVENT_PREFIX[source]}:{message_id}:{step}"
    await tx.run(
        "INSERT INTO events (provider, event_id, message_id, source, status, provider_status,"
        " error_code, error_message, occurred_at, received_at, last_received_at, outcome)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'superseded')",
        (
            provider,
            event_id,
            message_id,
            source,
            status,
            provider_status or step,
            error_code,
            error_message,
            now,
            now,
            now,
        ),
    )
    cause = changes.Cause(source, event_id)
    await ingest.settle_outcome(
        tx, provider, event_id, await ingest.recompute(tx, message_id, now, cause=cause)
    )


async def claim(
    tx: Tx, owner: str, now: datetime, lease_seconds: float, limit: int
) -> list[OutboxItem]:
    at = to_text(now)
    rows = await tx.rows(
        "SELECT o.*, m.to_number, m.sender, m.erased_at FROM outbox o"  # noqa: S608 - fixed SQL
        " JOIN messages m ON m.id = o.message_id"
        " WHERE (o.state = 'pending' AND o.next_attempt_at <= ?)"
        " OR (o.state = 'sending' AND o.lease_until <= ?)"
        " ORDER BY o.next_attempt_at LIMIT ?" + tx.dialect.skip("o"),
        (at, at, limit),
    )
    lease_until = to_text(now + timedelta(seconds=lease_seconds))
    items = []
    for row in rows:
        if row["erased_at"] is not None:
            await _give_up_erased(tx, row["message_id"], row["provider"], at)
            continue
        # A lease that ran out: its worker died mid-attempt, which may have reached the
        # provider. So may any attempt after an ambiguous one.
        in_doubt = bool(row["in_doubt"]) or row["state"] == "sending"
        # Every attempt may reach the provider, so the first one starts the clock of the
        # provider's idempotency key (counted from the claim: a little early, so safe).
        first_attempt_at = row["first_attempt_at"] or at
        await tx.run(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1, in_doubt = ?,"
            " first_attempt_at = ?, lease_owner = ?, lease_until = ?, updated_at = ?"
            " WHERE message_id = ?",
            (in_doubt, first_attempt_at, owner, lease_until, at, row["message_id"]),
        )
        items.append(
            OutboxItem(
                message_id=row["message_id"],
                provider=row["provider"],
                to=row["to_number"],
                body=row["body"],
                sender=row["sender"],
                attempts=row["attempts"] + 1,
                in_doubt=in_doubt,
                created_at=from_text(row["created_at"]),
                last_error=row["last_error"],
                template=Template.from_json(row["template"]) if row["template"] else None,
                first_attempt_at=from_text(first_attempt_at),
            )
        )
    return items


async def _give_up_erased(tx: Tx, message_id: str, provider: str, at: str) -> None:
    """Finish the outbox row of a message whose number was erased before it was sent
    (``receiver erase``): it is never sent, and its timeline says why."""
    reason = "the recipient's number was erased before the message was sent"
    await tx.run(
        "UPDATE outbox SET state = 'done', body = NULL, template = NULL, lease_owner = NULL,"
        " lease_until = NULL,"
        " last_error = ?, updated_at = ? WHERE message_id = ?",
        (reason, at, message_id),
    )
    await outbound_event(tx, provider, message_id, "erased", Status.FAILED, at, "ERASED", reason)


async def _release(tx: Tx, item: OutboxItem, owner: str, sets: str, *params: Any) -> bool:
    """Update the row if ``owner`` still holds its lease; False if it was lost."""
    return bool(
        await tx.run(
            f"UPDATE outbox SET {sets}, lease_owner = NULL, lease_until = NULL"  # noqa: S608 - fixed column lists
            " WHERE message_id = ? AND lease_owner = ? AND state = 'sending'",
            (*params, item.message_id, owner),
        )
    )


async def retry(
    tx: Tx, item: OutboxItem, owner: str, at: datetime, error: str, in_doubt: bool
) -> bool:
    return await _release(
        tx,
        item,
        owner,
        "state = 'pending', next_attempt_at = ?,"
        " in_doubt = CASE WHEN in_doubt = 1 OR ? THEN 1 ELSE 0 END, last_error = ?,"
        " updated_at = ?",
        to_text(at),
        in_doubt,
        error,
        to_text(datetime.now(UTC)),
    )


async def sent(
    tx: Tx,
    item: OutboxItem,
    owner: str,
    provider_message_id: str | None,
    provider_status: str,
    now: datetime,
) -> bool:
    at = to_text(now)
    done = "state = 'done', body = NULL, template = NULL, updated_at = ?"
    if not await _release(tx, item, owner, done, at):
        return False
    if provider_message_id is not None:
        await _learn_provider_id(tx, item, provider_message_id)
    await outbound_event(
        tx,
        item.provider,
        item.message_id,
        "sent_to_provider",
        Status.QUEUED,
        at,
        provider_status=provider_status,
    )
    return True


async def _learn_provider_id(tx: Tx, item: OutboxItem, provider_message_id: str) -> None:
    """Record the provider's id for a sent message, taking over the events of a message
    its reports created before the provider's answer came."""
    earlier = await tx.row(
        "SELECT id, client_id FROM messages WHERE provider = ? AND provider_message_id = ?",
        (item.provider, provider_message_id),
    )
    if earlier is not None and earlier["id"] != item.message_id:
        if earlier["client_id"] is not None:
            raise Conflict(
                f"provider {item.provider!r} answered id {provider_message_id!r}, already"
                f" the id of message {earlier['id']}"
            )
        # Its reports arrived before the provider's answer: they are this message's.
        await tx.run(
            "UPDATE events SET message_id = ? WHERE message_id = ?",
            (item.message_id, earlier["id"]),
        )
        await tx.run("DELETE FROM messages WHERE id = ?", (earlier["id"],))
    await tx.run(
        "UPDATE messages SET provider_message_id = ? WHERE id = ?",
        (provider_message_id, item.message_id),
    )


async def failed(
    tx: Tx,
    item: OutboxItem,
    owner: str,
    status: Status,
    error_code: str | None,
    error_message: str,
    now: datetime,
) -> bool:
    at = to_text(now)
    done = await _release(
        tx,
        item,
        owner,
        "state = 'done', body = NULL, template = NULL, last_error = ?, updated_at = ?",
        error_message,
        at,
    )
    if done:
        step = "given_up" if status is Status.FAILED else "rejected_by_provider"
        await outbound_event(
            tx, item.provider, item.message_id, step, status, at, error_code, error_message
        )
    return done


HELD_ERROR_CODE = "SEND_IN_DOUBT"


async def hold(tx: Tx, item: OutboxItem, owner: str, reason: str, now: datetime) -> bool:
    at = to_text(now)
    held = await _release(
        tx, item, owner, "state = 'held', last_error = ?, updated_at = ?", reason, at
    )
    if held:
        await outbound_event(
            tx,
            item.provider,
            item.message_id,
            f"held_in_doubt_{item.attempts}",
            Status.UNKNOWN,
            at,
            HELD_ERROR_CODE,
            reason,
            provider_status="held_in_doubt",
        )
    return held


async def held(tx: Tx) -> list[HeldSend]:
    rows = await tx.rows(
        "SELECT message_id, provider, attempts, updated_at, last_error FROM outbox"
        " WHERE state = 'held' ORDER BY updated_at, message_id"
    )
    return [
        HeldSend(
            r["message_id"],
            r["provider"],
            r["attempts"],
            from_text(r["updated_at"]),
            r["last_error"],
        )
        for r in rows
    ]


async def release_held(tx: Tx, message_id: str, resend: bool, reason: str, now: datetime) -> bool:
    at = to_text(now)
    row = await tx.row(
        "SELECT provider, attempts FROM outbox WHERE message_id = ? AND state = 'held'",
        (message_id,),
    )
    if row is None:
        return False
    if resend:
        # A person checked with the provider that no attempt arrived: a fresh start.
        await tx.run(
            "UPDATE outbox SET state = 'pending', in_doubt = 0, first_attempt_at = NULL,"
            " next_attempt_at = ?, last_error = ?, updated_at = ? WHERE message_id = ?",
            (at, reason, at, message_id),
        )
        return True
    await tx.run(
        "UPDATE outbox SET state = 'done', body = NULL, template = NULL, last_error = ?,"
        " updated_at = ? WHERE message_id = ?",
        (reason, at, message_id),
    )
    await outbound_event(
        tx, row["provider"], message_id, "given_up", Status.FAILED, at, None, reason
    )
    return True
