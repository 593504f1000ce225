"""The reconciler (README "Missing reports") against fake provider status APIs on loopback.

Each fake answers in its provider's documented JSON (receiver.testing.fake_status). The
store is a real SQLite file; time is the reconciler's injected clock, moved past the
1 s report timeout instead of waited for, so nothing here sleeps for a timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import write_config

from receiver.config import Config, load
from receiver.core.reports import Report
from receiver.core.status import Status
from receiver.outbound.reconcile import Reconciler
from receiver.outbound.worker import OutboxWorker
from receiver.records import RawRequest, ReconcileWindow
from receiver.store import open_store
from receiver.store.sql import SqlStore
from receiver.testing.fake_server import Fail, Stall, Throttle
from receiver.testing.fake_status import (
    ERROR_CODES,
    LOOKUP_TYPES,
    WORDS,
    FakeStatusApi,
    provider_message_id,
)

TO = "+639171234567"
FAST = {"connect_timeout_seconds": 1, "read_timeout_seconds": 2}
TIMEOUT = 1
GIVE_UP = 30


class Clock:
    """The reconciler's clock: real time plus an offset a test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def configure(directory: Path, fake: FakeStatusApi, **keys: Any) -> Config:
    table = {
        **fake.provider_table(),
        "report_timeout_seconds": TIMEOUT,
        "report_give_up_seconds": GIVE_UP,
        "lookup_attempts": 3,
        **keys,
    }
    settings = {"outbox": FAST, "reconcile": {"interval_seconds": 1}}
    return load(write_config(directory, settings, {"p": table}))


@pytest.fixture(params=LOOKUP_TYPES)
def fake(request: pytest.FixtureRequest) -> Iterator[FakeStatusApi]:
    with FakeStatusApi(request.param) as api:
        yield api


@pytest.fixture
def standard_fake() -> Iterator[FakeStatusApi]:
    with FakeStatusApi("standard") as api:
        yield api


async def opened_store(config: Config) -> SqlStore:
    store = open_store(config.store_url)
    await store.open()
    return store


@pytest.fixture
async def rig(tmp_path: Path, fake: FakeStatusApi) -> AsyncIterator[Rig]:
    config = configure(tmp_path, fake)
    store = await opened_store(config)
    yield Rig(config, store, fake)
    await store.close()


class Rig:
    """A store, a fake status API and a reconciler with a clock of its own."""

    def __init__(self, config: Config, store: SqlStore, fake: FakeStatusApi) -> None:
        self.config = config
        self.store = store
        self.fake = fake
        self.clock = Clock()
        self.reconciler = self.new_reconciler(store)

    def new_reconciler(self, store: SqlStore) -> Reconciler:
        gateway = OutboxWorker(store, self.config)
        return Reconciler(store, self.config, gateway, clock=self.clock)

    async def sent(self) -> tuple[str, str]:
        """A message the provider reported ``sent`` (its last word so far): our id and
        the provider's id."""
        kind = self.fake.kind
        pmid = provider_message_id(kind, TO)
        now = datetime.now(UTC)
        report = Report(
            event_id=f"wh-{pmid}",
            provider_message_id=pmid,
            status=Status.SENT,
            provider_status=WORDS[kind]["pending"],
            occurred_at=now,
            to=TO,
        )
        raw = RawRequest(path="/webhooks/p", body=b"{}", received_at=now)
        await self.store.ingest("p", raw, [report])
        rows = await self.store._query(
            "SELECT id FROM messages WHERE provider_message_id = ?", (pmid,)
        )
        return rows[0]["id"], pmid

    async def run_pass(self, **window: Any) -> dict[str, int]:
        async with self.reconciler.client() as client:
            summary = await self.reconciler.run_pass(
                client, window=ReconcileWindow(**window) if window else ReconcileWindow()
            )
        return dict(summary.outcomes)

    async def status(self, message_id: str) -> tuple[Status | None, str | None]:
        message = await self.store.get_message(message_id)
        assert message is not None
        return message.status, message.error_code

    async def sources(self, message_id: str) -> list[tuple[str, str | None]]:
        events = await self.store.message_events(message_id)
        return [(event.source, event.status) for event in events]


# --------------------------------------------------------------------------- every type


async def test_an_overdue_message_is_looked_up_and_gets_the_providers_final_word(rig: Rig):
    delivered, delivered_id = await rig.sent()
    failed, failed_id = await rig.sent()
    fresh, _ = await rig.sent()
    rig.fake.know(delivered_id, "delivered", TO)
    rig.fake.know(failed_id, "undelivered", TO)

    assert await rig.run_pass() == {}  # nothing is overdue yet: no request at all
    assert rig.fake.lookup_calls == 0
    rig.clock.advance(TIMEOUT + 1)
    outcomes = await rig.run_pass()

    assert outcomes["final"] == 2
    assert (await rig.status(delivered))[0] is Status.DELIVERED
    kind = rig.fake.kind
    status, code = await rig.status(failed)
    assert status in (Status.UNDELIVERED, Status.FAILED)  # as the type's mapping says
    assert code == ERROR_CODES[kind]
    assert ("lookup", Status.DELIVERED) in await rig.sources(delivered)
    # The third is unknown to the provider: looked up, still overdue, never changed.
    assert rig.fake.lookups_of(await _pmid_of(rig, fresh)) in (0, 1)
    assert (await rig.status(fresh))[0] is Status.SENT


async def _pmid_of(rig: Rig, message_id: str) -> str:
    message = await rig.store.get_message(message_id)
    assert message is not None
    return str(message.provider_message_id)


async def test_a_lookup_that_keeps_failing_ends_unknown_and_a_later_report_corrects_it(
    rig: Rig,
):
    message_id, pmid = await rig.sent()
    rig.fake.on_lookup(*[Fail(503)] * 10)
    for _ in range(3):  # lookup_attempts, with backoff: each pass is moved past the wait
        rig.clock.advance(TIMEOUT * 4 + 1)
        assert await rig.run_pass() == {"failed": 1}
    rig.clock.advance(TIMEOUT * 4)
    assert await rig.run_pass() == {"waiting": 1}  # attempts spent: wait for the give-up
    rig.clock.advance(GIVE_UP)
    assert await rig.run_pass() == {"gave_up": 1}

    message = await rig.store.get_message(message_id)
    assert message is not None
    assert (message.status, message.error_code) == (Status.UNKNOWN, "NO_FINAL_REPORT")
    assert "HTTP 503" in (message.error_message or "")
    events = await rig.store.message_events(message_id)
    verdict = [e for e in events if e.source == "receiver"]
    assert [e.event_id for e in verdict] == [f"rcv:{message_id}:no_final_report"]
    assert await rig.run_pass() == {}  # unknown is an honest verdict: not overdue

    # The provider's final report, late, still corrects the verdict (unknown is not final).
    late = Report(f"late-{pmid}", pmid, Status.DELIVERED, "delivered", datetime.now(UTC))
    raw = RawRequest(path="/webhooks/p", body=b"{}", received_at=datetime.now(UTC))
    await rig.store.ingest("p", raw, [late])
    assert await rig.status(message_id) == (Status.DELIVERED, None)


# --------------------------------------------------------------------------- standard


@pytest.fixture
async def std(tmp_path: Path, standard_fake: FakeStatusApi) -> AsyncIterator[Rig]:
    config = configure(tmp_path, standard_fake)
    store = await opened_store(config)
    yield Rig(config, store, standard_fake)
    await store.close()


async def test_the_same_answer_twice_is_a_duplicate_and_a_later_webhook_still_merges(std: Rig):
    message_id, pmid = await std.sent()
    std.fake.know(pmid, "pending", TO)
    std.clock.advance(TIMEOUT + 1)
    assert await std.run_pass() == {"pending": 1}
    std.clock.advance(TIMEOUT * 2 + 1)
    assert await std.run_pass() == {"duplicate": 1}
    events = await std.store.message_events(message_id)
    lookups = [e for e in events if e.source == "lookup"]
    assert len(lookups) == 1 and lookups[0].deliveries == 2

    late = Report(f"late-{pmid}", pmid, Status.DELIVERED, "delivered", datetime.now(UTC))
    raw = RawRequest(path="/webhooks/p", body=b"{}", received_at=datetime.now(UTC))
    await std.store.ingest("p", raw, [late])
    assert await std.status(message_id) == (Status.DELIVERED, None)


async def test_two_processes_never_look_up_the_same_message_at_once(std: Rig):
    ids = [await std.sent() for _ in range(6)]
    for _, pmid in ids:
        std.fake.know(pmid, "delivered", TO)
    std.fake.on_lookup(*[Stall(0.2)] * 6)  # keeps each lookup in flight for a while
    other_store = await opened_store(std.config)  # its own connections and writer thread
    try:
        first, second = std.reconciler, std.new_reconciler(other_store)
        std.clock.advance(TIMEOUT + 1)
        async with first.client() as a, second.client() as b:
            one, two = await asyncio.gather(first.run_pass(a), second.run_pass(b))
    finally:
        await other_store.close()
    assert one.outcomes["final"] + two.outcomes["final"] == 6
    assert std.fake.most_at_once == 1
    assert all(std.fake.lookups_of(pmid) == 1 for _, pmid in ids)


async def test_a_429_pauses_the_providers_lookups(tmp_path: Path, standard_fake: FakeStatusApi):
    config = load(
        write_config(
            tmp_path,
            {"outbox": FAST, "reconcile": {"concurrency": 1}},
            {"p": {**standard_fake.provider_table(), "report_timeout_seconds": TIMEOUT}},
        )
    )
    store = await opened_store(config)
    try:
        rig = Rig(config, store, standard_fake)
        for _ in range(3):
            await rig.sent()
        standard_fake.on_lookup(Throttle("30"))
        rig.clock.advance(TIMEOUT + 1)
        assert await rig.run_pass() == {"paused": 3}
        assert standard_fake.lookup_calls == 1  # the other two never left
        rows = await store._query("SELECT next_at, attempts FROM lookups")
        assert len(rows) == 3
        assert all(row["attempts"] == 0 for row in rows)  # a pause counts no attempt
    finally:
        await store.close()


async def test_a_pass_by_hand_asks_again_whatever_the_backoff(std: Rig):
    message_id, pmid = await std.sent()
    std.clock.advance(TIMEOUT + 1)
    assert await std.run_pass() == {"not_found": 1}
    assert await std.run_pass() == {}  # backing off
    std.fake.know(pmid, "delivered", TO)
    assert await std.run_pass(due_only=False) == {"final": 1}
    assert await std.status(message_id) == (Status.DELIVERED, None)


async def test_lookup_true_without_credentials_is_refused_at_start(tmp_path: Path):
    from receiver.errors import ConfigError

    path = write_config(
        tmp_path, None, {"t": {"type": "telnyx", "insecure_no_signature": True, "lookup": True}}
    )
    with pytest.raises(ConfigError, match=r"providers\.t\.lookup.*api_key"):
        load(path)


def test_the_overdue_query_uses_the_partial_index(tmp_path: Path):
    import sqlite3

    from receiver.store.reconcile import overdue_list_sql
    from receiver.store.sqlite import _connect, migrate
    from receiver.store.tx import SQLITE

    path = tmp_path / "plan.db"
    conn = _connect(path)
    migrate(conn)
    now = datetime.now(UTC)
    window = ReconcileWindow(started=now)
    sql, params = overdue_list_sql(SQLITE, "p", now, window, 100, free_at=now.isoformat())
    plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    conn.close()
    assert "USING INDEX messages_awaiting_report" in plan
    assert "SCAN m" not in plan
    del sqlite3


async def test_metrics_count_overdue_lookups_and_recovered_reports(std: Rig):
    from receiver.services.metrics import Metrics

    metrics = Metrics()
    reconciler = Reconciler(
        std.store,
        std.config,
        OutboxWorker(std.store, std.config),
        metrics=metrics.reconcile,
        clock=std.clock,
    )
    recovered, recovered_id = await std.sent()
    await std.sent()  # the provider does not know it: looked up, still overdue
    std.fake.know(recovered_id, "delivered", TO)
    std.clock.advance(TIMEOUT + 1)
    async with reconciler.client() as client:
        await reconciler.run_pass(client)

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert sample("receiver_lookups_total", provider="p", outcome="final") == 1
    assert sample("receiver_lookups_total", provider="p", outcome="not_found") == 1
    assert sample("receiver_reports_recovered_total", provider="p") == 1
    assert sample("receiver_overdue_messages", provider="p") == 1
    assert (await std.status(recovered))[0] is Status.DELIVERED


def test_standard_looks_a_message_up_by_our_reference_until_it_knows_the_providers_id():
    import httpx

    from receiver.providers.base import Tracked
    from receiver.providers.standard import StandardConfig, StandardSender

    config = StandardConfig.model_validate(
        {
            "type": "standard",
            "insecure_no_signature": True,
            "api_base_url": "https://api.acme.example",
            "api_key": "k",
        }
    )
    sender = StandardSender(config)
    now = datetime.now(UTC)
    ours = Tracked("msg_01ABC", None, TO, now)
    request = sender.status_request(ours)
    assert str(request.url) == "https://api.acme.example/messages?reference=msg_01ABC"
    answer = httpx.Response(
        200,
        json={"items": [{"id": "prov-9", "reference": "msg_01ABC", "status": "expired",
                         "error_code": "EXPIRED", "occurred_at": "2026-11-23T09:59:58Z"}]},
    )  # fmt: skip
    report = sender.read_status_lookup(ours, answer, now)
    assert isinstance(report, Report)
    assert (report.provider_message_id, report.status, report.error_code) == (
        "prov-9",
        Status.EXPIRED,
        "EXPIRED",
    )
    assert report.message_reference == "msg_01ABC"  # files it under our message
    known = Tracked("msg_01ABC", "prov/9", TO, now)
    assert str(sender.status_request(known).url) == "https://api.acme.example/messages/prov%2F9"
    from receiver.providers.base import NoSuchMessage

    assert isinstance(sender.read_status_lookup(known, httpx.Response(404), now), NoSuchMessage)


@pytest.mark.parametrize(
    ("kind", "timeout", "give_up"),
    [("standard", 3600, 259200), ("twilio", 1800, 86400), ("jasmin", 7200, 259200)],
)
def test_each_type_has_its_own_report_timeout_defaults(kind: str, timeout: int, give_up: int):
    from receiver.providers import PROVIDER_TYPES

    model = PROVIDER_TYPES[kind].config_model
    config = model.model_validate({"type": kind, "insecure_no_signature": True})
    assert (config.report_timeout, config.report_give_up) == (timeout, give_up)


def test_a_give_up_shorter_than_the_timeout_is_refused(tmp_path: Path):
    from receiver.errors import ConfigError

    table = {"type": "standard", "insecure_no_signature": True}
    table |= {"report_timeout_seconds": 10, "report_give_up_seconds": 5}
    with pytest.raises(ConfigError, match="report_give_up_seconds"):
        load(write_config(tmp_path, None, {"p": table}))
