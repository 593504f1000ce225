"""The SQLite files on their filesystem (receiver.store.files), in process: the WAL
watch and metric, and the readiness probe that commits."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from receiver.core.reports import Report
from receiver.core.status import parse_status
from receiver.records import RawRequest
from receiver.store.files import WAL_KEEP_BYTES, WalWatch, wal_path
from receiver.store.sqlite import SqliteStore

WARN_BYTES = 256 * 1024


def raw(body: bytes) -> RawRequest:
    return RawRequest(path="/webhooks/acme", body=body, received_at=datetime.now(UTC))


def report(event_id: str) -> Report:
    return Report(
        event_id=event_id,
        provider_message_id=event_id,
        status=parse_status("delivered"),
        provider_status="delivered",
        occurred_at=datetime(2026, 11, 23, tzinfo=UTC),
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    path = tmp_path / "receiver.db"
    store = SqliteStore(path, wal_watch=WalWatch(path, warn_bytes=WARN_BYTES, every_seconds=0))
    await store.open()
    yield store
    await store.close()


async def ingest_until_wal_exceeds(store: SqliteStore, size: int, prefix: str) -> None:
    for i in range(10_000):
        await store.ingest("acme", raw(os.urandom(16_000)), [report(f"{prefix}-{i}")])
        if store.wal_bytes() > size:
            return
    raise AssertionError("the WAL never grew")


async def test_a_wal_that_cannot_be_checkpointed_is_warned_about(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    with contextlib.closing(sqlite3.connect(store.path, isolation_level=None)) as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM events").fetchone()  # holds an old snapshot
        with caplog.at_level(logging.WARNING, logger="receiver.store"):
            await ingest_until_wal_exceeds(store, 2 * WARN_BYTES, "held")
        reader.execute("COMMIT")
    warnings = [r.getMessage() for r in caplog.records if "WAL" in r.getMessage()]
    assert warnings, "no warning while the WAL grew"
    assert all("checkpoint could copy only" in w for w in warnings)
    assert store.wal_bytes() == os.stat(wal_path(store.path)).st_size > 2 * WARN_BYTES


async def test_a_wal_that_checkpoints_is_not_warned_about_and_shrinks_again(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    with contextlib.closing(sqlite3.connect(store.path, isolation_level=None)) as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM events").fetchone()
        await ingest_until_wal_exceeds(store, WAL_KEEP_BYTES + 1024 * 1024, "big")
        reader.execute("COMMIT")
    grown = store.wal_bytes()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="receiver.store"):
        for i in range(3):  # the checkpoint finishes, the WAL restarts and is cut back
            await store.ingest("acme", raw(b"{}"), [report(f"after-{i}")])
    assert not [r for r in caplog.records if "WAL" in r.getMessage()]
    assert store.wal_bytes() <= WAL_KEEP_BYTES < grown


async def test_readiness_commits_a_probe_unless_a_commit_just_happened(tmp_path: Path) -> None:
    commits: list[int] = []
    store = SqliteStore(tmp_path / "r.db", on_commit=lambda reports, _: commits.append(reports))
    await store.open()
    try:
        assert commits == []
        await store.ping()
        assert commits == [0], "readiness proved nothing by a commit of its own"
        await store.ping()
        await store.ping()
        assert commits == [0], "a fresh commit should spare the next probes"
        await store.ingest("acme", raw(b"{}"), [report("fresh")])
        assert commits == [0, 1]
    finally:
        await store.close()
