"""Sending through SendComms: the real outbox worker against ``FakeSendComms`` (a real
HTTP server on loopback that behaves as SendComms' server does), counting what really
reached handsets (``fake.messages``) apart from what was merely retried.

The first test is the business one: 200 sends through ``receiver serve``, half of them
hit by a fault SendComms can produce, end with exactly 200 messages at SendComms, each
one linked to its own webhooks posted back by the fake.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ServerFactory, outbox_row, queue_send, until, write_config

from receiver.config import Config, load
from receiver.core.status import Status
from receiver.outbound.worker import OutboxWorker
from receiver.store import open_store
from receiver.store.sql import SqlStore
from receiver.testing.fake_sendcomms import (
    Drop,
    Fail,
    FakeSendComms,
    Reject,
    SendCall,
    Stall,
    Throttle,
)

SECRET = "whsec_0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4"
WAIT = 180.0
"""A safety deadline only (the full suite's load can slow 200 sends a lot)."""
FAST = {
    "connect_timeout_seconds": 0.5,
    "read_timeout_seconds": 0.5,
    "poll_seconds": 0.05,
    "backoff_seconds": 0.05,
    "backoff_max_seconds": 0.2,
}


def number(index: int) -> str:
    """A valid Ghanaian mobile number, one per business action."""
    return f"+23354{index:07d}"


def provider_table(fake: FakeSendComms, **keys: Any) -> dict[str, Any]:
    return {"type": "sendcomms", "secrets": [SECRET], **fake.config_keys(), **keys}


def calls_to(fake: FakeSendComms, to: str) -> list[SendCall]:
    return [call for call in fake.calls if call.to == to]


# --------------------------------------------------------------------------- 200 actions


async def test_200_sends_half_with_faults_make_exactly_200_messages_each_linked_to_its_reports(
    server_factory: ServerFactory,
):
    # SendComms locks a key for 30 s; 15 s here keeps the 503s' wait short and still
    # outlasts each slow send, held until it was asked about again.
    fake = FakeSendComms(webhook_secret=SECRET, lock_seconds=15.0, in_progress_wait=0.1)
    with fake:
        outbox = {**FAST, "read_timeout_seconds": 1.0, "backoff_max_seconds": 1.0}
        generous = {"sender": {"per_second": 1000, "burst": 200}}
        server = server_factory(
            {"outbox": outbox, "send_rate_limits": generous}, {"sendcomms": provider_table(fake)}
        )
        fake.webhook_url = f"{server.base_url}/webhooks/sendcomms"
        faults = {
            2: Throttle("1"),  # 429 with Retry-After, retryAfter and X-RateLimit-*
            1: Stall(None),  # slower than our read timeout: 409 in progress, then the replay
            0: Drop(),  # taken, answer lost: the resend is answered with the replay
            3: Fail(503),  # the carrier failed: sms.failed, 503; later a new send
        }
        for index in range(200):
            if index % 8 in faults:
                fake.on_send_to(number(index), faults[index % 8])

        headers = {"Authorization": f"Bearer {server.staff_token('shop', 'sender')}"}
        limits = httpx.Limits(max_connections=16)  # a busy client, not a connection flood
        async with httpx.AsyncClient(
            base_url=server.base_url, headers=headers, limits=limits
        ) as api:

            async def send(index: int) -> str:
                answer = await api.post(
                    "/v1/messages",
                    json={"to": number(index), "body": f"Order {index} is on its way"},
                    headers={"Idempotency-Key": f"order-{index}"},
                )
                assert answer.status_code == 202, answer.text
                return str(answer.json()["id"])

            # Each slow send finishes as soon as it was asked about again and answered 409.
            slow = {number(index) for index in range(200) if index % 8 == 1}

            def release_the_asked() -> bool:
                asked = {to for to in slow if 409 in [c.status for c in calls_to(fake, to)]}
                for to in asked:
                    fake.release_to(to)
                slow.difference_update(asked)
                return not slow

            releasing = asyncio.create_task(
                until(release_the_asked, "every slow send was asked about again", WAIT)
            )
            # The worker sends in the order they were accepted. A 429 pauses every send
            # to SendComms, so the throttled actions come first and their pauses overlap.
            ours: dict[int, str] = {}
            for kind in (*faults, None):
                batch = [i for i in range(200) if (i % 8 if i % 8 in faults else None) == kind]
                ours |= zip(batch, await asyncio.gather(*map(send, batch)), strict=True)
            await releasing
            await until(lambda: len(fake.messages) >= 200, "200 messages reached SendComms", WAIT)
            # sms.sent and sms.delivered for each, sms.failed for each 503.
            await asyncio.to_thread(fake.wait_for_webhooks, 2 * 200 + 25, WAIT)

            async def recorded() -> bool:
                found = await api.get("/v1/messages", params={"status": "delivered", "limit": 200})
                return len(found.json()["items"]) == 200

            await until(recorded, "every message is delivered", WAIT)
            records = {}
            for message_id in ours.values():
                records[message_id] = (await api.get(f"/v1/messages/{message_id}")).json()
            timelines = {}
            for message_id in ours.values():
                answer = await api.get(f"/v1/messages/{message_id}/events")
                timelines[message_id] = answer.json()["items"]
            failed = await api.get("/v1/messages", params={"status": "failed", "limit": 200})

    # Exactly one message per business action reached a handset, under our id as key.
    assert len(fake.messages) == 200
    assert sorted(m.idempotency_key for m in fake.messages) == sorted(ours.values())
    assert all(m.reference == m.idempotency_key for m in fake.messages)
    assert [w for w in fake.webhooks if w.status != 200] == []
    for index, message_id in ours.items():
        [sms] = fake.messages_of(message_id)
        assert sms.to == number(index)
        record = records[message_id]
        assert (record["status"], record["provider_message_id"]) == (
            "delivered",
            sms.transaction_id,
        )
        reports = [e for e in timelines[message_id] if e["source"] == "webhook"]
        assert sorted(e["provider_status"] for e in reports) == ["sms.delivered", "sms.sent"]

    # Each fault really happened, and was met as SendComms documents it.
    for index in range(200):
        calls = calls_to(fake, number(index))
        statuses = [c.status for c in calls]
        kind = index % 8
        if kind == 0:  # dropped, then the replay
            assert statuses[0] is None and calls[-1].replayed
        elif kind == 1:  # in progress (409) while the slow first one ran, then the replay
            assert 409 in statuses and calls[-1].replayed
        elif kind == 2:  # 429, then sent
            assert statuses[0] == 429 and 200 in statuses
        elif kind == 3:  # 503 (then 409 while its lock lasted), then a new send
            assert statuses[0] == 503
            assert any(c.status == 200 and not c.replayed for c in calls)
        else:
            assert statuses[0] == 200 and not calls[0].replayed
    # A 503's sms.failed names a transaction that sent nothing: SendComms' webhook
    # carries none of our references, so it stands as a record of its own.
    phantom = failed.json()["items"]
    assert len(phantom) == 25
    assert {m["provider_message_id"] for m in phantom}.isdisjoint(
        m.transaction_id for m in fake.messages
    )
    assert not {m["id"] for m in phantom} & set(ours.values())


# --------------------------------------------------------------------------- one fault each


@pytest.fixture
def fake() -> Iterator[FakeSendComms]:
    with FakeSendComms(lock_seconds=3.0, in_progress_wait=0.1) as server:
        yield server


def configure(directory: Path, fake: FakeSendComms, **keys: Any) -> Config:
    providers = {"sendcomms": provider_table(fake, **keys)}
    return load(write_config(directory, {"outbox": FAST}, providers))


@asynccontextmanager
async def worker(config: Config) -> AsyncIterator[SqlStore]:
    store = open_store(config.store_url)
    await store.open()
    running = OutboxWorker(store, config)
    task = asyncio.create_task(running.run())
    try:
        yield store
    finally:
        running.stop()
        await task
        await store.close()


async def queue(store: SqlStore, to: str = "+233540800994") -> str:
    return await queue_send(store, "sendcomms", to, "Your OTP is 123456")


async def until_recorded(store: SqlStore, message_id: str) -> str:
    async def known() -> bool:
        record = await store.get_message(message_id)
        return record is not None and record.provider_message_id is not None

    await until(known, f"{message_id} has its transaction id")
    record = await store.get_message(message_id)
    assert record is not None and record.provider_message_id is not None
    return record.provider_message_id


async def test_409_in_progress_is_asked_again_until_the_replay(tmp_path, fake):
    fake.on_send(Stall(1.5))  # the first request is slow at SendComms; ours times out
    config = configure(tmp_path, fake)
    async with worker(config) as store:
        message_id = await queue(store)
        transaction_id = await until_recorded(store, message_id)

    statuses = [call.status for call in fake.calls]
    assert 409 in statuses  # in progress: waited and asked again, never rejected
    assert fake.calls[-1].replayed
    assert [m.transaction_id for m in fake.messages_of(message_id)] == [transaction_id]
    assert {call.idempotency_key for call in fake.calls} == {message_id}


async def test_a_409_retry_after_holds_that_message_only(tmp_path, fake):
    # SendComms sends no Retry-After with its 409; if it did, it would be about one key.
    fake.in_progress_retry_after = "3600"
    fake.on_send(Stall(None))  # the first request stays in progress
    config = configure(tmp_path, fake)
    try:
        async with worker(config) as store:
            held = await queue(store, "+233540800001")
            await until(lambda: 409 in [c.status for c in fake.calls], "a 409")
            other = await queue(store, "+233540800002")
            await until_recorded(store, other)  # the provider was not paused
            row = await outbox_row(store, held)
            held_calls = [c.status for c in calls_to(fake, "+233540800001")]
    finally:
        fake.release()

    waits = datetime.fromisoformat(row["next_attempt_at"]) - datetime.now(UTC)
    assert waits.total_seconds() > 3000
    assert row["in_doubt"] == 1  # the first request may yet succeed
    assert held_calls == [409]  # not asked again (the first is still being answered)


async def test_a_429_with_its_headers_pauses_the_provider(tmp_path, fake):
    fake.on_send(Throttle("2"))
    config = configure(tmp_path, fake)
    async with worker(config) as store:
        first = await queue(store, number(0))
        await until(lambda: bool(fake.calls), "the 429")
        # Messages keep coming due during the pause; each is handed back until it ends
        # (and must not push the pause further: it would then never end).
        waiting = []
        for index in range(1, 21):
            waiting.append(await queue(store, number(index)))
            await asyncio.sleep(0.1)
        for message_id in (first, *waiting):
            await until_recorded(store, message_id)

    throttled, *later = fake.calls
    assert throttled.status == 429
    assert [c.status for c in later] == [200] * 21
    assert all(call.at >= throttled.at + 2 for call in later)  # nothing before Retry-After
    assert len(fake.messages) == 21


async def test_the_rate_window_is_respected_before_the_limit_is_hit(tmp_path, fake):
    fake.rate_limit, fake.window_seconds = 3, 2
    config = configure(tmp_path, fake, rate_per_second=2)
    async with worker(config) as store:
        message_ids = [await queue(store, number(index)) for index in range(7)]
        for message_id in message_ids:
            await until_recorded(store, message_id)

    assert [c.status for c in fake.calls] == [200] * 7  # X-RateLimit-Reset was waited for
    assert len(fake.messages) == 7


async def test_insufficient_balance_waits_and_a_refusal_rejects(tmp_path, fake):
    fake.on_send_to("+233540800001", Reject(402, "INSUFFICIENT_BALANCE", "Insufficient balance"))
    fake.on_send_to("+233540800002", Reject(400, "SMS_SEND_FAILED", "The recipient opted out."))
    config = configure(tmp_path, fake)
    async with worker(config) as store:
        topped_up = await queue(store, "+233540800001")
        refused = await queue(store, "+233540800002")
        await until_recorded(store, topped_up)

        async def rejected() -> bool:
            record = await store.get_message(refused)
            return record is not None and record.status is Status.REJECTED

        await until(rejected, "the refusal is recorded")
        record = await store.get_message(refused)

    assert record is not None
    assert (record.error_code, record.error_message) == (
        "SMS_SEND_FAILED",
        "The recipient opted out.",
    )
    assert [c.status for c in calls_to(fake, "+233540800002")] == [400]  # never resent
    statuses = [c.status for c in calls_to(fake, "+233540800001")]
    assert statuses[0] == 402 and statuses[-1] == 200  # 409s while its lock lasted
    assert [m.to for m in fake.messages] == ["+233540800001"]


async def test_a_server_that_dies_after_the_carrier_took_it_is_the_limit_no_client_sees(
    tmp_path, fake
):
    # SendComms caches only a success, at the very end: a 500 after the carrier took the
    # message leaves nothing under our key once its 30 s lock expires, so the resend
    # goes out again. docs/providers/sendcomms.md explains why nothing can tell.
    fake.on_send(Fail(500, record=True))
    config = configure(tmp_path, fake)
    async with worker(config) as store:
        message_id = await queue(store)
        transaction_id = await until_recorded(store, message_id)

    statuses = [call.status for call in fake.calls]
    assert statuses[0] == 500 and 409 in statuses and statuses[-1] == 200
    assert len(fake.messages_of(message_id)) == 2  # the documented residual risk
    assert fake.messages_of(message_id)[-1].transaction_id == transaction_id
