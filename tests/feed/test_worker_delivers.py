"""``[feed] deliver_in_serve = false``: a real ``receiver serve`` only queues the
deliveries, a real ``receiver worker`` beside it posts them (README "Status change
feed"), on each backend."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Server, stored_rows, write_config
from processes import start_worker

from receiver.testing import TestSubscriber, standard_report, standard_request

pytestmark = pytest.mark.long_running

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
HISTORY = ("sent", "buffered", "delivered")


def test_a_worker_delivers_what_serve_only_queues_every_change_in_seq_order(
    tmp_path: Path, backend_settings: dict[str, Any]
) -> None:
    with TestSubscriber() as subscriber:
        settings = {
            **backend_settings,
            "feed": {"deliver_in_serve": False},
            "subscribers": {"orders": subscriber.config_keys()},
        }
        config = write_config(tmp_path, settings)
        server = Server(tmp_path, config).start()
        worker: subprocess.Popen[bytes] | None = None
        try:
            secret = server.secret()
            requests = [
                standard_request(
                    secret,
                    standard_report(f"split-{n}", word, occurred_at=T0 + timedelta(seconds=step)),
                    event_id=f"split-{n}-{step}",
                )
                for step, word in enumerate(HISTORY)
                for n in range(40)
            ]
            # Serve alone: the changes are queued, none is sent.
            for request in requests[:40]:
                assert server.post(request).status_code == 200
            time.sleep(1.5)
            assert subscriber.attempts == []
            # The worker sends them, and those written while it runs, each message's
            # changes in seq order (most of them wait for the one before, so they go
            # out when its acknowledgement leases them to the worker).
            worker = start_worker(config, tmp_path / "worker.log")
            for request in requests[40:]:
                assert server.post(request).status_code == 200
            rows = stored_rows(server, "SELECT change_id FROM changes ORDER BY id")
            assert len(rows) == 40 * len(HISTORY)
            subscriber.wait_for_changes(len(rows), timeout=60)
            assert {c.webhook_id for c in subscriber.acknowledged} == {
                row["change_id"] for row in rows
            }
            for key, changes in subscriber.by_message().items():
                assert [c["seq"] for c in changes] == [1, 2, 3], key
                assert [c["status"] for c in changes] == list(HISTORY), key
            assert subscriber.rejected == []
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0
        finally:
            if worker is not None and worker.poll() is None:
                worker.kill()
                worker.wait()
            server.stop(signal.SIGKILL)
