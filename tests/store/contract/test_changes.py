"""The store contract for the change feed (no HTTP): which merges write a change, seq,
routing to subscribers by their filters, ordered claims, dead letters and redelivery."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from reports import status_report

from receiver.core.reports import Report
from receiver.core.status import Status
from receiver.records import (
    Acknowledged,
    ChangeRecord,
    MessageRecord,
    NewSend,
    RawRequest,
    SubscriberRoute,
)
from receiver.store.sql import SqlStore
from receiver.store.tx import Tx

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
LEASE = 30.0


def report(
    event_id: str,
    message_id: str,
    word: str,
    minute: int = 0,
    error_code: str | None = None,
    to: str | None = None,
) -> Report:
    at = T0 + timedelta(minutes=minute)
    return status_report(event_id, message_id, word, at, error_code=error_code, to=to)


def raw(body: bytes = b"{}") -> RawRequest:
    return RawRequest(path="/webhooks/acme", body=body, received_at=datetime.now(UTC))


async def all_changes(store: SqlStore) -> list[ChangeRecord]:
    return await store.changes_after(0, 10_000)


async def test_a_new_message_with_a_status_is_change_one(store: SqlStore) -> None:
    await store.ingest("acme", raw(), [report("e1", "p1", "sent")])
    [change] = await all_changes(store)
    assert (change.seq, change.previous_status, change.status) == (1, None, Status.SENT)
    assert (change.cause_source, change.cause_event_id) == ("webhook", "e1")
    assert change.message.provider_message_id == "p1"
    assert change.message.status is Status.SENT
    assert change.change_id.startswith("chg_")


async def test_duplicates_superseded_and_unknown_words_write_no_change(
    store: SqlStore,
) -> None:
    await store.ingest("acme", raw(), [report("e1", "p1", "delivered", minute=2)])
    outcome = await store.ingest(
        "acme",
        raw(),
        [
            report("e1", "p1", "delivered", minute=2),  # a redelivery
            report("e2", "p1", "sent", minute=1),  # superseded: lower rank
            report("e3", "p1", "SOMETHING_NEW", minute=3),  # no status of ours
        ],
    )
    assert (outcome.duplicates, outcome.superseded, outcome.applied) == (1, 2, 0)
    assert [c.seq for c in await all_changes(store)] == [1]


async def test_a_message_created_without_a_status_writes_none_until_it_has_one(
    store: SqlStore,
) -> None:
    await store.ingest("acme", raw(), [report("e1", "p1", "SOMETHING_NEW")])
    assert await all_changes(store) == []
    await store.ingest("acme", raw(), [report("e2", "p1", "sent")])
    [change] = await all_changes(store)
    assert (change.seq, change.previous_status, change.status) == (1, None, Status.SENT)


async def test_seq_counts_each_message_on_its_own_without_gaps(store: SqlStore) -> None:
    for step, word in enumerate(("queued", "sent", "delivered")):
        await store.ingest(
            "acme",
            raw(),
            [report(f"a{step}", "pa", word, minute=step), report(f"b{step}", "pb", word, step)],
        )
    changes = await all_changes(store)
    by_message: dict[str, list[tuple[int, Status | None, Status | None]]] = {}
    for change in changes:
        by_message.setdefault(change.message.provider_message_id or "", []).append(
            (change.seq, change.previous_status, change.status)
        )
    expected = [
        (1, None, Status.QUEUED),
        (2, Status.QUEUED, Status.SENT),
        (3, Status.SENT, Status.DELIVERED),
    ]
    assert by_message == {"pa": expected, "pb": expected}
    assert [c.cursor for c in changes] == sorted(c.cursor for c in changes)


async def test_an_error_change_without_a_status_change_is_a_change(store: SqlStore) -> None:
    # Two failures of the same rank: the one that occurred first wins, with its code.
    await store.ingest("acme", raw(), [report("e1", "p1", "undelivered", 5, error_code="B")])
    await store.ingest("acme", raw(), [report("e2", "p1", "undelivered", 1, error_code="A")])
    changes = await all_changes(store)
    assert [(c.seq, c.status, c.error_code) for c in changes] == [
        (1, Status.UNDELIVERED, "B"),
        (2, Status.UNDELIVERED, "A"),
    ]
    assert changes[1].previous_status is Status.UNDELIVERED


async def test_a_rolled_back_unit_writes_no_change(store: SqlStore) -> None:
    async def fails(tx: Tx) -> None:
        from receiver.store.ingest import apply_request

        await apply_request(tx, "acme", raw(), [report("e1", "p1", "sent")])
        raise RuntimeError("a bug after the merge")

    with pytest.raises(RuntimeError):
        await store._run(fails)
    assert await all_changes(store) == []


async def test_send_steps_and_reprocess_corrections_write_changes(store: SqlStore) -> None:
    answer = await store.create_send(
        NewSend(
            client_id="stf_orders",
            provider="acme",
            to="+639171234567",
            body="hello",
            sender="ACME",
            client_reference=None,
            segments=1,
            idempotency_key=None,
            fingerprint=None,
            key_expires_at=None,
            now=T0,
        ),
        lambda message: (202, json.dumps({"id": message.id})),
    )
    [queued] = await all_changes(store)
    assert (queued.seq, queued.status, queued.cause_source) == (1, Status.QUEUED, "outbound")
    assert queued.cause_event_id == f"out:{answer.message_id}:accepted"
    [item] = await store.claim_outbox("w1", T0 + timedelta(seconds=1), LEASE, 10)
    await store.outbox_failed(item, "w1", Status.REJECTED, "BAD", "refused", T0)
    changes = await all_changes(store)
    assert [(c.seq, c.previous_status, c.status) for c in changes] == [
        (1, None, Status.QUEUED),
        (2, Status.QUEUED, Status.REJECTED),
    ]

    # A stored report that the current parser reads differently: a correction.
    request = raw()
    await store.ingest("acme", request, [report("r1", "p9", "sent")])
    [stored] = [r async for r in store.iter_raw_requests(provider="acme")]
    await store.reprocess("acme", stored, [report("r1", "p9", "delivered")])
    last = (await all_changes(store))[-1]
    assert (last.seq, last.previous_status, last.status) == (2, Status.SENT, Status.DELIVERED)
    assert (last.cause_source, last.cause_event_id) == ("reprocess", "r1")


async def route(store: SqlStore, *routes: SubscriberRoute) -> None:
    await store.sync_subscribers(list(routes))


async def test_changes_go_to_the_subscribers_whose_filters_match(
    store: SqlStore,
) -> None:
    await route(
        store,
        SubscriberRoute("all", None, None, None),
        SubscriberRoute("finals", None, ["delivered", "failed"], None),
        SubscriberRoute("other", ["other-provider"], None, None),
        SubscriberRoute("orders", None, None, ["orders-api"]),
    )
    await store.ingest("acme", raw(), [report("e1", "p1", "sent")])
    await store.ingest("acme", raw(), [report("e2", "p1", "delivered", 1)])
    backlog = {h.name: h.backlog for h in await store.subscriber_health()}
    assert backlog == {"all": 2, "finals": 1, "other": 0, "orders": 0}

    # A message sent by the client named in `clients`.
    member = await store.add_staff("orders-api", "sender", "hash-orders")
    await store.create_send(
        NewSend(
            client_id=member.id,
            provider="acme",
            to="+639171234567",
            body="hello",
            sender=None,
            client_reference=None,
            segments=1,
            idempotency_key=None,
            fingerprint=None,
            key_expires_at=None,
            now=T0,
        ),
        lambda message: (202, "{}"),
    )
    backlog = {h.name: h.backlog for h in await store.subscriber_health()}
    assert backlog == {"all": 3, "finals": 1, "other": 0, "orders": 1}


async def test_claims_hold_a_message_s_next_change_until_the_previous_is_settled(
    store: SqlStore,
) -> None:
    await route(store, SubscriberRoute("s", None, None, None))
    for step, word in enumerate(("queued", "sent", "delivered")):
        await store.ingest("acme", raw(), [report(f"a{step}", "pa", word, minute=step)])
    await store.ingest("acme", raw(), [report("b0", "pb", "sent")])
    now = datetime.now(UTC)
    first = await store.claim_deliveries("s", "w", now, LEASE, 10)
    assert [(d.change.message.provider_message_id, d.change.seq) for d in first] == [
        ("pa", 1),
        ("pb", 1),
    ]
    assert await store.claim_deliveries("s", "w", now, LEASE, 10) == []  # in flight
    # The acknowledgement leases the message's next change to the same worker.
    acknowledged = await store.delivery_done(first[0], "w", now, LEASE)
    assert acknowledged.settled and acknowledged.next is not None
    assert await store.delivery_done(first[1], "w", now, LEASE) == Acknowledged(True, None)
    second = acknowledged.next
    assert (second.subscriber, second.change.seq, second.attempts) == ("s", 2, 1)
    assert second.change.message.provider_message_id == "pa"
    assert await store.claim_deliveries("s", "w", now, LEASE, 10) == []  # leased already
    # A failed attempt keeps the next change waiting; dead-lettered, the next may go.
    await store.delivery_failed(second, "w", "HTTP 500", now + timedelta(hours=1), now)
    assert await store.claim_deliveries("s", "w", now, LEASE, 10) == []
    [again] = await store.claim_deliveries("s", "w", now + timedelta(hours=2), LEASE, 10)
    assert (again.change.seq, again.attempts) == (2, 2)
    await store.delivery_failed(again, "w", "HTTP 500", None, now)
    [third] = await store.claim_deliveries("s", "w", now, LEASE, 10)
    assert third.change.seq == 3
    [health] = await store.subscriber_health()
    assert (health.dead, health.last_error) == (1, "HTTP 500")


async def test_an_expired_lease_is_claimed_again_and_the_old_owner_cannot_settle(
    store: SqlStore,
) -> None:
    await route(store, SubscriberRoute("s", None, None, None))
    await store.ingest("acme", raw(), [report("e1", "p1", "sent")])
    now = datetime.now(UTC)
    [lost] = await store.claim_deliveries("s", "dead-worker", now, 1.0, 10)
    [taken] = await store.claim_deliveries("s", "w2", now + timedelta(seconds=2), LEASE, 10)
    assert taken.change.change_id == lost.change.change_id
    assert not (await store.delivery_done(lost, "dead-worker", now, LEASE)).settled
    assert (await store.delivery_done(taken, "w2", now, LEASE)).settled


async def test_a_disabled_subscriber_gets_nothing_until_redelivered(store: SqlStore) -> None:
    await route(store, SubscriberRoute("s", None, None, None))
    await store.ingest("acme", raw(), [report("e1", "p1", "sent")])
    now = datetime.now(UTC)
    await store.disable_subscriber("s", "answered 410 Gone", now)
    assert await store.claim_deliveries("s", "w", now, LEASE, 10) == []
    [health] = await store.subscriber_health()
    assert health.disabled_at is not None and health.backlog == 1
    assert await store.redeliver("s", None, dead_only=True, now=now) == 0
    [health] = await store.subscriber_health()
    assert health.disabled_at is None
    assert len(await store.claim_deliveries("s", "w", now, LEASE, 10)) == 1


async def test_redeliver_queues_history_and_dead_letters(store: SqlStore) -> None:
    await store.ingest("acme", raw(), [report("e1", "p1", "sent")])
    await store.ingest("acme", raw(), [report("e2", "p2", "delivered")])
    # A subscriber added after the changes gets them only by redelivery.
    await route(store, SubscriberRoute("late", None, ["delivered"], None))
    [health] = await store.subscriber_health()
    assert health.backlog == 0
    now = datetime.now(UTC)
    assert await store.redeliver("late", None, dead_only=False, now=now) == 1
    [delivery] = await store.claim_deliveries("late", "w", now, LEASE, 10)
    assert delivery.change.status is Status.DELIVERED
    await store.delivery_failed(delivery, "w", "HTTP 500", None, now)
    future = now + timedelta(days=1)
    assert await store.redeliver("late", future, dead_only=True, now=now) == 0
    assert await store.redeliver("late", None, dead_only=True, now=now) == 1
    [again] = await store.claim_deliveries("late", "w", now, LEASE, 10)
    assert again.attempts == 1
    await store.delivery_done(again, "w", now, LEASE)
    # Delivered ones are sent again by a redelivery of everything.
    assert await store.redeliver("late", None, dead_only=False, now=now) == 1


async def test_the_console_view_of_a_message_s_changes_and_deliveries(
    store: SqlStore,
) -> None:
    await route(store, SubscriberRoute("s", None, None, None))
    await store.ingest("acme", raw(), [report("e1", "p1", "sent", to="+639171234567")])
    [change] = await all_changes(store)
    message: MessageRecord = change.message
    assert message.to == "+639171234567"
    now = datetime.now(UTC)
    [delivery] = await store.claim_deliveries("s", "w", now, LEASE, 10)
    await store.delivery_done(delivery, "w", now, LEASE)
    assert [c.change_id for c in await store.message_changes(message.id)] == [change.change_id]
    [record] = await store.message_deliveries(message.id)
    assert (record.subscriber, record.state, record.attempts) == ("s", "delivered", 1)


async def test_erasure_blanks_the_number_in_the_feed_s_copies_too(store: SqlStore) -> None:
    number = "+639171234567"
    await store.ingest("acme", raw(), [report("e1", "p1", "sent", to=number)])
    await store.erase_recipient(number, "test", datetime.now(UTC))
    [change] = await all_changes(store)
    assert change.message.to is None


async def test_pruned_messages_take_their_changes_and_deliveries(store: SqlStore) -> None:
    await route(store, SubscriberRoute("s", None, None, None))
    await store.ingest("acme", raw(), [report("e1", "p1", "sent")])
    [read] = await all_changes(store)
    later = datetime.now(UTC) + timedelta(days=2)
    pruned = await store.prune_messages(later, later, 100)
    assert pruned.messages == 1
    assert await all_changes(store) == []
    [health] = await store.subscriber_health()
    assert health.backlog == 0
    # Cursors are never reused: the next change comes after every pruned one.
    await store.ingest("acme", raw(), [report("e2", "p2", "sent")])
    [change] = await all_changes(store)
    assert change.cursor > read.cursor


async def beating_worker(store: SqlStore) -> datetime:
    """Subscriber ``s`` for every change, its worker ``w`` beating: changes written now
    are leased to it by their transactions. Now."""
    await route(store, SubscriberRoute("s", None, None, None))
    now = datetime.now(UTC)
    await store.subscriber_heartbeat("s", "w", now + timedelta(seconds=3), now + timedelta(60))
    return now


async def test_a_beating_worker_gets_new_changes_leased_by_their_own_transaction(
    store: SqlStore,
) -> None:
    now = await beating_worker(store)
    await store.ingest("acme", raw(), [report("e1", "p1", "sent")])
    await store.ingest("acme", raw(), [report("e2", "p1", "delivered", 1)])
    await store.ingest("acme", raw(), [report("e3", "p2", "sent")])
    # Leased at once: the first change of each message; the second of p1 waits its turn.
    leased = await store.leased_deliveries("s", "w", 0, now)
    assert [(d.change.message.provider_message_id, d.change.seq, d.attempts) for d in leased] == [
        ("p1", 1, 1),
        ("p2", 1, 1),
    ]
    assert await store.leased_deliveries("s", "w", leased[-1].change.cursor, now) == []
    assert await store.leased_deliveries("s", "another-worker", 0, now) == []
    assert await store.claim_deliveries("s", "w", now, LEASE, 10) == []
    # Acknowledged as of before the second change was written: not yet due for the
    # acknowledgement to lease it, so a claim takes it.
    assert await store.delivery_done(leased[0], "w", now, LEASE) == Acknowledged(True, None)
    [second] = await store.claim_deliveries("s", "w", datetime.now(UTC), LEASE, 10)
    assert (second.change.seq, second.change.status) == (2, Status.DELIVERED)

    # A worker whose heartbeat is stale gets nothing leased: a claim takes it.
    await store.subscriber_heartbeat("s", "w", now, now)
    await store.ingest("acme", raw(), [report("e4", "p3", "sent")])
    leased = await store.leased_deliveries("s", "w", 0, datetime.now(UTC))
    assert "p3" not in {d.change.message.provider_message_id for d in leased}
    [claimed] = await store.claim_deliveries("s", "w2", datetime.now(UTC), LEASE, 10)
    assert claimed.change.message.provider_message_id == "p3"


async def test_a_change_that_cannot_be_read_is_dead_lettered_and_holds_up_nothing(
    store: SqlStore,
) -> None:
    now = await beating_worker(store)
    await store.ingest("acme", raw(), [report("e1", "p1", "sent")])
    await store.ingest("acme", raw(), [report("e2", "p2", "sent")])
    unreadable, readable = (c.change_id for c in await all_changes(store))

    async def newer_status(tx: Tx) -> None:  # as a newer version could have written it
        await tx.run("UPDATE changes SET status = 'teleported' WHERE change_id = ?", (unreadable,))

    await store._run(newer_status)
    leased = await store.leased_deliveries("s", "w", 0, now)
    assert [d.change.change_id for d in leased] == [readable]
    [health] = await store.subscriber_health()
    assert (health.dead, health.backlog) == (1, 1)
    assert health.last_error is not None
    assert health.last_error.startswith(f"cannot read change {unreadable}:")
    # Given up: no look for deliveries finds it again, and p1's next change goes out.
    assert await store.passed_deliveries("s", "w", leased[0].change.cursor, set(), now) == leased
    await store.ingest("acme", raw(), [report("e3", "p1", "delivered", 1)])
    [following] = await store.leased_deliveries("s", "w", leased[0].change.cursor, now)
    assert (following.change.message.provider_message_id, following.change.seq) == ("p1", 2)


async def test_a_worker_finds_the_deliveries_leased_to_it_that_its_cursor_passed(
    store: SqlStore,
) -> None:
    now = await beating_worker(store)
    for number in (1, 2, 3):
        await store.ingest("acme", raw(), [report(f"e{number}", f"p{number}", "sent")])
    leased = await store.leased_deliveries("s", "w", 0, now)
    first, second, third = (d.change.cursor for d in leased)
    # As if the second change had committed after the third was picked up (PostgreSQL:
    # its transaction drew its id first and committed last): the worker holds the other two.
    assert await store.passed_deliveries("s", "w", third, {first, third}, now) == [leased[1]]
    assert await store.passed_deliveries("s", "w", first, {first}, now) == []
    assert await store.passed_deliveries("s", "w", third, {first, second, third}, now) == []
    assert await store.passed_deliveries("s", "another-worker", third, set(), now) == []
    # Once acknowledged it is no longer leased to anyone.
    assert await store.delivery_done(leased[1], "w", now, LEASE) == Acknowledged(True, None)
    assert await store.passed_deliveries("s", "w", third, {first, third}, now) == []
