"""Several receiver processes on one PostgreSQL (issue 11, README "Scaling out"): real
``receiver serve`` and ``receiver worker`` processes on loopback, a database of their
own on the machine's server, and for the restart a PostgreSQL cluster of its own (so
restarting it cannot disturb the other tests running beside this one)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Server, new_whsec, queue_send, write_config
from pg import fresh_database
from processes import start_worker

from receiver.records import MessageFilter
from receiver.store import open_store
from receiver.testing import SignedRequest, standard_report, standard_request
from receiver.testing.fake_provider import FakeProvider
from receiver.testing.pytest_plugin import free_port

pytestmark = pytest.mark.long_running

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PG_BIN = Path("/usr/lib/postgresql/15/bin")

JOURNEYS = (
    ("sent", "buffered", "delivered"),
    ("sent", "undelivered", "delivered"),  # a failure that delivered still corrects
    ("sent", "delivered", "expired"),  # a late failure after delivered changes nothing
    ("buffered", "sent", "failed"),
)


def reports(secret: str, messages: int) -> list[SignedRequest]:
    """Three reports per message (``messages`` x 3 requests), each its own event."""
    return [
        standard_request(
            secret,
            standard_report(
                f"pm-{n}",
                word,
                occurred_at=T0 + timedelta(seconds=step),
                to=f"+6391712{n:05d}",
                error_code="E1" if word in ("undelivered", "failed", "expired") else None,
            ),
            event_id=f"ev-{n}-{step}",
        )
        for n in range(messages)
        for step, word in enumerate(JOURNEYS[n % len(JOURNEYS)])
    ]


def with_redeliveries(requests: list[SignedRequest], share: float, seed: int) -> list[Any]:
    """``requests`` plus a redelivery of ``share`` of them, shuffled."""
    rng = random.Random(seed)
    stream = requests + rng.sample(requests, int(len(requests) * share))
    rng.shuffle(stream)
    return stream


async def post_all(
    base_url: str, requests: list[SignedRequest], concurrency: int
) -> list[httpx.Response]:
    """Post every request, ``concurrency`` at a time; the answers in request order."""
    limit = asyncio.Semaphore(concurrency)
    # A connection idle for a second is not reused: httpx's default (5 s) is the
    # server's keep-alive timeout, and on a loaded machine a request sent on a pooled
    # connection just as the server closed it was reset (httpx.ReadError; seen once in
    # a full run, as in tests/feed/test_feed_e2e.py).
    limits = httpx.Limits(keepalive_expiry=1.0)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:

        async def post(request: SignedRequest) -> httpx.Response:
            async with limit:
                return await client.post(
                    request.path, content=request.body, headers=dict(request.headers)
                )

        return list(await asyncio.gather(*(post(r) for r in requests)))


async def final_records(url: str, messages: int) -> dict[str, dict[str, Any]]:
    """Every message's record (without our own ids and clock) and timeline, read through
    the Store API."""
    store = open_store(url)
    await store.open(ingest=False)
    try:
        records = {}
        for n in range(messages):
            found = await store.find_messages(
                MessageFilter(provider_message_id=f"pm-{n}"), limit=2, after=None
            )
            assert len(found) == 1, f"pm-{n}: {len(found)} messages"
            record = asdict(found[0])
            for ours in ("id", "created_at", "updated_at"):
                del record[ours]
            events = await store.message_events(found[0].id)
            # Not an event's outcome: whether a report was applied or superseded when it
            # came depends on what had come before it (the record it left does not).
            record["events"] = sorted(
                (e.event_id, e.status, e.deliveries, e.error_code) for e in events
            )
            records[f"pm-{n}"] = record
        return records
    finally:
        await store.close()


def config_on(directory: Path, database_url: str, secret: str) -> Path:
    providers = {"default": {"type": "standard", "secrets": [secret]}}
    return write_config(directory, {"database_url": database_url}, providers=providers)


@pytest.fixture
def postgres_database() -> Iterator[str]:
    with fresh_database("receiver_processes") as url:
        yield url


async def test_three_processes_converge_on_the_single_process_result(
    tmp_path: Path, postgres_database: str
) -> None:
    """3,000 reports and 20 % redeliveries, shuffled, posted across three ``serve``
    processes on one PostgreSQL at once: every message's record equals what one process
    on SQLite makes of the same reports, each event is in the processed set once, and
    its ``deliveries`` count every copy that arrived."""
    secret = new_whsec()
    requests = reports(secret, 1000)
    stream = with_redeliveries(requests, 0.2, seed=11)
    copies: dict[str, int] = {}
    for request in stream:
        event_id = dict(request.headers)["webhook-id"]
        copies[event_id] = copies.get(event_id, 0) + 1

    servers = []
    try:
        for n in range(3):
            workdir = tmp_path / f"pg{n}"
            workdir.mkdir()
            servers.append(Server(workdir, config_on(workdir, postgres_database, secret)).start())
        answers = await asyncio.gather(
            *(post_all(s.base_url, stream[i::3], 16) for i, s in enumerate(servers))
        )
    finally:
        for server in servers:
            server.stop()
    assert {a.status_code for batch in answers for a in batch} == {200}

    single_dir = tmp_path / "single"
    single_dir.mkdir()
    single = Server(single_dir, config_on(single_dir, "sqlite:///receiver.db", secret)).start()
    try:
        assert {a.status_code for a in await post_all(single.base_url, stream, 16)} == {200}
    finally:
        single.stop()

    on_postgres = await final_records(postgres_database, 1000)
    on_sqlite = await final_records(f"sqlite:///{single_dir / 'receiver.db'}", 1000)
    assert on_postgres == on_sqlite
    delivered = {
        event_id: deliveries
        for record in on_postgres.values()
        for event_id, _, deliveries, _ in record["events"]
    }
    assert delivered == copies  # every event once, every copy counted
    assert sum(delivered.values()) == len(stream)


# --------------------------------------------------------------------------- restart


class PrivateCluster:
    """A PostgreSQL cluster of this test's own (initdb, pg_ctl), on a free port."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="receiver-pg-"))
        shutil.chown(self.directory, "postgres", "postgres")
        self.data = self.directory / "data"
        self.port = free_port()

    def _pg(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> PrivateCluster:
        self._pg(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self._ctl("start")
        return self

    def _ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory}"
        log = str(self.directory / "postgres.log")
        pg_ctl = str(PG_BIN / "pg_ctl")
        self._pg(pg_ctl, action, "-D", str(self.data), "-o", options, "-l", log, "-w", *extra)

    def restart(self) -> None:
        """Stop (fast: every session ended) and start again."""
        self._ctl("restart", "-m", "fast")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("stop", "-m", "immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    private = PrivateCluster().start()
    try:
        yield private
    finally:
        private.stop()


async def test_a_postgresql_restart_mid_stream_loses_no_acknowledged_report(
    tmp_path: Path, cluster: PrivateCluster
) -> None:
    """PostgreSQL restarts while reports stream in: a request in flight is answered 503
    with Retry-After (the provider retries), every 200 is in the store afterwards, and
    the service recovers by itself (its pool reconnects; /readyz is 200 again)."""
    secret = new_whsec()
    server = Server(tmp_path, config_on(tmp_path, cluster.url(), secret)).start()
    requests = reports(secret, 400)
    answered: list[tuple[SignedRequest, httpx.Response]] = []
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:

            async def stream(part: list[SignedRequest]) -> None:
                for request in part:
                    answer = await client.post(
                        request.path, content=request.body, headers=dict(request.headers)
                    )
                    answered.append((request, answer))

            posting = asyncio.gather(*(stream(requests[i::8]) for i in range(8)))
            while len(answered) < len(requests) // 3:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(cluster.restart)
            await posting
            refused = [request for request, answer in answered if answer.status_code != 200]
            assert all(
                answer.status_code == 503 and "retry-after" in answer.headers
                for _, answer in answered
                if answer.status_code != 200
            )
            # The provider's retries, until the service takes them (it must recover).
            for _ in range(100):
                if not refused:
                    break
                retried = await post_all(server.base_url, refused, 8)
                refused = [r for r, a in zip(refused, retried, strict=True) if a.status_code != 200]
                await asyncio.sleep(0.2)
            assert not refused, f"{len(refused)} reports still refused after the restart"
            assert (await client.get("/readyz")).status_code == 200
    finally:
        server.stop()
    stored = await final_records(cluster.url(), 400)
    stored_events = {e[0] for record in stored.values() for e in record["events"]}
    assert stored_events == {dict(r.headers)["webhook-id"] for r in requests}


# --------------------------------------------------------------------------- workers


async def until_logged(log: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    """Wait (a safety limit of 60 s) until ``log`` holds ``text`` or ``process`` ended."""
    for _ in range(600):
        if text in log.read_text(errors="replace") or process.poll() is not None:
            return
        await asyncio.sleep(0.1)


async def test_two_worker_processes_send_every_queued_message_exactly_once(
    tmp_path: Path, postgres_database: str
) -> None:
    """Two ``receiver worker`` processes on one PostgreSQL and a fake provider: each of
    60 queued messages reaches the provider once (claims skip each other's rows)."""
    with FakeProvider() as fake:
        provider = {"type": "standard", "secrets": [new_whsec()], **fake.config_keys()}
        config = write_config(
            tmp_path,
            {"database_url": postgres_database, "outbox": {"poll_seconds": 0.05}},
            providers={"default": provider},
        )
        store = open_store(postgres_database)
        await store.open()
        try:
            ids = [
                await queue_send(store, "default", "+639171234567", f"message {n}")
                for n in range(60)
            ]
        finally:
            await store.close()
        workers = [start_worker(config, tmp_path / f"worker{n}.log") for n in range(2)]
        try:
            for _ in range(600):  # a safety limit: each poll is 0.1 s
                if len(fake.messages) >= len(ids):
                    break
                await asyncio.sleep(0.1)
        finally:
            for n, worker in enumerate(workers):
                # A worker still starting has no SIGTERM handler yet: wait for its line.
                await until_logged(tmp_path / f"worker{n}.log", "sending from", worker)
                worker.send_signal(signal.SIGTERM)  # in-flight sends finish first
            for worker in workers:
                assert worker.wait(timeout=60) == 0
        assert [fake.sends_of(message_id) for message_id in ids] == [1] * len(ids)
        assert len(fake.messages) == len(ids)
