"""``/readyz`` says 503 whenever a report could not be committed right now (README
"Operations"), and a broken SQLite file ends the process loudly, not silently
(receiver.store.files). Real ``receiver serve`` processes with their database on a real
tmpfs, filled up or mounted read-only (mounting needs root, as in CI)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import Server, ServerFactory, free_port, run_cli, write_config
from edge_client import metric

from receiver.testing import SignedRequest, standard_report, standard_request

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root"),
    pytest.mark.sqlite_only("SQLite's file on a full or damaged disk"),
]

IN_DATA = {"database_url": "sqlite:///data/receiver.db"}


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", path], check=True)


def fill(path: Path) -> None:
    """Write ``path`` until the file system is full."""
    with path.open("wb") as file:
        try:
            while True:
                file.write(b"\0" * 65536)
                file.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


def report(server: Server, name: str) -> SignedRequest:
    return standard_request(server.secret(), standard_report(name, "delivered"))


def ready(server: Server) -> httpx.Response:
    return httpx.get(server.base_url + "/readyz", timeout=15)


def assert_store_unavailable(answer: httpx.Response) -> dict:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["retry-after"]) > 0
    problem = answer.json()
    assert problem["code"] == "STORE_UNAVAILABLE"
    return problem


def test_a_full_disk_is_503_everywhere_until_there_is_room_again(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "data", "16m") as data:
        server = Server(tmp_path, write_config(tmp_path, IN_DATA)).start()
        try:
            acknowledged = [report(server, f"disk-{i}") for i in range(5)]
            for request in acknowledged:
                assert server.post(request, timeout=15).status_code == 200
            assert ready(server).status_code == 200
            assert (metric(server, "receiver_sqlite_wal_bytes") or 0) > 0

            fill(data / "filler")
            assert "full" in assert_store_unavailable(ready(server))["detail"]
            refused = report(server, "disk-refused")
            assert_store_unavailable(server.post(refused, timeout=15))
            assert httpx.get(server.base_url + "/healthz").status_code == 200

            (data / "filler").unlink()
            assert ready(server).status_code == 200
            answer = server.post(refused, timeout=15)
            assert (answer.status_code, answer.json()["applied"]) == (200, 1)
            for request in acknowledged:  # still there: redeliveries are duplicates
                assert server.post(request, timeout=15).json()["duplicates"] == 1
        finally:
            assert server.stop() == 0
        with contextlib.closing(sqlite3.connect(data / "receiver.db")) as db:
            stored = {row[0] for row in db.execute("SELECT event_id FROM events")}
    assert stored == {r.headers["webhook-id"] for r in [*acknowledged, refused]}


def test_serve_refuses_a_database_on_a_read_only_file_system(tmp_path: Path) -> None:
    config = write_config(tmp_path, IN_DATA)
    with tmpfs(tmp_path / "data", "4m") as data:
        with contextlib.closing(sqlite3.connect(data / "receiver.db")) as db:
            db.execute("CREATE TABLE t (x)")
        subprocess.run(["mount", "-o", "remount,ro", data], check=True)
        result = run_cli("serve", "--config", str(config), "--port", str(free_port()))
    assert result.returncode == 1, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line == f"receiver: cannot write {data}: the file system is mounted read-only"
    assert "Traceback" not in result.stderr


def test_a_database_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"database_url": "sqlite:///data/new/receiver.db"})
    with tmpfs(tmp_path / "data", "4m") as data:
        subprocess.run(["mount", "-o", "remount,ro", data], check=True)
        served = run_cli("serve", "--config", str(config), "--port", str(free_port()))
        added = run_cli("staff", "add", "ro-1", "--role", "viewer", "--config", str(config))
    for result in (served, added):
        assert result.returncode == 1, result.stderr
        line = result.stderr.strip().splitlines()[-1]
        assert line == f"receiver: cannot create {data / 'new'}: Read-only file system"
        assert "Traceback" not in result.stderr


def test_a_first_start_in_a_folder_it_cannot_write_is_one_line(tmp_path: Path) -> None:
    """No config yet: serve would write receiver.toml first (a container's data volume
    owned by another user is the same refusal for a non-root service user)."""
    with tmpfs(tmp_path / "data", "4m") as data:
        subprocess.run(["mount", "-o", "remount,ro", data], check=True)
        result = run_cli("serve", "--port", str(free_port()), cwd=data)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line == "receiver: receiver.toml: cannot be written (Read-only file system)"


def test_a_shm_file_that_shrinks_ends_the_process_with_a_clear_line(
    server_factory: ServerFactory,
) -> None:
    """Truncating the mapped -shm file would make the next SQLite access a SIGBUS."""
    server = server_factory()
    assert server.post(report(server, "shm-1"), timeout=15).status_code == 200
    assert ready(server).status_code == 200
    os.truncate(server.workdir / "receiver.db-shm", 0)

    with contextlib.suppress(httpx.TransportError):  # it may die before it answers
        ready(server)
    assert server.process is not None
    assert server.process.wait(timeout=20) == 1
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines()]
    [critical] = [line for line in lines if line["level"] == "critical"]
    assert "receiver.db-shm shrank" in critical["message"]


def test_a_fatal_signal_is_never_silent(server: Server) -> None:
    """faulthandler: a SIGBUS from anywhere SQLite maps leaves a line and the tracebacks."""
    assert server.process is not None
    server.process.send_signal(signal.SIGBUS)
    assert server.process.wait(timeout=20) == -signal.SIGBUS
    deadline = time.monotonic() + 5
    while "Fatal Python error: Bus error" not in server.log_path.read_text():
        assert time.monotonic() < deadline, server.log_path.read_text()[-2000:]
        time.sleep(0.05)
