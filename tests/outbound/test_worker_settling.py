"""How the outbox worker settles a send in doubt without a lookup, keeps a session with
a provider that logs in, and respects a provider's rate window: the mechanisms behind
the seed providers (FutureSMS, Txtly, SendComms, RelayOS, Smstools), tested here with
a small provider of our own over real HTTP on loopback.

The fake API below is what those providers document: ``POST /login`` gives a token
that may expire (401 until a new login), ``POST /send`` takes an ``Idempotency-Key``
and answers a repeated key with the original message (a *replay*), and every answer
carries ``X-RateLimit-Remaining``/``-Reset``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx
import pytest
from conftest import queue_send

from receiver.config import Config, Settings
from receiver.core.reports import Report
from receiver.core.status import Status
from receiver.outbound.worker import OutboxWorker
from receiver.providers.base import (
    JSON,
    Accepted,
    InboundRequest,
    Provider,
    ProviderConfig,
    Rejected,
    Sender,
)
from receiver.records import OutboxItem
from receiver.store import open_store
from receiver.store.sql import SqlStore
from receiver.testing.fake_server import Answer, Drop, FakeRequest, FakeServer

FAST = {
    "connect_timeout_seconds": 0.5,
    "read_timeout_seconds": 0.5,
    "poll_seconds": 0.05,
    "backoff_seconds": 0.05,
    "backoff_max_seconds": 0.2,
}
WAIT = 20.0


# --------------------------------------------------------------------------- the fake API


@dataclass(frozen=True)
class Call:
    path: str
    key: str | None
    at: float
    """``time.time()`` on arrival."""


class KeyedApi(FakeServer):
    """Logs in, sends under an Idempotency-Key (a repeat is answered with the original),
    and reports its rate window; ``window_left`` sets what the next answers say is left."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.messages: dict[str, str] = {}  # idempotency key -> message id
        self.window_left: int | None = None
        self.window_reset = 0
        self._token: str | None = None
        self._tokens = itertools.count(1)

    def expire_token(self) -> None:
        with self.lock:
            self._token = None

    def calls_to(self, path: str) -> list[Call]:
        with self.lock:
            return [call for call in self.calls if call.path == path]

    async def answer(self, request: FakeRequest) -> Answer | None:
        with self.lock:
            self.calls.append(
                Call(request.path, request.headers.get("idempotency-key"), time.time())
            )
            self.lock.notify_all()
            headers = {}
            if self.window_left is not None:
                headers = {
                    "x-ratelimit-remaining": str(self.window_left),
                    "x-ratelimit-reset": str(self.window_reset),
                }
            if request.path == "/login":
                self._token = f"token-{next(self._tokens)}"
                return 200, headers, {"token": self._token}
            if (
                self._token is None
                or request.headers.get("authorization") != f"Bearer {self._token}"
            ):
                return 401, headers, {"error": "token expired"}
            key = request.headers["idempotency-key"]
            behaviour = self.next_behaviour("send")
            message_id = self.messages.setdefault(key, f"km-{len(self.messages) + 1}")
        if isinstance(behaviour, Drop):
            return None
        return 200, headers, {"id": message_id}


# --------------------------------------------------------------------------- our provider


class KeyedConfig(ProviderConfig):
    type: Literal["keyed"]
    send_requires: ClassVar[tuple[str, ...]] = ("api_base_url", "api_key")


class KeyedSender(Sender):
    def __init__(self, base_url: str, lifetime: timedelta | None) -> None:
        self.idempotency_lifetime = lifetime  # type: ignore[misc]  # a class default
        self._base = base_url
        self.token: str | None = None
        self.logins = 0

    def auth_request(self, now: datetime) -> httpx.Request | None:
        return None if self.token else httpx.Request("POST", f"{self._base}/login")

    def read_auth(self, response: httpx.Response, now: datetime) -> None:
        if response.status_code != 200:
            raise ValueError("login refused")
        self.token = response.json()["token"]
        self.logins += 1

    def unauthorized(self, request: httpx.Request) -> bool:
        if request.headers.get("authorization") == f"Bearer {self.token}":
            self.token = None
        return True

    def send_request(self, item: OutboxItem) -> httpx.Request:
        headers = {"authorization": f"Bearer {self.token}", "idempotency-key": item.message_id}
        return httpx.Request("POST", f"{self._base}/send", headers=headers, json={"to": item.to})

    def lookup_request(self, item: OutboxItem) -> httpx.Request | None:
        return None

    def read_accepted(self, response: httpx.Response) -> Accepted:
        return Accepted(response.json()["id"], "queued")

    def read_rejection(self, response: httpx.Response) -> Rejected:
        return Rejected(None, response.text)

    def read_found(self, item: OutboxItem, response: httpx.Response) -> Accepted | None:
        raise AssertionError("this provider has no lookup")


class KeyedProvider(Provider):
    kind: ClassVar[str] = "keyed"
    config_model: ClassVar[type[ProviderConfig]] = KeyedConfig
    media_types: ClassVar[frozenset[str]] = frozenset({JSON})

    def __init__(self, name: str, config: ProviderConfig, sender: KeyedSender) -> None:
        super().__init__(name, config)
        self.the_sender = sender

    def verify(self, request: InboundRequest, now: float) -> None:
        raise AssertionError("no reports in these tests")

    def parse(self, request: InboundRequest) -> list[Report]:
        raise AssertionError("no reports in these tests")

    def sender(self, public_base_url: str | None = None) -> Sender | None:
        return self.the_sender


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def api() -> Iterator[KeyedApi]:
    with KeyedApi() as server:
        yield server


@asynccontextmanager
async def worker_for(
    tmp_path: Path, sender: KeyedSender, **outbox: Any
) -> AsyncIterator[tuple[SqlStore, OutboxWorker]]:
    config_model = KeyedConfig(
        type="keyed", secrets=["unused"], api_base_url="http://x", api_key="k"
    )
    settings = Settings(session_secret="s" * 40, outbox={**FAST, **outbox})
    provider = KeyedProvider("keyed", config_model, sender)
    config = Config(
        source=tmp_path / "receiver.toml", settings=settings, providers={"keyed": provider}
    )
    store = open_store(f"sqlite:///{tmp_path / 'receiver.db'}")
    await store.open()
    worker = OutboxWorker(store, config)
    task = asyncio.create_task(worker.run())
    try:
        yield store, worker
    finally:
        worker.stop()
        await task
        await store.close()


async def queue(store: SqlStore, now: datetime | None = None) -> str:
    return await queue_send(store, "keyed", "+639171234567", "Your code is 482913", now=now)


async def until_status(store: SqlStore, message_id: str, wanted: set[Status]) -> Status:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        message = await store.get_message(message_id)
        if message is not None and message.status in wanted:
            return message.status
        await asyncio.sleep(0.02)
    raise AssertionError(f"{message_id} never reached {wanted}")


async def until_sent(store: SqlStore, message_id: str) -> str | None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        events = await store.message_events(message_id)
        if any(event.event_id.endswith(":sent_to_provider") for event in events):
            message = await store.get_message(message_id)
            assert message is not None
            return message.provider_message_id
        await asyncio.sleep(0.02)
    raise AssertionError(f"{message_id} was never handed over")


# --------------------------------------------------------------------------- tests


async def test_an_attempt_in_doubt_is_settled_by_resending_under_the_same_key(api, tmp_path):
    sender = KeyedSender(api.base_url, timedelta(hours=24))
    api.on_send(Drop())  # takes the message, then the answer is lost: in doubt
    async with worker_for(tmp_path, sender) as (store, _):
        message_id = await queue(store)
        provider_id = await until_sent(store, message_id)

    sends = api.calls_to("/send")
    assert [call.key for call in sends] == [message_id, message_id]
    assert api.messages == {message_id: provider_id}  # one message at the provider


async def test_without_a_lookup_or_a_key_an_attempt_in_doubt_is_held(api, tmp_path):
    sender = KeyedSender(api.base_url, None)
    api.on_send(Drop())
    async with worker_for(tmp_path, sender) as (store, _):
        message_id = await queue(store)
        await until_status(store, message_id, {Status.UNKNOWN})
        [held] = await store.held_outbox()
        message = await store.get_message(message_id)

    assert held.message_id == message_id
    assert "neither look a message up" in (held.reason or "")
    assert message is not None and message.error_code == "SEND_IN_DOUBT"
    assert len(api.calls_to("/send")) == 1  # never resent blindly


async def test_past_the_providers_key_lifetime_an_attempt_in_doubt_is_held(api, tmp_path):
    # The provider keeps keys for 2 hours; our first attempt, by a worker that then died,
    # was 90 minutes ago: inside the key's last hour, a resend might not be recognised.
    sender = KeyedSender(api.base_url, timedelta(hours=2))
    store = open_store(f"sqlite:///{tmp_path / 'receiver.db'}")
    await store.open()
    try:
        long_ago = datetime.now(UTC) - timedelta(minutes=90)
        message_id = await queue(store, now=long_ago)
        assert await store.claim_outbox("wkr_died", long_ago, lease_seconds=1, limit=1)
    finally:
        await store.close()

    async with worker_for(tmp_path, sender) as (store, _):
        await until_status(store, message_id, {Status.UNKNOWN})
        [held] = await store.held_outbox()

    assert "forgets our idempotency key" in (held.reason or "")
    assert api.calls_to("/send") == []


async def test_a_401_renews_the_session_once_and_repeats_the_request(api, tmp_path):
    sender = KeyedSender(api.base_url, timedelta(hours=24))
    async with worker_for(tmp_path, sender) as (store, _):
        first = await queue(store)
        await until_sent(store, first)
        api.expire_token()  # the provider rotated it: the token in hand is refused
        second = await queue(store)
        await until_sent(store, second)

    assert sender.logins == 2
    assert [call.path for call in api.calls] == ["/login", "/send", "/send", "/login", "/send"]
    assert len(api.messages) == 2


async def test_concurrent_sends_share_one_login(api, tmp_path):
    sender = KeyedSender(api.base_url, timedelta(hours=24))
    async with worker_for(tmp_path, sender) as (store, _):
        message_ids = [await queue(store) for _ in range(8)]
        for message_id in message_ids:
            await until_sent(store, message_id)

    assert len(api.calls_to("/login")) == 1
    assert len(api.messages) == 8


async def test_a_used_up_rate_window_holds_the_next_request_until_it_resets(api, tmp_path):
    sender = KeyedSender(api.base_url, timedelta(hours=24))
    async with worker_for(tmp_path, sender) as (store, _):
        await until_sent(store, await queue(store))
        reset_at = int(time.time()) + 2  # a Unix time, as Txtly and SendComms send it
        api.window_left, api.window_reset = 0, reset_at  # the next answer says: none left
        await until_sent(store, await queue(store))
        await until_sent(store, await queue(store))

    *_, last = api.calls_to("/send")
    assert last.at >= reset_at  # it waited for the window, and no 429 was needed
    assert len(api.messages) == 3
