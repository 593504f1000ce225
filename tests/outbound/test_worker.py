"""The outbox worker against a real (fake) provider over real HTTP on loopback.

Every test asserts what matters to the business: how many messages the provider really
accepted (``fake.messages``), and how many send calls it got (``fake.sends_of``), so a
retry is told apart from a message sent twice.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    another_store,
    new_whsec,
    outbox_has,
    outbox_row,
    queue_send,
    until,
    write_config,
)
from processes import start_worker

from receiver.config import Config, load
from receiver.core.status import Status
from receiver.outbound.worker import OutboxWorker
from receiver.records import MessageRecord
from receiver.store import open_store
from receiver.store.base import from_text
from receiver.store.sql import SqlStore
from receiver.testing.fake_provider import (
    Behaviour,
    Drop,
    Fail,
    FakeProvider,
    Stall,
    Throttle,
)

pytestmark = pytest.mark.long_running

TO = "+639171234567"
BODY = "Your code is 482913"
WAIT = 20.0
FAST = {  # short timeouts and backoff, so every failure mode takes well under a second
    "connect_timeout_seconds": 0.5,
    "read_timeout_seconds": 0.5,
    "poll_seconds": 0.05,
    "backoff_seconds": 0.05,
    "backoff_max_seconds": 0.2,
}


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


def provider_table(fake: FakeProvider, **keys: Any) -> dict[str, Any]:
    """A ``standard`` provider that sends through ``fake``."""
    return {"type": "standard", "secrets": [new_whsec()], **fake.config_keys(), **keys}


def configure(
    directory: Path,
    fake: FakeProvider,
    *,
    rate_per_second: float | None = None,
    database_url: str | None = None,
    **outbox: Any,
) -> Config:
    provider = provider_table(fake)
    if rate_per_second is not None:
        provider["rate_per_second"] = rate_per_second
    settings: dict[str, Any] = {"outbox": {**FAST, **outbox}}
    if database_url is not None:
        settings["database_url"] = database_url
    return load(write_config(directory, settings, {"default": provider}))


@pytest.fixture
def config(tmp_path: Path, fake: FakeProvider) -> Config:
    return configure(tmp_path, fake)


@pytest.fixture
async def store(config: Config) -> AsyncIterator[SqlStore]:
    store = open_store(config.store_url)
    await store.open()
    yield store
    await store.close()


async def queue(store: SqlStore, *, body: str = BODY, now: datetime | None = None) -> str:
    """Commit a message to send, as ``POST /v1/messages`` does; its id."""
    return await queue_send(store, "default", TO, body, sender="ACME", now=now)


@asynccontextmanager
async def running(*workers: OutboxWorker) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        yield
    finally:
        for worker in workers:
            worker.stop()
        await asyncio.gather(*tasks)


async def finished(store: SqlStore, message_id: str, *workers: OutboxWorker) -> MessageRecord:
    """Run the workers until the message's outbox row is done; the message."""
    async with running(*workers):
        await until(lambda: outbox_has(store, message_id, state="done"), "the row is done")
    message = await store.get_message(message_id)
    assert message is not None
    return message


async def all_done(store: SqlStore, message_ids: list[str]) -> bool:
    """Whether the outbox rows of all these messages are done."""
    return all([await outbox_has(store, i, state="done") for i in message_ids])


async def outbound_steps(store: SqlStore, message_id: str) -> list[tuple[str, str | None]]:
    events = await store.message_events(message_id)
    return [(e.event_id.rsplit(":", 1)[-1], e.status) for e in events if e.source == "outbound"]


async def in_doubt_and_old(store: SqlStore) -> str:
    """A message accepted two days ago whose worker died mid-attempt (its lease ran out)."""
    long_ago = datetime.now(UTC) - timedelta(days=2)
    message_id = await queue(store, now=long_ago)
    assert await store.claim_outbox("wkr_died", long_ago, lease_seconds=1, limit=1)
    return message_id


class Canned:
    """A provider API that gives every request the same answer, through an httpx
    transport (no server): for the tests that need nothing but that answer."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._answer)
        self._answer_args = (status, body, headers or {})

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, body, headers = self._answer_args
        return httpx.Response(status, json=body, headers=headers)


async def canned_setup(directory: Path) -> tuple[Config, SqlStore]:
    """A ``standard`` provider whose send API is at an address no request leaves for
    (a ``Canned`` transport answers), and its open store."""
    table = {
        "type": "standard",
        "secrets": [new_whsec()],
        "api_base_url": "http://provider.invalid",
        "api_key": "test-key",
    }
    config = load(write_config(directory, {"outbox": FAST}, {"default": table}))
    store = open_store(config.store_url)
    await store.open()
    return config, store


# --------------------------------------------------------------------------- sending


async def test_a_message_is_sent_once_with_our_id_as_reference_and_key(store, config, fake):
    message_id = await queue(store)
    message = await finished(store, message_id, OutboxWorker(store, config))

    sent = fake.message(message_id)
    assert (sent.to, sent.body, sent.sender, sent.idempotency_key) == (TO, BODY, "ACME", message_id)
    assert fake.sends_of(message_id) == 1 and fake.lookup_calls == 0
    assert (message.provider_message_id, message.status) == (sent.id, Status.QUEUED)
    assert await outbound_steps(store, message_id) == [
        ("accepted", Status.QUEUED),
        ("sent_to_provider", Status.QUEUED),
    ]
    assert (await outbox_row(store, message_id))["body"] is None  # not kept once sent


# Each failure, then the provider answers normally. Sends: the calls that reached it.
# Looked up: the outcome was unknown, so the next attempt asked the provider first.
FAILURES: list[tuple[str, Behaviour, int, bool]] = [
    ("slow answer: read timeout after it took the message", Stall(3.0), 1, True),
    ("connection dropped after it took the message", Drop(), 1, True),
    ("500 after it took the message", Fail(500, record=True), 1, True),
    ("500 before it took the message: resent", Fail(503), 2, True),
    ("429 with Retry-After seconds", Throttle("1"), 2, False),
]


@pytest.mark.parametrize(
    ("behaviour", "sends", "looked_up"),
    [pytest.param(b, s, lk, id=name) for name, b, s, lk in FAILURES],
)
async def test_after_a_failure_the_message_is_sent_exactly_once(
    store, config, fake, behaviour, sends, looked_up
):
    fake.on_send(behaviour)
    message_id = await queue(store)
    message = await finished(store, message_id, OutboxWorker(store, config))

    assert len(fake.messages) == 1
    assert fake.sends_of(message_id) == sends
    assert (fake.lookup_calls > 0) == looked_up
    assert message.provider_message_id == fake.message(message_id).id
    assert message.status is Status.QUEUED
    assert ("sent_to_provider", Status.QUEUED) in await outbound_steps(store, message_id)


async def test_a_429_pauses_the_provider_until_its_retry_after_date(store, config, fake):
    retry_at = datetime.now(UTC) + timedelta(seconds=3)
    fake.on_send(Throttle(format_datetime(retry_at, usegmt=True)))
    message_id = await queue(store)
    await finished(store, message_id, OutboxWorker(store, config))

    first, second = fake.send_calls
    # A lower bound only: the date drops the fraction of a second (up to 1 s earlier),
    # and the first send came well within a second of choosing it.
    assert second.at - first.at >= 0.9
    assert len(fake.messages) == 1 and fake.lookup_calls == 0
    assert (await outbox_row(store, message_id))["in_doubt"] == 0


@pytest.mark.parametrize("retry_after", ["99999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
async def test_a_retry_after_of_centuries_waits_until_the_give_up_time(tmp_path, retry_after):
    provider = Canned(429, {"detail": "slow down"}, {"retry-after": retry_after})
    config, store = await canned_setup(tmp_path)
    try:
        message_id = await queue(store)
        async with running(OutboxWorker(store, config, transport=provider.transport)):
            await until(lambda: outbox_has(store, message_id, attempts=1), "an attempt")
            await until(lambda: outbox_has(store, message_id, state="pending"), "waiting")
        row = await outbox_row(store, message_id)
    finally:
        await store.close()
    give_up = timedelta(seconds=config.settings.outbox.give_up_seconds)
    assert from_text(row["next_attempt_at"]) == from_text(row["created_at"]) + give_up
    assert "429" in row["last_error"]
    assert [request.url.path for request in provider.requests] == ["/messages"]


async def test_connection_refused_is_retried_until_the_provider_is_back(store, config, fake):
    fake.refuse_connections()
    message_id = await queue(store)
    async with running(OutboxWorker(store, config)):

        async def three_attempts() -> bool:
            return (await outbox_row(store, message_id))["attempts"] >= 3

        await until(three_attempts, "3 attempts")
        row = await outbox_row(store, message_id)
        assert "ConnectError" in row["last_error"]
        assert row["in_doubt"] == 0  # it certainly never arrived
        fake.start()
        await until(lambda: outbox_has(store, message_id, state="done"), "sent")

    assert fake.sends_of(message_id) == 1 and len(fake.messages) == 1
    assert fake.lookup_calls == 0


async def test_a_4xx_rejection_makes_the_message_rejected_with_the_providers_error(tmp_path):
    refusal = {"code": "INVALID_NUMBER", "message": "the number is not reachable"}
    provider = Canned(400, refusal)
    config, store = await canned_setup(tmp_path)
    try:
        message_id = await queue(store)
        worker = OutboxWorker(store, config, transport=provider.transport)
        message = await finished(store, message_id, worker)
        events = await store.message_events(message_id)
    finally:
        await store.close()

    [sent] = provider.requests  # one send, never repeated
    assert (sent.method, sent.url.path, sent.headers["idempotency-key"]) == (
        "POST",
        "/messages",
        message_id,
    )
    assert (message.status, message.error_code, message.error_message) == (
        Status.REJECTED,
        "INVALID_NUMBER",
        "the number is not reachable",
    )
    rejected = [e for e in events if e.event_id.endswith(":rejected_by_provider")]
    assert [(e.status, e.error_code, e.error_message) for e in rejected] == [
        (Status.REJECTED, "INVALID_NUMBER", "the number is not reachable")
    ]


async def test_a_rate_limited_provider_still_sends_everything_once(tmp_path, fake):
    config = configure(tmp_path, fake, rate_per_second=20)
    store = open_store(config.store_url)
    await store.open()
    try:
        ids = [await queue(store, body=f"message {i}") for i in range(6)]
        async with running(OutboxWorker(store, config)):
            await until(lambda: all_done(store, ids), "sent")
    finally:
        await store.close()
    times = [call.at for call in fake.send_calls]
    assert [fake.sends_of(i) for i in ids] == [1] * 6
    # 20 per second: the six went out over at least 5 x 50 ms (a lower bound only).
    assert times[-1] - times[0] >= 0.2


# --------------------------------------------------------------------------- giving up


async def test_a_message_never_handed_over_fails_after_the_give_up_age(store, config, fake):
    fake.refuse_connections()
    message_id = await queue(store, now=datetime.now(UTC) - timedelta(days=2))
    message = await finished(store, message_id, OutboxWorker(store, config))

    assert (message.status, message.error_code) == (Status.FAILED, None)
    assert message.error_message is not None and "86400" in message.error_message
    assert ("given_up", Status.FAILED) in await outbound_steps(store, message_id)


async def test_a_message_for_a_provider_that_stopped_sending_fails_at_the_give_up_age(
    tmp_path, fake
):
    # Configured to send when it was accepted; the send keys are gone now.
    table = {"type": "standard", "secrets": [new_whsec()]}
    config = load(write_config(tmp_path, {"outbox": FAST}, {"default": table}))
    store = open_store(config.store_url)
    await store.open()
    try:
        almost_too_old = datetime.now(UTC) - timedelta(seconds=86400 - 1)
        message_id = await queue(store, now=almost_too_old)
        message = await finished(store, message_id, OutboxWorker(store, config))
    finally:
        await store.close()
    assert message.status is Status.FAILED
    assert message.error_message is not None
    assert "'default' is not configured to send" in message.error_message
    assert fake.send_calls == []


async def test_an_old_message_in_doubt_found_at_the_provider_is_sent_not_failed(
    store, config, fake
):
    message_id = await in_doubt_and_old(store)
    sent = fake.accept(message_id, TO, BODY)  # the dead worker's request had arrived
    message = await finished(store, message_id, OutboxWorker(store, config))

    assert (message.status, message.provider_message_id) == (Status.QUEUED, sent.id)
    assert fake.sends_of(message_id) == 0 and fake.lookup_calls == 1


@pytest.mark.parametrize("lookup", [None, Fail(500)], ids=["not found", "lookup fails"])
async def test_an_old_message_in_doubt_fails_when_the_lookup_does_not_find_it(
    store, config, fake, lookup
):
    if lookup is not None:
        fake.on_lookup(lookup)
    message_id = await in_doubt_and_old(store)
    message = await finished(store, message_id, OutboxWorker(store, config))

    assert message.status is Status.FAILED
    assert fake.sends_of(message_id) == 0 and fake.lookup_calls == 1


# --------------------------------------------------------------------------- several workers


async def test_two_workers_on_one_store_never_send_a_message_twice(tmp_path, fake, store_url):
    config = configure(tmp_path, fake, database_url=store_url)
    stores = [open_store(config.store_url) for _ in range(2)]
    for store in stores:
        await store.open()
    try:
        ids = [await queue(stores[0], body=f"message {i}") for i in range(40)]
        workers = [OutboxWorker(store, config) for store in stores]
        async with running(*workers):
            await until(lambda: all_done(stores[0], ids), "all sent")
    finally:
        for store in stores:
            await store.close()
    assert [fake.sends_of(i) for i in ids] == [1] * 40
    assert len(fake.messages) == 40


async def test_kill_9_between_send_and_record_neither_loses_nor_repeats_it(tmp_path, fake):
    # The provider takes the message and holds its answer; the worker is killed while it
    # waits (read timeout 2 s: it is still waiting), then started again.
    config = configure(tmp_path, fake, read_timeout_seconds=2.0, connect_timeout_seconds=0.2)
    store = open_store(config.store_url)
    await store.open()
    message_id = await queue(store)
    await store.close()
    fake.on_send(Stall(None))
    log = tmp_path / "worker.log"

    async with another_store(config.store_url) as store:  # reads beside the workers
        worker = start_worker(config.source, log)
        try:
            await asyncio.to_thread(fake.wait_for_sends, 1)
        finally:
            worker.kill()
            worker.wait()
        row = await outbox_row(store, message_id)
        assert row["state"] == "sending", log.read_text()  # sent, answer not recorded
        fake.release()

        worker = start_worker(config.source, log)
        try:
            await until(lambda: outbox_has(store, message_id, state="done"), "done")
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=WAIT) == 0, log.read_text()
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

        assert fake.sends_of(message_id) == 1 and len(fake.messages) == 1
        assert fake.lookup_calls == 1  # the restarted worker found it instead of resending
        message = await store.get_message(message_id)
        assert message is not None
        assert message.provider_message_id == fake.message(message_id).id
        assert ("sent_to_provider", Status.QUEUED) in await outbound_steps(store, message_id)


# --------------------------------------------------------------------------- end to end


async def test_send_api_to_provider_to_signed_report_gives_a_delivered_timeline(
    server_factory, fake, store_url
):
    server = server_factory(
        {"database_url": store_url, "outbox": {**FAST, "read_timeout_seconds": 10.0}},
        {"default": provider_table(fake)},
    )
    token = server.staff_token("shop", "sender")
    headers = {"Authorization": f"Bearer {token}"}

    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as api:

        async def send(key: str) -> str:
            answer = await api.post(
                "/v1/messages", json={"to": TO, "body": BODY}, headers={"Idempotency-Key": key}
            )
            assert answer.status_code == 202, answer.text
            return str(answer.json()["id"])

        async def message(message_id: str) -> dict[str, Any]:
            return dict((await api.get(f"/v1/messages/{message_id}")).json())

        async def answer_recorded(message_id: str) -> bool:
            return (await message(message_id))["provider_message_id"] is not None

        async def report(message_id: str) -> None:
            answer = await asyncio.to_thread(
                fake.report,
                message_id,
                "delivered",
                receiver_url=server.base_url,
                secret=server.secret(),
            )
            assert answer.status_code == 200, answer.text

        # The provider answers, then reports.
        first = await send("order-1")
        await until(lambda: any(m.reference == first for m in fake.messages), "sent")
        await until(lambda: answer_recorded(first), "the answer is recorded")
        await report(first)

        # The provider reports before its answer reaches us: the report waits as its own
        # record, and the two become one when the answer is recorded.
        fake.on_send(Stall(None))
        second = await send("order-2")
        await asyncio.to_thread(fake.wait_for_sends, 2)
        await report(second)
        fake.release()
        await until(lambda: answer_recorded(second), "the answer is recorded")

        for message_id in (first, second):
            record = await message(message_id)
            assert (record["status"], record["final"]) == ("delivered", True)
            assert record["provider_message_id"] == fake.message(message_id).id
            timeline = (await api.get(f"/v1/messages/{message_id}/events")).json()["items"]
            steps = {e["event_id"]: (e["source"], e["status"]) for e in timeline}
            reports = [e for e in timeline if e["source"] == "webhook"]
            assert steps[f"out:{message_id}:accepted"] == ("outbound", "queued")
            assert steps[f"out:{message_id}:sent_to_provider"] == ("outbound", "queued")
            assert [(e["status"], e["outcome"]) for e in reports] == [("delivered", "applied")]
            assert len(timeline) == 3
            same = await api.get(
                "/v1/messages", params={"provider_message_id": record["provider_message_id"]}
            )
            assert [m["id"] for m in same.json()["items"]] == [message_id]  # merged: one record

    assert [fake.sends_of(m) for m in (first, second)] == [1, 1]
    assert server.stop() == 0  # SIGTERM stops the worker cleanly with the server


async def test_32_concurrent_sends_with_one_key_reach_the_provider_once(server_factory, fake):
    generous = {"sender": {"per_second": 1000, "burst": 100}}  # not the rate limit's test
    server = server_factory(
        {"outbox": FAST, "send_rate_limits": generous}, {"default": provider_table(fake)}
    )
    headers = {"Authorization": f"Bearer {server.staff_token('shop', 'sender')}"}
    request = {"to": TO, "body": BODY}

    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as api:
        answers = await asyncio.gather(
            *(
                api.post("/v1/messages", json=request, headers={"Idempotency-Key": "checkout-7"})
                for _ in range(32)
            )
        )
        accepted = {answer.json()["id"] for answer in answers if answer.status_code == 202}
        in_use = [a for a in answers if a.status_code == 409]
        assert len(accepted) == 1 and len(accepted) + len(in_use) <= 32
        assert all(a.json()["code"] == "IDEMPOTENCY_KEY_IN_USE" for a in in_use)
        assert {a.status_code for a in answers} <= {202, 409}
        [message_id] = accepted
        await until(lambda: fake.sends_of(message_id) > 0, "the provider got the message")
        # The retries that came after the first commit replay its answer; none sends again.
        again = await api.post(
            "/v1/messages", json=request, headers={"Idempotency-Key": "checkout-7"}
        )
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["id"] == message_id

    await asyncio.sleep(0.5)  # several poll rounds: a second send would show up here
    assert len(fake.send_calls) == 1
    assert [m.reference for m in fake.messages] == [message_id]


def most_in_one_second(times: list[float]) -> int:
    """The most of ``times`` that fall in any one-second window [t, t + 1)."""
    return max(sum(start <= at < start + 1 for at in times) for start in times)


async def test_two_worker_processes_share_one_rate_per_second(tmp_path, fake):
    config = configure(tmp_path, fake, rate_per_second=5)
    store = open_store(config.store_url)
    await store.open()
    try:
        ids = [await queue(store, body=f"message {i}") for i in range(40)]
        log = tmp_path / "worker.log"
        workers = [start_worker(config.source, log) for _ in range(2)]

        async def all_sent() -> bool:
            return all([await outbox_has(store, i, state="done") for i in ids])

        try:
            await until(all_sent, "all sent", timeout=120)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait()
    finally:
        await store.close()
    assert [fake.sends_of(i) for i in ids] == [1] * 40
    # 5 per second for both together (one more for the jitter of the arrivals), where
    # each counting its own would let up to 10 through.
    assert most_in_one_second([call.at for call in fake.send_calls]) <= 6, log.read_text()
