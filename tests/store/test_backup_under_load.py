"""``receiver backup`` of a live server under load, then a restore into a fresh one:
every report acknowledged before the backup started is in the copy (docs/operations.md,
"Backup and restore")."""

from __future__ import annotations

import asyncio
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from conftest import Server, run_cli, write_config

from receiver.core.reports import Report
from receiver.core.status import Status
from receiver.store.base import RawRequest
from receiver.store.sqlite import SqliteStore
from receiver.testing import standard_report, standard_request
from receiver.testing.base import SignedRequest

POSTERS = 4


@dataclass(frozen=True)
class Acked:
    request: SignedRequest
    at: float
    """time.monotonic() when the 200 arrived."""


async def _fill(db: Path, requests: int) -> None:
    """Some megabytes of history, so that the copy takes several steps."""
    store = SqliteStore(db)
    await store.open()
    try:
        for n in range(requests):
            report = Report(
                f"old-{n}", f"old-{n}", Status.DELIVERED, "delivered", datetime.now(UTC)
            )
            raw = RawRequest("POST", "/webhooks/default", {}, b"x" * 2000, datetime.now(UTC))
            await store.ingest("default", raw, [report])
    finally:
        await store.close()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop(signal.SIGKILL)


def test_a_backup_under_load_restores_every_report_acknowledged_before_it(tmp_path, servers):
    live = tmp_path / "live"
    live.mkdir()
    config = write_config(live)
    asyncio.run(_fill(live / "receiver.db", 3000))
    server = Server(live, config)
    servers.append(server)
    server.start()
    secret = server.secret()
    acked: list[Acked] = []
    refused: list[int] = []
    stop = threading.Event()

    def post(worker: int) -> None:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            n = 0
            while not stop.is_set():
                n += 1
                data = standard_report(f"p-{worker}-{n}", "delivered", to="+639171234567")
                request = standard_request(secret, data, event_id=f"e-{worker}-{n}")
                answer = client.post(request.path, content=request.body, headers=request.headers)
                if answer.status_code == 200:
                    acked.append(Acked(request, time.monotonic()))
                else:
                    refused.append(answer.status_code)

    posters = [threading.Thread(target=post, args=(w,)) for w in range(POSTERS)]
    for poster in posters:
        poster.start()
    try:
        time.sleep(1.0)
        started = time.monotonic()
        made = run_cli("backup", str(tmp_path / "copy.db"), "--config", str(config))
        finished = time.monotonic()
        time.sleep(0.3)
    finally:
        stop.set()
        for poster in posters:
            poster.join()

    assert made.returncode == 0, made.stderr
    assert refused == []
    before = [a.request for a in acked if a.at < started]
    during = [a for a in acked if started <= a.at < finished]
    assert before and during  # ingest went on while the copy was made

    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(config, restored / "receiver.toml")
    shutil.copy(tmp_path / "copy.db", restored / "receiver.db")
    fresh = Server(restored, restored / "receiver.toml")
    servers.append(fresh)
    fresh.start()

    # Every report acknowledged before the backup started is in the processed set of
    # the restored store: sent again, each one is a duplicate.
    with httpx.Client(base_url=fresh.base_url, timeout=10) as client:
        for request in before:
            again = client.post(request.path, content=request.body, headers=request.headers)
            assert again.status_code == 200
            assert again.json()["duplicates"] == 1, request.headers["webhook-id"]
    assert (restored / "receiver.db").stat().st_size > 3000 * 2000
