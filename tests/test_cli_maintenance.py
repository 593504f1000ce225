"""``receiver prune``, ``erase`` and ``backup`` as operators run them: real subprocesses,
real SQLite files, and a real ``receiver serve`` beside them."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Server, run_cli, stored_rows, write_config

from receiver.config import load
from receiver.errors import ConfigError
from receiver.providers.base import InboundRequest
from receiver.records import RawRequest
from receiver.store import open_store
from receiver.store.base import migrations
from receiver.store.tx import SQLITE
from receiver.testing import standard_report, standard_request
from receiver.testing.base import SignedRequest

pytestmark = pytest.mark.long_running

NUMBER = "+639171234567"
DAY = timedelta(days=1)
RETAIN = {"raw_requests_days": 7, "messages_days": 30}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECEIVER_CONFIG", raising=False)
    monkeypatch.delenv("RECEIVER_DATABASE_URL", raising=False)


def folder_with_config(tmp_path: Path, retention: dict[str, Any] | None = None) -> Path:
    folder = tmp_path / "svc"
    folder.mkdir()
    return write_config(folder, {"retention": retention} if retention else None)


def cli(config: Path, *args: str) -> Any:
    return run_cli(*args, "--config", str(config), cwd=config.parent)


def signed(
    config: Path, message_id: str, status: str, event_id: str, **fields: Any
) -> SignedRequest:
    secret = load(config).providers["default"].config.secrets[0]
    return standard_request(
        secret, standard_report(message_id, status, **fields), event_id=event_id
    )


def seed(config: Path, request: SignedRequest, received_at: datetime) -> None:
    """Store ``request`` as if the service had received it at ``received_at``: parsed by
    the real provider, ingested through the real store."""

    async def ingest() -> None:
        loaded = load(config)
        reports = loaded.providers["default"].parse(
            InboundRequest.captured(request, "http://127.0.0.1", received_at)
        )
        store = open_store(loaded.store_url)
        await store.open()
        try:
            raw = RawRequest(
                path=request.path,
                body=request.body,
                headers=request.headers,
                received_at=received_at,
            )
            await store.ingest("default", raw, reports)
        finally:
            await store.close()

    asyncio.run(ingest())


def rows(store: Path | Server, sql: str) -> list[tuple[Any, ...]]:
    """The rows ``sql`` reads from the store of a config file or a server, as tuples."""
    return [tuple(row.values()) for row in stored_rows(store, sql)]


def file_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """The rows ``sql`` reads from the SQLite file ``db`` (a backup)."""
    with sqlite3.connect(db) as conn:
        found = conn.execute(sql).fetchall()
    conn.close()
    return found


def dump(store: Path) -> dict[str, list[tuple[Any, ...]]]:
    tables = ("messages", "events", "raw_requests", "outbox", "idempotency_keys")
    return {t: sorted(rows(store, f"SELECT * FROM {t}"), key=repr) for t in tables}


# --------------------------------------------------------------------------- prune


def test_prune_dry_run_counts_and_changes_nothing_then_prune_deletes(tmp_path):
    config = folder_with_config(tmp_path, RETAIN)
    now = datetime.now(UTC)
    seed(config, signed(config, "p-1", "delivered", "evt-1"), now - 10 * DAY)
    seed(config, signed(config, "p-2", "delivered", "evt-2"), now - 40 * DAY)
    seed(config, signed(config, "p-3", "delivered", "evt-3"), now - DAY)
    before = dump(config)

    dry = cli(config, "prune", "--dry-run")

    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0] == (
        "would prune 2 raw requests, 1 message (1 event, 0 outbox rows, 0 Idempotency-Key answers)"
    )
    assert lines[1].startswith("cut-offs: raw requests received before ")
    assert dump(config) == before

    real = cli(config, "prune")

    assert real.returncode == 0, real.stderr
    assert real.stdout.splitlines()[0] == (
        "pruned 2 raw requests, 1 message (1 event, 0 outbox rows, 0 Idempotency-Key answers)"
    )
    kept = rows(config, "SELECT provider_message_id FROM messages ORDER BY provider_message_id")
    assert [m for (m,) in kept] == ["p-1", "p-3"]
    assert len(rows(config, "SELECT id FROM raw_requests")) == 1
    again = cli(config, "prune")
    assert again.stdout.splitlines()[0].startswith("pruned 0 raw requests, 0 messages")


def test_prune_with_retention_off_says_so_and_deletes_nothing(tmp_path):
    config = folder_with_config(tmp_path)
    seed(config, signed(config, "p-1", "delivered", "evt-1"), datetime.now(UTC) - 4000 * DAY)
    result = cli(config, "prune")
    assert result.returncode == 0
    assert "retention is off" in result.stdout
    assert len(rows(config, "SELECT id FROM raw_requests")) == 1


def test_a_redelivery_of_a_pruned_raw_request_is_a_duplicate_at_the_service(server_factory):
    server = server_factory({"retention": RETAIN})
    config = server.config_path
    seed(
        config, signed(config, "p-1", "delivered", "evt-1", to=NUMBER), datetime.now(UTC) - 10 * DAY
    )
    pruned = cli(config, "prune")  # beside the running service
    assert pruned.stdout.startswith("pruned 1 raw request, 0 messages"), pruned.stderr

    answer = server.post(signed(config, "p-1", "delivered", "evt-1", to=NUMBER))

    assert answer.status_code == 200
    assert answer.json() == {"received": 1, "applied": 0, "duplicates": 1, "superseded": 0}
    with server.api(server.staff_token("root", "admin")) as admin:
        [message] = admin.get("/v1/messages", params={"provider_message_id": "p-1"}).json()["items"]
        [event] = admin.get(f"/v1/messages/{message['id']}/events").json()["items"]
        assert event["deliveries"] == 2
        gone = admin.post("/v1/events/default/evt-1/reprocess")
        assert gone.status_code == 410
        assert gone.json()["code"] == "RAW_REQUEST_DELETED"
        export = cli(config, "export", "--message", message["id"])
        assert export.returncode == 0 and export.stdout == ""
        assert "1 of the message's reports no longer have their stored request" in export.stderr


def test_the_service_prunes_on_its_own_schedule_beside_ingest(server_factory):
    retention = {"raw_requests_days": 1, "messages_days": 3, "interval_seconds": 1}
    server = server_factory({"retention": retention})
    config = server.config_path
    now = datetime.now(UTC)
    seed(config, signed(config, "p-raw", "delivered", "evt-1"), now - 2 * DAY)
    seed(config, signed(config, "p-gone", "delivered", "evt-2"), now - 5 * DAY)

    fresh = server.post(signed(config, "p-new", "sent", "evt-3"))
    assert fresh.status_code == 200
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        metrics = httpx.get(server.base_url + "/metrics").text
        if 'receiver_pruned_rows_total{table="messages"} 1.0' in metrics:
            break
        time.sleep(0.2)
    assert 'receiver_pruned_rows_total{table="raw_requests"} 2.0' in metrics
    assert 'receiver_pruned_rows_total{table="events"} 1.0' in metrics
    assert "receiver_retention_last_pass_timestamp_seconds " in metrics
    assert sorted(m for (m,) in rows(server, "SELECT provider_message_id FROM messages")) == [
        "p-new",
        "p-raw",
    ]
    assert len(rows(server, "SELECT id FROM raw_requests")) == 1  # p-new's


@pytest.mark.parametrize(
    ("retention", "providers", "key", "words"),
    [
        ({"raw_requests_days": -1}, None, "retention.raw_requests_days", "greater than or equal"),
        (
            {"messages_days": 2, "raw_requests_days": 1},
            None,
            "retention.messages_days",
            "at least 3",
        ),
        (
            {"messages_days": 1, "raw_requests_days": 1},
            {"sms": {"type": "vonage", "secrets": ["a" * 32], "signature_method": "sha256"}},
            "retention.messages_days",
            "at least 2",
        ),
        ({"messages_days": 30}, None, "retention.raw_requests_days", "1 to messages_days (30)"),
        (
            {"messages_days": 30, "raw_requests_days": 31},
            None,
            "retention.raw_requests_days",
            "1 to",
        ),
        ({"keep": 1}, None, "retention.keep", "not a known key"),
    ],
)
def test_unsafe_retention_is_refused_at_start(tmp_path, retention, providers, key, words):
    folder = tmp_path / "conf"
    folder.mkdir()
    config = write_config(folder, {"retention": retention}, providers)
    with pytest.raises(ConfigError) as refused:
        load(config)
    assert refused.value.key == key
    assert words in refused.value.problem


@pytest.mark.parametrize("command", [["prune"], ["serve", "--port", "1"]])
def test_commands_exit_2_on_a_retention_shorter_than_a_redelivery_horizon(tmp_path, command):
    config = folder_with_config(tmp_path, {"raw_requests_days": 1, "messages_days": 1})
    result = cli(config, *command)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert str(config) in line and "retention.messages_days" in line and "'default'" in line
    assert not (config.parent / "receiver.db").exists()


# --------------------------------------------------------------------------- erase


def test_erase_refuses_a_number_that_is_not_one(tmp_path):
    config = folder_with_config(tmp_path)
    result = cli(config, "erase", "--to", "0917 not a number")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "--to" in line and "E.164" in line


def test_erase_beside_a_running_service_twice_keeps_counts_and_the_number_away(server_factory):
    server = server_factory()
    config = server.config_path
    for n, status in enumerate(["sent", "delivered"]):
        assert server.post(signed(config, "p-1", status, f"a{n}", to=NUMBER)).status_code == 200
    assert server.post(signed(config, "p-2", "undelivered", "b0", to=NUMBER)).status_code == 200
    assert (
        server.post(signed(config, "p-3", "delivered", "c0", to="+639171234568")).status_code == 200
    )
    stop = threading.Event()
    answers: list[int] = []

    def keep_posting() -> None:  # other traffic goes on during the erasure
        n = 0
        while not stop.is_set():
            n += 1
            answers.append(server.post(signed(config, f"load-{n}", "sent", f"l{n}")).status_code)

    poster = threading.Thread(target=keep_posting)
    poster.start()
    try:
        first = cli(config, "erase", "--to", "+63 917 123 4567", "--by", "dpo")
    finally:
        stop.set()
        poster.join()

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(
        "erased the number from 2 message(s) and deleted 3 stored webhook request(s);"
        " audit record era_"
    )
    [audit] = [json.loads(line) for line in first.stderr.splitlines()]
    assert (audit["audit"], audit["requested_by"], audit["messages"], audit["raw_requests"]) == (
        "erasure",
        "dpo",
        2,
        3,
    )
    assert "9171234567" not in first.stderr
    assert answers and set(answers) == {200}
    with server.api(server.staff_token("root", "admin")) as admin:
        p1 = admin.get("/v1/messages", params={"provider_message_id": "p-1"}).json()["items"][0]
        assert (p1["to"], p1["status"], p1["report_count"]) == (None, "delivered", 2)
        assert len(admin.get(f"/v1/messages/{p1['id']}/events").json()["items"]) == 2
        assert admin.get("/v1/messages", params={"to": NUMBER}).json()["items"] == []
        other = admin.get("/v1/messages", params={"provider_message_id": "p-3"}).json()["items"][0]
        assert other["to"] == "+639171234568"

        second = cli(config, "erase", "--to", NUMBER)
        assert second.returncode == 0, second.stderr
        assert second.stdout.startswith("erased the number from 0 message(s) and deleted 0 stored")

        # A later report naming the number again does not bring it back.
        assert server.post(signed(config, "p-2", "delivered", "b1", to=NUMBER)).status_code == 200
        p2 = admin.get("/v1/messages", params={"provider_message_id": "p-2"}).json()["items"][0]
        assert (p2["to"], p2["status"], p2["report_count"]) == (None, "delivered", 2)
        assert len(rows(server, "SELECT id FROM erasures")) == 2


# --------------------------------------------------------------------------- backup


@pytest.mark.sqlite_only("receiver backup copies the SQLite file")
def test_backup_writes_a_checked_copy_and_never_overwrites_unasked(tmp_path):
    config = folder_with_config(tmp_path)
    seed(config, signed(config, "p-1", "delivered", "evt-1"), datetime.now(UTC))
    target = tmp_path / "backup.db"

    made = cli(config, "backup", str(target))

    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"backed up {config.parent / 'receiver.db'} to {target}: ")
    assert f"schema version {migrations(SQLITE)[-1][0]}, integrity ok" in made.stdout
    assert target.stat().st_mode & 0o777 == 0o600
    assert file_rows(target, "SELECT provider_message_id FROM messages") == [("p-1",)]
    assert file_rows(target, "PRAGMA integrity_check") == [("ok",)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.db", "svc"]

    first = target.read_bytes()
    refused = cli(config, "backup", str(target))
    assert refused.returncode == 2
    [line] = refused.stderr.splitlines()
    assert "exists" in line and "--overwrite" in line
    assert target.read_bytes() == first
    assert cli(config, "backup", str(target), "--overwrite").returncode == 0


@pytest.mark.sqlite_only("receiver backup copies the SQLite file")
@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("missing/backup.db", "is not a directory"),
        (".", "is a directory"),
        ("svc/receiver.db", "live"),
    ],
)
def test_backup_refuses_a_path_it_cannot_write(tmp_path, path, words):
    config = folder_with_config(tmp_path)
    seed(config, signed(config, "p-1", "delivered", "evt-1"), datetime.now(UTC))
    result = run_cli("backup", str(tmp_path / path), "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert words in line


@pytest.mark.sqlite_only("receiver backup copies the SQLite file")
def test_backup_into_a_folder_that_takes_no_files_is_one_line(tmp_path):
    """/proc refuses new files even to root (where a mode-0500 folder would not)."""
    config = folder_with_config(tmp_path)
    seed(config, signed(config, "p-1", "delivered", "evt-1"), datetime.now(UTC))
    result = cli(config, "backup", "/proc/receiver-backup.db")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line == "receiver: cannot write /proc/receiver-backup.db: No such file or directory"


@pytest.mark.sqlite_only("receiver backup copies the SQLite file")
def test_backup_of_a_database_that_does_not_exist_fails_and_creates_nothing(tmp_path):
    config = folder_with_config(tmp_path)
    result = cli(config, "backup", str(tmp_path / "backup.db"))
    assert result.returncode == 1
    assert "cannot open" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc"]
    assert sorted(p.name for p in config.parent.iterdir()) == ["receiver.toml"]
