"""``receiver backup`` of a live server under load, then a restore into a fresh one:
every report acknowledged before the backup started is in the copy (docs/operations.md,
"Backup and restore")."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import run_cli

from receiver.core.reports import Report
from receiver.core.status import Status
from receiver.records import RawRequest
from receiver.store.sqlite import SqliteStore
from receiver.testing import standard_report, standard_request

pytestmark = pytest.mark.sqlite_only("receiver backup copies the SQLite file")

POSTERS = 4


@dataclass(frozen=True)
class Acked:
    event_id: str
    data: dict[str, Any]
    at: float
    """time.monotonic() when the 200 arrived."""


async def _fill(db: Path, requests: int) -> None:
    """Some megabytes of history beside the running service, so that the copy takes
    several steps."""

    def old(n: int) -> tuple[RawRequest, list[Report]]:
        now = datetime.now(UTC)
        raw = RawRequest(path="/webhooks/default", body=b"x" * 2000, received_at=now)
        return raw, [Report(f"old-{n}", f"old-{n}", Status.DELIVERED, "delivered", now)]

    store = SqliteStore(db)
    await store.open()
    try:
        for start in range(0, requests, 100):
            batch = [old(n) for n in range(start, start + 100)]
            await asyncio.gather(*(store.ingest("default", *request) for request in batch))
    finally:
        await store.close()


def test_a_backup_under_load_restores_every_report_acknowledged_before_it(tmp_path, server_factory):
    server = server_factory()
    asyncio.run(_fill(server.db_path, 3000))
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
                    acked.append(Acked(f"e-{worker}-{n}", data, time.monotonic()))
                else:
                    refused.append(answer.status_code)

    posters = [threading.Thread(target=post, args=(w,)) for w in range(POSTERS)]
    for poster in posters:
        poster.start()
    try:
        time.sleep(1.0)
        started = time.monotonic()
        made = run_cli("backup", str(tmp_path / "copy.db"), "--config", str(server.config_path))
        finished = time.monotonic()
        time.sleep(0.3)
    finally:
        stop.set()
        for poster in posters:
            poster.join()

    assert made.returncode == 0, made.stderr
    assert refused == []
    before = [a for a in acked if a.at < started]
    during = [a for a in acked if started <= a.at < finished]
    assert before and during  # ingest went on while the copy was made

    # Restore as docs/operations.md says: stop, move the old files away, copy, start.
    fresh = server_factory()
    fresh.stop()
    for old in fresh.workdir.glob("receiver.db*"):
        old.rename(tmp_path / f"replaced-{old.name}")
    shutil.copy(tmp_path / "copy.db", fresh.db_path)
    fresh.start()

    # Every report acknowledged before the backup started is in the processed set of
    # the restored store: sent again (signed with this server's secret), each one is a
    # duplicate.
    with httpx.Client(base_url=fresh.base_url, timeout=10) as client:
        for ack in before:
            request = standard_request(fresh.secret(), ack.data, event_id=ack.event_id)
            again = client.post(request.path, content=request.body, headers=request.headers)
            assert again.status_code == 200
            assert again.json()["duplicates"] == 1, ack.event_id
    assert fresh.db_path.stat().st_size > 3000 * 2000
