"""The store contract for sends and the outbox (no HTTP): one transaction per send,
idempotency answers, leases, messages whose reports arrived before the send's answer,
and sends in doubt settled by a report."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from conftest import queue_send, stored_value

from receiver.core.reports import Report
from receiver.core.status import Status
from receiver.errors import ClientReferenceTaken, IdempotencyKeyReused
from receiver.records import MessageFilter, MessageRecord, NewSend, RawRequest, Template
from receiver.store import open_store
from receiver.store.ingest import SETTLED_BY_REPORT
from receiver.store.sql import SqlStore

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
LEASE = 30.0
LATER = T0 + timedelta(days=1)


def new_send(**changes: object) -> NewSend:
    send = NewSend(
        client_id="stf_client",
        provider="acme",
        to="+639171234567",
        body="Your order 8821 is on its way",
        sender="ACME",
        client_reference="order-8821-confirmation",
        segments=1,
        idempotency_key="key-1",
        fingerprint="fp-1",
        key_expires_at=T0 + timedelta(days=1),
        now=T0,
    )
    return replace(send, **changes)  # type: ignore[arg-type]


def render(message: MessageRecord) -> tuple[int, str]:
    return 202, json.dumps({"id": message.id, "status": message.status})


def report(event_id: str, provider_message_id: str, status: Status, **fields: object) -> Report:
    return Report(
        event_id=event_id,
        provider_message_id=provider_message_id,
        status=status,
        provider_status=status.value,
        occurred_at=T0 + timedelta(minutes=1),
        **fields,  # type: ignore[arg-type]
    )


def webhook() -> RawRequest:
    return RawRequest(path="/webhooks/acme", body=b"{}", received_at=T0)


async def test_a_send_commits_message_outbox_row_and_key_together(store):
    answer = await store.create_send(new_send(), render)

    assert (answer.status_code, answer.replayed) == (202, False)
    message = await store.get_message(answer.message_id)
    assert message is not None
    assert (message.status, message.client_id, message.sender, message.segments) == (
        Status.QUEUED,
        "stf_client",
        "ACME",
        1,
    )
    assert message.report_count == 0  # our own steps are not provider reports
    [event] = await store.message_events(message.id)
    assert (event.event_id, event.source, event.status) == (
        f"out:{message.id}:accepted",
        "outbound",
        Status.QUEUED,
    )
    assert await store.select("SELECT state, attempts, in_doubt FROM outbox") == [
        {"state": "pending", "attempts": 0, "in_doubt": 0}
    ]
    assert await store.select("SELECT key, status_code FROM idempotency_keys") == [
        {"key": "key-1", "status_code": 202}
    ]


async def test_the_same_key_and_request_replays_the_stored_answer(store):
    first = await store.create_send(new_send(), render)
    again = await store.create_send(new_send(now=T0 + timedelta(hours=1)), render)

    assert again.replayed
    assert (again.status_code, again.body, again.message_id) == (202, first.body, first.message_id)
    assert await stored_value(store, "SELECT count(*) FROM outbox") == 1


async def test_the_same_key_for_another_request_is_refused(store):
    await store.create_send(new_send(), render)
    with pytest.raises(IdempotencyKeyReused):
        await store.create_send(new_send(fingerprint="fp-2", body="another"), render)


async def test_an_expired_key_is_free_again(store):
    first = await store.create_send(new_send(), render)
    later = T0 + timedelta(days=2)
    second = await store.create_send(
        new_send(now=later, fingerprint="fp-2", client_reference="order-8822-confirmation"),
        render,
    )
    assert not second.replayed and second.message_id != first.message_id


async def test_a_client_reference_is_unique_per_client(store):
    first = await store.create_send(new_send(), render)
    with pytest.raises(ClientReferenceTaken) as refused:
        await store.create_send(new_send(idempotency_key="key-2"), render)
    assert refused.value.existing_message_id == first.message_id
    # Another client may use the same reference.
    other = await store.create_send(new_send(client_id="stf_other"), render)
    assert other.message_id != first.message_id


async def test_pruning_removes_only_expired_keys(store):
    await store.create_send(new_send(), render)
    await store.create_send(
        new_send(
            idempotency_key="key-2",
            client_reference=None,
            key_expires_at=T0 + timedelta(hours=1),
        ),
        render,
    )
    assert await store.prune_idempotency_keys(T0 + timedelta(hours=2)) == 1
    assert await store.prune_idempotency_keys(T0 + timedelta(hours=2)) == 0


async def test_a_claim_leases_each_row_to_one_worker(store):
    await store.create_send(new_send(), render)
    [item] = await store.claim_outbox("w1", T0, LEASE, 10)
    assert (item.attempts, item.in_doubt, item.body) == (1, False, new_send().body)
    assert await store.claim_outbox("w2", T0 + timedelta(seconds=1), LEASE, 10) == []


async def test_a_lease_that_ran_out_is_claimed_again_in_doubt(store):
    await store.create_send(new_send(), render)
    [first] = await store.claim_outbox("w1", T0, LEASE, 10)
    [again] = await store.claim_outbox("w2", T0 + timedelta(seconds=LEASE + 1), LEASE, 10)
    assert (again.attempts, again.in_doubt) == (2, True)
    # The first worker lost its lease: whatever it reports is not recorded.
    assert not await store.outbox_sent(first, "w1", "P-1", "accepted", T0)
    assert await store.outbox_sent(again, "w2", "P-1", "accepted", T0)


async def test_a_retry_keeps_doubt_and_waits_until_its_time(store):
    await store.create_send(new_send(), render)
    [item] = await store.claim_outbox("w1", T0, LEASE, 10)
    at = T0 + timedelta(seconds=10)
    assert await store.outbox_retry(item, "w1", at, "read timeout", in_doubt=True)
    assert await store.claim_outbox("w1", at - timedelta(seconds=1), LEASE, 10) == []
    [next_try] = await store.claim_outbox("w1", at, LEASE, 10)
    assert (next_try.attempts, next_try.in_doubt) == (2, True)
    # A later "definitely not sent" does not clear the earlier doubt.
    assert await store.outbox_retry(next_try, "w1", at, "connection refused", in_doubt=False)
    [third] = await store.claim_outbox("w1", at, LEASE, 10)
    assert third.in_doubt


async def test_reports_that_arrived_before_the_answer_join_the_sent_message(store):
    sent = await store.create_send(new_send(), render)
    # The provider's delivery report is faster than its API answer, and echoes our
    # message id as its client reference.
    early = report("e-1", "P-1", Status.DELIVERED, to="+639171234567", client_reference="msg_x")
    await store.ingest("acme", webhook(), [early])
    [item] = await store.claim_outbox("w1", T0, LEASE, 10)

    assert await store.outbox_sent(item, "w1", "P-1", "accepted", T0 + timedelta(seconds=2))

    message = await store.get_message(sent.message_id)
    assert message is not None
    assert (message.provider_message_id, message.status, message.report_count) == (
        "P-1",
        Status.DELIVERED,
        1,
    )
    assert message.client_reference == "order-8821-confirmation"  # the client's, kept
    events = await store.message_events(message.id)
    assert sorted(event.event_id for event in events) == sorted(
        ["e-1", f"out:{message.id}:accepted", f"out:{message.id}:sent_to_provider"]
    )
    assert await stored_value(store, "SELECT count(*) FROM messages") == 1  # merged
    assert await store.select("SELECT state, body FROM outbox") == [
        {"state": "done", "body": None}  # the body is not kept
    ]


async def test_a_rejected_send_sets_the_status_and_leaves_the_outbox(store):
    sent = await store.create_send(new_send(), render)
    [item] = await store.claim_outbox("w1", T0, LEASE, 10)
    assert await store.outbox_failed(
        item, "w1", Status.REJECTED, "21610", "unsubscribed recipient", T0
    )
    message = await store.get_message(sent.message_id)
    assert message is not None
    assert (message.status, message.error_code) == (Status.REJECTED, "21610")
    assert await store.claim_outbox("w1", T0 + timedelta(days=1), LEASE, 10) == []


# --- groundwork of the seed providers ---------------------------------------------------


async def test_a_template_send_keeps_its_template_until_sent(store):
    template = Template("TPL1001", "pt_BR", {"1": "Maria"})
    answer = await store.create_send(new_send(body=None, template=template, segments=None), render)
    [item] = await store.claim_outbox("w1", T0, LEASE, 10)
    assert (item.message_id, item.body, item.template) == (answer.message_id, None, template)
    assert await store.outbox_sent(item, "w1", "P-1", "queued", T0)
    assert await store.select("SELECT body, template FROM outbox") == [
        {"body": None, "template": None}
    ]


async def test_the_first_attempt_starts_the_clock_of_the_providers_key(store):
    await store.create_send(new_send(), render)
    [first] = await store.claim_outbox("w1", T0, LEASE, 10)
    assert first.first_attempt_at == T0
    later = T0 + timedelta(minutes=5)
    assert await store.outbox_retry(first, "w1", later, "read timeout", in_doubt=True)
    [second] = await store.claim_outbox("w1", later, LEASE, 10)
    assert second.first_attempt_at == T0  # the key's clock does not restart


async def test_a_handover_without_the_providers_id_is_completed_by_a_report(store):
    # FutureSMS answers a repeated client_order_id with CONFLICT: it has the message,
    # but its id reaches us only in the message's first report, with our reference.
    answer = await store.create_send(new_send(), render)
    message_id = answer.message_id
    [item] = await store.claim_outbox("w1", T0, LEASE, 10)
    assert await store.outbox_sent(item, "w1", None, "CONFLICT", T0)
    sent = await store.get_message(message_id)
    assert sent is not None and sent.provider_message_id is None

    dlr = report("e1", "ORD-7", Status.DELIVERED, message_reference=message_id)
    outcome = await store.ingest("acme", webhook(), [dlr])

    assert outcome.applied == 1
    done = await store.get_message(message_id)
    assert done is not None
    assert (done.provider_message_id, done.status, done.to) == (
        "ORD-7",
        Status.DELIVERED,
        "+639171234567",
    )
    # Later reports name only the provider's id, and still find it.
    await store.ingest("acme", webhook(), [report("e2", "ORD-7", Status.SENT)])
    assert [m.id for m in await store.find_messages(MessageFilter(), 10, None)] == [message_id]


async def test_a_batch_files_a_report_by_reference_and_its_message_s_other_reports_with_it(
    store_url: str,
) -> None:
    # One group commit (asyncio.gather: one event-loop iteration) brings the report
    # with our reference, a later one naming only the provider's id, and a stranger.
    batches: list[int] = []
    store = open_store(store_url, on_commit=lambda reports, _: batches.append(reports))
    await store.open()
    try:
        answer = await store.create_send(new_send(), render)
        [item] = await store.claim_outbox("w1", T0, LEASE, 10)
        assert await store.outbox_sent(item, "w1", None, "CONFLICT", T0)
        batches.clear()
        await asyncio.gather(
            store.ingest("acme", webhook(), [report("e2", "ORD-7", Status.DELIVERED)]),
            store.ingest(
                "acme",
                webhook(),
                [report("e1", "ORD-7", Status.SENT, message_reference=answer.message_id)],
            ),
            store.ingest("acme", webhook(), [report("e3", "P-other", Status.SENT)]),
        )
        assert batches == [3]
        ours = await store.get_message(answer.message_id)
        assert ours is not None
        assert (ours.provider_message_id, ours.status) == ("ORD-7", Status.DELIVERED)
        assert len(await store.find_messages(MessageFilter(), 10, None)) == 2
    finally:
        await store.close()


async def test_a_reference_is_not_trusted_for_a_message_with_another_providers_id(store):
    answer = await store.create_send(new_send(), render)
    [item] = await store.claim_outbox("w1", T0, LEASE, 10)
    assert await store.outbox_sent(item, "w1", "P-1", "queued", T0)

    stray = report("e1", "P-2", Status.DELIVERED, message_reference=answer.message_id)
    await store.ingest("acme", webhook(), [stray])

    ours = await store.get_message(answer.message_id)
    assert ours is not None and (ours.provider_message_id, ours.status) == ("P-1", Status.QUEUED)
    [other] = await store.find_messages(MessageFilter(provider_message_id="P-2"), 10, None)
    assert other.id != answer.message_id


async def test_a_held_send_shows_unknown_until_a_person_settles_it(store):
    answer = await store.create_send(new_send(), render)
    message_id = answer.message_id
    [item] = await store.claim_outbox("w1", T0, LEASE, 10)

    assert await store.outbox_hold(item, "w1", "may have reached acme", T0)

    held = await store.get_message(message_id)
    assert held is not None
    assert (held.status, held.error_code) == (Status.UNKNOWN, "SEND_IN_DOUBT")
    assert [(h.message_id, h.reason) for h in await store.held_outbox()] == [
        (message_id, "may have reached acme")
    ]
    assert await store.claim_outbox("w1", T0 + timedelta(days=1), LEASE, 10) == []

    assert await store.release_held(message_id, True, "checked: acme never got it", T0)
    [again] = await store.claim_outbox("w1", T0, LEASE, 10)
    assert (again.message_id, again.in_doubt) == (message_id, False)
    assert await store.held_outbox() == []
    assert not await store.release_held(message_id, True, "twice", T0)


async def test_giving_up_on_a_held_send_fails_it(store):
    answer = await store.create_send(new_send(), render)
    [item] = await store.claim_outbox("w1", T0, LEASE, 10)
    assert await store.outbox_hold(item, "w1", "may have reached acme", T0)

    assert await store.release_held(answer.message_id, False, "resent by phone instead", T0)

    failed = await store.get_message(answer.message_id)
    assert failed is not None
    assert (failed.status, failed.error_message) == (Status.FAILED, "resent by phone instead")
    assert await store.claim_outbox("w1", T0 + timedelta(days=1), LEASE, 10) == []
    # A report from the provider still corrects it: the attempt did reach it after all.
    late = report("e1", "P-9", Status.DELIVERED, message_reference=answer.message_id)
    await store.ingest("acme", webhook(), [late])
    delivered = await store.get_message(answer.message_id)
    assert delivered is not None and delivered.status == Status.DELIVERED


# --- a send in doubt settled by a report naming it
# Providers without a lookup or an idempotency key (Smstools) hold a send in doubt for a
# person. Their reports echo our reference, so the first report proves the attempt
# reached the provider: the held row must not stay in ``receiver outbox held``, where a
# ``resend`` would send the message twice.


async def queued(store: SqlStore) -> str:
    return await queue_send(
        store,
        "smstools",
        "+32470123456",
        "Your parcel arrives today",
        sender="PARCELS",
        now=T0,
        client_id="stf_shop",
    )


async def report_naming(store: SqlStore, message_id: str, status: Status) -> None:
    dlr = Report(
        event_id=f"e-{status}",
        provider_message_id="e1qk89exbzgf6fzfunceym2sd67h88",
        status=status,
        provider_status=status.value,
        occurred_at=T0 + timedelta(minutes=2),
        message_reference=message_id,
    )
    raw = RawRequest(path="/webhooks/smstools?token=REDACTED", body=b"[]", received_at=T0)
    outcome = await store.ingest("smstools", raw, [dlr])
    assert outcome.applied == 1


async def test_a_held_send_is_done_once_a_report_names_it(store):
    message_id = await queued(store)
    [item] = await store.claim_outbox("w1", T0, 30, 10)
    assert await store.outbox_hold(item, "w1", "may have reached smstools", T0)

    await report_naming(store, message_id, Status.DELIVERED)

    assert await store.held_outbox() == []
    assert not await store.release_held(message_id, True, "resent by hand", T0)  # not held
    assert await store.claim_outbox("w1", LATER, 30, 10) == []
    assert await store.select("SELECT state, body, last_error FROM outbox") == [
        {"state": "done", "body": None, "last_error": SETTLED_BY_REPORT}
    ]
    message = await store.get_message(message_id)
    assert message is not None
    assert (message.status, message.provider_message_id) == (
        Status.DELIVERED,
        "e1qk89exbzgf6fzfunceym2sd67h88",
    )


async def test_a_send_waiting_in_doubt_is_done_once_a_report_names_it(store):
    message_id = await queued(store)
    [item] = await store.claim_outbox("w1", T0, 30, 10)
    assert await store.outbox_retry(item, "w1", T0, "read timeout", in_doubt=True)

    await report_naming(store, message_id, Status.SENT)

    assert await store.claim_outbox("w1", LATER, 30, 10) == []  # never held, never resent
    assert await store.held_outbox() == []
    message = await store.get_message(message_id)
    assert message is not None and message.status == Status.SENT


async def test_a_send_never_attempted_is_not_settled_by_a_report(store):
    # No attempt can have reached the provider: a report naming it proves nothing, and
    # the message still goes out.
    message_id = await queued(store)

    await report_naming(store, message_id, Status.DELIVERED)

    [item] = await store.claim_outbox("w1", LATER, 30, 10)
    assert (item.message_id, item.in_doubt) == (message_id, False)
