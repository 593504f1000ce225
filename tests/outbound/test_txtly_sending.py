"""Sending through ``txtly`` against ``FakeTxtly`` over real HTTP on loopback: the fake's
documented behaviour, the worker's handling of each of Txtly's faults, and 200
business actions through ``receiver serve``, half of them with a fault.

What matters is counted at the fake: the SMS it really accepted (``messages``), the
send calls per Idempotency-Key (``sends_of``) and the 429s a client earned by sending
into a used-up rate window (``window_refusals``).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ServerFactory, queue_send, write_config

from receiver.config import Config, load
from receiver.core.status import Status
from receiver.outbound.worker import MAX_IN_FLIGHT, OutboxWorker
from receiver.records import MessageRecord
from receiver.store import open_store
from receiver.store.sql import SqlStore
from receiver.testing.fake_txtly import (
    EXAMPLE_SENDER_ID,
    Drop,
    Exhaust,
    Fail,
    FakeTxtly,
    Fault,
    Reject,
    Throttle,
)

SECRET = "whsec_5f0c1e9a7b3d2c4e6a8b0d1f3e5c7a9b"
TO = "+61412345678"
BODY = "Your verification code is 123456"
WAIT = 180.0
"""A safety deadline only (the full suite's load can slow 200 sends a lot)."""
FAST = {
    "connect_timeout_seconds": 0.5,
    "read_timeout_seconds": 2.0,
    "poll_seconds": 0.05,
    "backoff_seconds": 0.05,
    "backoff_max_seconds": 0.2,
}


@pytest.fixture
def txtly() -> Iterator[FakeTxtly]:
    with FakeTxtly() as fake:
        yield fake


def provider_table(txtly: FakeTxtly) -> dict[str, Any]:
    return {"type": "txtly", "secrets": [SECRET], **txtly.config_keys()}


async def until(condition: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Wait for ``condition`` (a safety timeout only: nothing here measures speed)."""
    deadline = time.monotonic() + WAIT
    while True:
        result = condition()
        if result if isinstance(result, bool) else await result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------------- the fake


def post(txtly: FakeTxtly, key: str | None = "k-1", **changes: Any) -> httpx.Response:
    payload = {"to": TO, "body": BODY, "senderId": EXAMPLE_SENDER_ID, **changes}
    headers = {"authorization": f"Bearer {txtly.api_key}"}
    if key is not None:
        headers["idempotency-key"] = key
    return httpx.post(f"{txtly.base_url}/v1/sms", json=payload, headers=headers)


def test_the_fake_answers_as_txtly_documents(txtly: FakeTxtly) -> None:
    sent = post(txtly)
    assert sent.status_code == 200
    body = sent.json()
    assert (body["status"], body["to"], body["senderId"]) == ("sent", TO, EXAMPLE_SENDER_ID)
    assert body["providerMessageId"].startswith("sns-msg-")
    assert body["id"] == txtly.message("k-1").id

    unauthorized = httpx.post(f"{txtly.base_url}/v1/sms", json={}, headers={"authorization": "x"})
    assert unauthorized.status_code == 401
    assert unauthorized.json() == {
        "status_code": 401,
        "name": "authentication_error",
        "message": "Missing or invalid API key",
    }
    invalid = post(txtly, "k-2", to="0412345678")
    assert (invalid.status_code, invalid.json()["name"]) == (400, "validation_error")
    assert list(invalid.json()["errors"]) == ["to"]
    unknown_sender = post(txtly, "k-3", senderId="0b8e5d1c-2f3a-4b5c-8d9e-0f1a2b3c4d5e")
    assert (unknown_sender.status_code, unknown_sender.json()["name"]) == (
        422,
        "unprocessable_entity",
    )
    assert len(txtly.messages) == 1


def test_every_answer_carries_the_rate_window(txtly: FakeTxtly) -> None:
    for answer in (post(txtly), post(txtly, "k-2", body=""), post(txtly, "k-3", senderId="x")):
        assert answer.headers["x-ratelimit-limit"] == "100"
        assert 0 < int(answer.headers["x-ratelimit-remaining"]) < 100
        assert int(answer.headers["x-ratelimit-reset"]) > time.time() - 1  # a Unix time


def test_the_same_key_gets_the_existing_sms_for_24_hours_then_a_new_one(
    txtly: FakeTxtly,
) -> None:
    first = post(txtly).json()
    txtly.age_keys(timedelta(hours=23, minutes=59))
    again = post(txtly, body="another body under the same key").json()
    assert again["id"] == first["id"] and again["body"] == BODY  # the existing message
    assert len(txtly.messages) == 1

    txtly.age_keys(timedelta(minutes=1))  # 24 h: "the idempotency key expires"
    after = post(txtly).json()
    assert after["id"] != first["id"]
    assert [sms.id for sms in txtly.messages_for("k-1")] == [first["id"], after["id"]]


def test_a_429_carries_retry_after_and_the_window_stays_used_up(txtly: FakeTxtly) -> None:
    txtly.fault("k-1", Throttle("2"))
    throttled = post(txtly)
    assert throttled.status_code == 429
    assert throttled.json() == {
        "status_code": 429,
        "name": "rate_limit_exceeded",
        "message": "You have exceeded the rate limit. Please try again later.",
    }
    assert throttled.headers["retry-after"] == "2"
    assert throttled.headers["x-ratelimit-remaining"] == "0"
    reset = int(throttled.headers["x-ratelimit-reset"])
    assert reset >= time.time() + 1

    refused = post(txtly, "k-2")  # a client that does not wait
    assert refused.status_code == 429 and txtly.window_refusals == 1
    time.sleep(max(0.0, reset - time.time()))
    assert post(txtly, "k-2").status_code == 200
    assert txtly.messages == [txtly.message("k-2")]


def test_past_the_limit_the_window_is_used_up_until_it_resets() -> None:
    with FakeTxtly(limit=3) as txtly:
        time.sleep(1.01 - time.time() % 1)  # at the start of a second: four requests fit
        remaining = [post(txtly, f"k-{i}").headers["x-ratelimit-remaining"] for i in range(3)]
        over = post(txtly, "k-3")
    assert remaining == ["2", "1", "0"]
    assert (over.status_code, over.headers["retry-after"]) == (429, "1")
    assert txtly.window_refusals == 1 and len(txtly.messages) == 3


# --------------------------------------------------------------------------- the worker


def configure(directory: Path, txtly: FakeTxtly, **outbox: Any) -> Config:
    settings = {"outbox": {**FAST, **outbox}}
    return load(write_config(directory, settings, {"txtly": provider_table(txtly)}))


@pytest.fixture
async def store_and_config(
    tmp_path: Path, txtly: FakeTxtly
) -> AsyncIterator[tuple[SqlStore, Config]]:
    config = configure(tmp_path, txtly)
    store = open_store(config.store_url)
    await store.open()
    yield store, config
    await store.close()


async def queue(store: SqlStore, *, now: datetime | None = None) -> str:
    return await queue_send(store, "txtly", TO, BODY, sender=EXAMPLE_SENDER_ID, now=now)


@asynccontextmanager
async def running(store: SqlStore, config: Config) -> AsyncIterator[None]:
    worker = OutboxWorker(store, config)
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        worker.stop()
        await task


async def handed_over(store: SqlStore, message_id: str) -> MessageRecord:
    async def recorded() -> bool:
        events = await store.message_events(message_id)
        return any(
            e.event_id.endswith((":sent_to_provider", ":rejected_by_provider")) for e in events
        )

    await until(recorded, f"{message_id} is handed over")
    message = await store.get_message(message_id)
    assert message is not None
    return message


async def send_one(
    store: SqlStore, config: Config, txtly: FakeTxtly, fault: Fault
) -> tuple[str, MessageRecord]:
    """Queue a message whose first send meets ``fault``; run the worker until it is
    handed over (or refused)."""
    message_id = await queue(store)
    txtly.fault(message_id, fault)
    async with running(store, config):
        return message_id, await handed_over(store, message_id)


FAULTS: list[tuple[str, Fault, int]] = [
    ("answer dropped after the SMS was taken: resent under the key", Drop(), 2),
    ("500 after the SMS was taken: resent under the key", Fail(500, record=True), 2),
    ("500 before it was taken", Fail(500), 2),
    ("429 with Retry-After", Throttle("1"), 2),
    ("the answer says the window is used up", Exhaust(1.0), 1),
]


@pytest.mark.parametrize(("fault", "sends"), [pytest.param(f, n, id=name) for name, f, n in FAULTS])
async def test_after_each_fault_there_is_exactly_one_sms(store_and_config, txtly, fault, sends):
    message_id, message = await send_one(*store_and_config, txtly, fault)

    assert [sms.idempotency_key for sms in txtly.messages] == [message_id]
    assert txtly.sends_of(message_id) == sends
    assert message.provider_message_id == txtly.message(message_id).id
    assert txtly.window_refusals == 0


async def test_a_429_pauses_every_send_until_retry_after(store_and_config, txtly):
    store, config = store_and_config
    first = await queue(store)
    txtly.fault(first, Throttle("2"))
    async with running(store, config):
        await until(lambda: len(txtly.send_calls) == 1, "the first send is refused")
        second = await queue(store)
        for message_id in (first, second):
            await handed_over(store, message_id)

    throttled, *later = txtly.send_calls
    assert throttled.status == 429 and len(later) == 2
    # Lower bounds only: every later call waited for Retry-After (2 s), none was refused.
    assert all(call.at - throttled.at >= 1.9 for call in later)
    assert txtly.window_refusals == 0 and len(txtly.messages) == 2


async def test_a_used_up_window_holds_the_next_sends_until_its_reset(store_and_config, txtly):
    store, config = store_and_config
    first = await queue(store)
    txtly.fault(first, Exhaust(1.0))
    async with running(store, config):
        await handed_over(store, first)
        [exhausting] = txtly.send_calls
        reset = math.ceil(exhausting.at + 1.0)
        others = [await queue(store) for _ in range(3)]
        for message_id in others:
            await handed_over(store, message_id)

    assert all(call.at >= reset for call in txtly.send_calls[1:])
    assert txtly.window_refusals == 0  # no 429 was needed to slow it down
    assert len(txtly.messages) == 4


@pytest.mark.parametrize(
    ("fault", "name"),
    [
        (Reject(400, "validation_error", "Validation failed"), "validation_error"),
        (Reject(422, "unprocessable_entity", "The sender is not active"), "unprocessable_entity"),
    ],
)
async def test_a_refused_sms_is_rejected_with_txtlys_error(store_and_config, txtly, fault, name):
    message_id, message = await send_one(*store_and_config, txtly, fault)

    assert (message.status, message.error_code, message.error_message) == (
        Status.REJECTED,
        name,
        fault.message,
    )
    assert txtly.messages == [] and txtly.sends_of(message_id) == 1


async def test_past_the_keys_lifetime_a_send_in_doubt_is_held_not_resent(tmp_path, txtly):
    # A worker sent the SMS 23.5 hours ago and died before recording the answer: Txtly
    # forgets the key at 24 h, so within the last hour a resend could be a second SMS.
    config = configure(tmp_path, txtly, give_up_seconds=2 * 86400)
    store = open_store(config.store_url)
    await store.open()
    try:
        long_ago = datetime.now(UTC) - timedelta(hours=23, minutes=30)
        message_id = await queue(store, now=long_ago)
        assert await store.claim_outbox("wkr_died", long_ago, lease_seconds=1, limit=1)
        txtly.accept(message_id, TO, BODY)
        txtly.age_keys(timedelta(hours=23, minutes=30))
        async with running(store, config):

            async def held() -> bool:
                message = await store.get_message(message_id)
                return message is not None and message.status is Status.UNKNOWN

            await until(held, "the message is held")
        [row] = await store.held_outbox()
        message = await store.get_message(message_id)
    finally:
        await store.close()

    assert row.message_id == message_id
    assert "forgets our idempotency key" in (row.reason or "")
    assert message is not None and message.error_code == "SEND_IN_DOUBT"
    assert txtly.send_calls == []  # not resent
    assert len(txtly.messages) == 1


# --------------------------------------------------------------------------- 200 actions

# 100 of the 200 business actions get one of these as the first answer to their send.
MIX: list[tuple[Fault, int]] = [
    (Drop(), 36),
    (Fail(500, record=True), 32),
    (Fail(500), 22),
    (Throttle("1"), 6),
    (Exhaust(2.0), 4),  # 2-3 s: long enough that a worker ignoring it would be caught
]


async def test_200_business_actions_half_with_faults_make_exactly_200_sms(
    server_factory: ServerFactory,
):
    # in_flight_grace: the requests the worker had in flight when it read the answer that
    # used the window up (at most MAX_IN_FLIGHT - 1 others) are not held against it,
    # however late they arrive; any further one in the window is a refusal.
    with FakeTxtly(limit=10_000, in_flight_grace=MAX_IN_FLIGHT - 1) as txtly:
        txtly.refuse_connections()  # until every action's fault is scripted
        server = server_factory(
            {"outbox": FAST, "send_rate_limits": {"sender": {"per_second": 1000, "burst": 200}}},
            {"txtly": provider_table(txtly)},
        )
        headers = {"Authorization": f"Bearer {server.staff_token('shop', 'sender')}"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as api:
            ids = await send_200(api)
            faults = [fault for fault, count in MIX for _ in range(count)]
            random.Random(18).shuffle(faults)  # the kinds spread over the whole run
            for message_id, fault in zip(ids[::2], faults, strict=True):
                txtly.fault(message_id, fault)
            txtly.start()

            unlinked = set(ids)
            await until(lambda: linked(api, unlinked), "every message has Txtly's id")
            records = await records_of(api, ids)
            answers = await asyncio.gather(  # Txtly's reports, as the fake posts them
                *(
                    asyncio.to_thread(
                        txtly.report,
                        message_id,
                        "delivered",
                        receiver_url=server.base_url,
                        secret=SECRET,
                        provider="txtly",
                    )
                    for message_id in ids
                )
            )
            assert {(a.status_code, a.json()["applied"]) for a in answers} == {(200, 1)}
            delivered = await records_of(api, ids)

    assert len(txtly.messages) == 200
    assert sorted(sms.idempotency_key or "" for sms in txtly.messages) == sorted(ids)
    for message_id in ids:
        assert records[message_id]["provider_message_id"] == txtly.message(message_id).id
    assert {(m["status"], m["report_count"]) for m in delivered.values()} == {("delivered", 1)}
    resent = [
        m for m, fault in zip(ids[::2], faults, strict=True) if not isinstance(fault, Exhaust)
    ]
    assert all(txtly.sends_of(m) >= 2 for m in resent)
    assert sum(call.status == 429 and not call.window_refusal for call in txtly.send_calls) == 6
    assert txtly.window_refusals == 0


async def send_200(api: httpx.AsyncClient) -> list[str]:
    """200 business actions through ``POST /v1/messages``, 20 at a time; their ids."""
    limit = asyncio.Semaphore(20)

    async def send(index: int) -> str:
        async with limit:
            answer = await api.post(
                "/v1/messages",
                json={"provider": "txtly", "to": TO, "body": f"Order {index} is on its way"},
                headers={"Idempotency-Key": f"order-{index}"},
            )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    return list(await asyncio.gather(*(send(index) for index in range(200))))


async def records_of(api: httpx.AsyncClient, ids: list[str]) -> dict[str, Any]:
    """Each message as the staff API shows it."""
    answers = await asyncio.gather(*(api.get(f"/v1/messages/{m}") for m in ids))
    return {m: answer.json() for m, answer in zip(ids, answers, strict=True)}


async def linked(api: httpx.AsyncClient, unlinked: set[str]) -> bool:
    """Whether every message in ``unlinked`` has its provider id (found ones leave it)."""
    for message_id in sorted(unlinked):
        record = (await api.get(f"/v1/messages/{message_id}")).json()
        if record["provider_message_id"] is None:
            return False
        unlinked.discard(message_id)
    return True
