"""``receiver serve --workers N`` (README "Scaling out"): N worker processes on one
address, each with its own store, all drained on SIGTERM. Real processes on loopback,
one real SQLite file: SQLite refuses N > 1 unless RECEIVER_SQLITE_WORKERS=1 (it measured
no faster there), which these tests set to run the workers."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import Server, free_port, run_cli, write_config

from receiver.serving import SQLITE_WORKERS_ENV
from receiver.testing import SignedRequest, standard_report, standard_request

WORKERS = 2
T0 = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)
MESSAGES = 60
CONNECTIONS = 16


@pytest.fixture
def workers_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """``receiver serve --workers 2`` on the suite's backend (SQLite unless
    ``RECEIVER_TEST_BACKEND=postgresql``), every worker started."""
    monkeypatch.setenv(SQLITE_WORKERS_ENV, "1")
    server = Server(tmp_path, write_config(tmp_path), workers=WORKERS).start()
    try:
        yield server
    finally:
        server.stop(signal.SIGKILL)


def reports(secret: str, tag: str) -> list[SignedRequest]:
    """``sent`` then ``delivered`` for each of MESSAGES messages, one event id each."""
    return [
        standard_request(
            secret,
            standard_report(f"{tag}-{n}", word, occurred_at=T0 + timedelta(seconds=step)),
            event_id=f"{tag}-{n}-{step}",
        )
        for n in range(MESSAGES)
        for step, word in enumerate(("sent", "delivered"))
    ]


def worker_pids(supervisor: int) -> list[int]:
    """The worker processes under the supervisor (not multiprocessing's resource
    tracker, which it starts too)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [
        int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def connections_by_worker(supervisor: int, port: int) -> dict[int, int]:
    """How many established connections to ``port`` each worker process holds."""
    established = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
            established.add(fields[9])  # the socket's inode
    held = {}
    for pid in worker_pids(supervisor):
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with_target = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
            if with_target:
                inodes.add(with_target[1])
        held[pid] = len(inodes & established)
    return held


async def client_on_every_worker(server: Server) -> httpx.AsyncClient:
    """A client holding CONNECTIONS keep-alive connections, some accepted by each
    worker. A burst of connections that arrives while every worker is idle can all go
    to one of them (libuv accepts everything queued at once; receiver.serving), so a
    burst that did is closed and made again."""
    assert server.process is not None
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    for _ in range(20):
        client = httpx.AsyncClient(base_url=server.base_url, limits=limits)
        await asyncio.gather(*(client.get("/healthz") for _ in range(CONNECTIONS)))
        if all(connections_by_worker(server.process.pid, server.port).values()):
            return client
        await client.aclose()
    raise AssertionError("20 bursts of connections in a row all went to one worker")


async def post_all(
    client: httpx.AsyncClient, requests: list[SignedRequest]
) -> list[httpx.Response]:
    """Post every request, CONNECTIONS at a time."""
    gate = asyncio.Semaphore(CONNECTIONS)

    async def post(request: SignedRequest) -> httpx.Response:
        async with gate:
            return await client.post(request.path, content=request.body, headers=request.headers)

    return await asyncio.gather(*(post(request) for request in requests))


async def test_both_workers_answer_and_every_report_is_stored_once(
    workers_server: Server,
) -> None:
    """Every report posted twice (a redelivery racing its original, across the workers),
    shuffled, 16 at a time over keep-alive connections that both workers accepted:
    each event applied once and counted delivered twice, each message delivered."""
    assert workers_server.process is not None
    supervisor = workers_server.process.pid
    assert len(worker_pids(supervisor)) == WORKERS
    requests = reports(workers_server.secret(), "both") * 2
    random.Random(11).shuffle(requests)
    client = await client_on_every_worker(workers_server)
    try:
        answers = await post_all(client, requests)
        held = connections_by_worker(supervisor, workers_server.port)
    finally:
        await client.aclose()
    assert [answer.status_code for answer in answers] == [200] * len(requests)
    assert sum(held.values()) > 0
    assert all(held.values()), f"a worker accepted none of the connections: {held}"
    totals: Counter[str] = Counter()
    for answer in answers:
        totals.update({key: answer.json()[key] for key in ("applied", "superseded", "duplicates")})
    assert totals["applied"] + totals["superseded"] == len(requests) // 2
    assert totals["duplicates"] == len(requests) // 2

    token = workers_server.staff_token("checker")
    with workers_server.api(token) as api:
        for n in range(MESSAGES):
            found = api.get("/v1/messages", params={"provider_message_id": f"both-{n}"}).json()
            [message] = found["items"]
            assert message["status"] == "delivered"
            events = api.get(f"/v1/messages/{message['id']}/events").json()["items"]
            assert sorted(event["event_id"] for event in events) == [f"both-{n}-0", f"both-{n}-1"]
            assert [event["deliveries"] for event in events] == [2, 2]


async def test_sigterm_drains_every_worker(workers_server: Server) -> None:
    """SIGTERM to the supervisor in the middle of a stream: it exits 0 once both workers
    have drained, and every report answered 200 is in the store (read by a fresh
    one-process server on the same file)."""
    assert workers_server.process is not None
    supervisor = workers_server.process
    workers = worker_pids(supervisor.pid)
    requests = reports(workers_server.secret(), "drain") * 3  # plenty left at the signal
    answered: list[SignedRequest] = []
    answered_some = asyncio.Event()

    async def post(client: httpx.AsyncClient, request: SignedRequest) -> None:
        try:
            answer = await client.post(request.path, content=request.body, headers=request.headers)
        except httpx.TransportError:
            return  # refused or cut once the workers stopped accepting: never a 200
        assert answer.status_code in (200, 503), answer.text
        if answer.status_code == 200:
            answered.append(request)
            if len(answered) >= 40:
                answered_some.set()

    async def stream(client: httpx.AsyncClient, share: list[SignedRequest]) -> None:
        for request in share:
            await post(client, request)

    async with httpx.AsyncClient(base_url=workers_server.base_url) as client:
        streams = [
            asyncio.create_task(stream(client, requests[i::CONNECTIONS]))
            for i in range(CONNECTIONS)
        ]
        await asyncio.wait_for(answered_some.wait(), 60)  # a safety limit only
        supervisor.send_signal(signal.SIGTERM)
        await asyncio.gather(*streams)
    assert workers_server.stop() == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived the supervisor"
    assert len(answered) < len(requests), "the stream ended before the signal"

    fresh = Server(workers_server.workdir, workers_server.config_path).start()
    try:
        with fresh.api(fresh.staff_token("after")) as api:
            stored = set()
            for n in range(MESSAGES):
                found = api.get("/v1/messages", params={"provider_message_id": f"drain-{n}"})
                for message in found.json()["items"]:
                    events = api.get(f"/v1/messages/{message['id']}/events").json()["items"]
                    stored.update(event["event_id"] for event in events)
        acknowledged = {request.headers["webhook-id"] for request in answered}
        assert acknowledged <= stored
    finally:
        fresh.stop()


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "", " "])
def test_a_bad_workers_value_is_refused_in_one_line(tmp_path: Path, value: str) -> None:
    result = run_cli("serve", "--workers", value, "--port", str(free_port()), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"receiver: --workers must be a whole number of at least 1, not {value!r}\n"
    )
    assert list(tmp_path.iterdir()) == []  # bad usage never writes a config


def test_sqlite_refuses_more_than_one_worker_in_one_line(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if key != SQLITE_WORKERS_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "receiver", "serve", "--workers", "2", "--port", str(free_port())],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("receiver: --workers above 1 does not pay on SQLite")
    assert line.endswith(f"set {SQLITE_WORKERS_ENV}=1 to run 2 anyway")
    assert list(tmp_path.iterdir()) == []


def test_serve_help_names_workers(tmp_path: Path) -> None:
    result = run_cli("serve", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "--workers N" in result.stdout
