"""A report filed by our reference settles a send in doubt (SQLite store, no HTTP).

Providers without a lookup or an idempotency key (Smstools) hold a send in doubt for a
person. Their reports echo our reference, so the first report proves the attempt
reached the provider: the held row must not stay in ``receiver outbox held``, where a
``resend`` would send the message twice."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import queue_send

from receiver.core.reports import Report
from receiver.core.status import Status
from receiver.records import RawRequest
from receiver.store.ingest import SETTLED_BY_REPORT
from receiver.store.sqlite import SqliteStore

T0 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
LATER = T0 + timedelta(days=1)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "receiver.db")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def queued(store: SqliteStore) -> str:
    return await queue_send(
        store,
        "smstools",
        "+32470123456",
        "Your parcel arrives today",
        sender="PARCELS",
        now=T0,
        client_id="stf_shop",
    )


async def report_naming(store: SqliteStore, message_id: str, status: Status) -> None:
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


async def test_a_held_send_is_done_once_a_report_names_it(store, tmp_path):
    message_id = await queued(store)
    [item] = await store.claim_outbox("w1", T0, 30, 10)
    assert await store.outbox_hold(item, "w1", "may have reached smstools", T0)

    await report_naming(store, message_id, Status.DELIVERED)

    assert await store.held_outbox() == []
    assert not await store.release_held(message_id, True, "resent by hand", T0)  # not held
    assert await store.claim_outbox("w1", LATER, 30, 10) == []
    with closing(sqlite3.connect(tmp_path / "receiver.db")) as conn:
        row = conn.execute("SELECT state, body, last_error FROM outbox").fetchone()
    assert row == ("done", None, SETTLED_BY_REPORT)
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
