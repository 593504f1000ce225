"""Missing reports end to end: a real ``receiver serve``, the real ``receiver reconcile``
CLI and a fake ``standard`` provider API on loopback (README "Missing reports").

The outage drill: while the service is stopped the provider "sends" 1,000 final
reports that are lost (it never retries); after the restart ``receiver reconcile
--since`` asks the provider's API about every overdue message, and the staff API then
shows exactly what the provider knows. The console's Overdue page and the staff API's
``overdue=true`` show what is left.
"""

from __future__ import annotations

import random
import re
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from conftest import Server, new_whsec, run_cli, write_config

from receiver.testing import standard_report, standard_request
from receiver.testing.fake_status import ERROR_CODES, FakeStatusApi, Outcome

MESSAGES = 1000
PENDING_SHARE = 0.1


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeStatusApi]:
    with FakeStatusApi("standard") as api:
        yield api


@pytest.fixture(scope="module")
def drill(
    tmp_path_factory: pytest.TempPathFactory, fake: FakeStatusApi
) -> Iterator[dict[str, Any]]:
    """The drill, run once: its server (restarted), the truth and the CLI's output."""
    workdir = tmp_path_factory.mktemp("reconcile-drill")
    provider = {
        "type": "standard",
        "secrets": [new_whsec()],
        "api_base_url": fake.base_url,
        "api_key": fake.api_key,
        "report_timeout_seconds": 1,
        "report_give_up_seconds": 86400,
    }
    settings = {"reconcile": {"interval_seconds": 3600}}  # the CLI does the work here
    server = Server(workdir, write_config(workdir, settings, {"acme": provider})).start()
    try:
        since = datetime.now(UTC) - timedelta(seconds=1)
        ids = [f"drill-{i:04d}" for i in range(MESSAGES)]
        batch = [standard_report(pmid, "sent", to=f"+63917{i:07d}") for i, pmid in enumerate(ids)]
        answer = server.post(standard_request(server.secret("acme"), batch, provider="acme"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["applied"] == MESSAGES

        server.stop()  # the outage: every final report the provider sends now is lost
        rng = random.Random(14)
        truth: dict[str, Outcome] = {}
        for i, pmid in enumerate(ids):
            roll = rng.random()
            outcome: Outcome = (
                "pending" if roll < PENDING_SHARE else "undelivered" if roll < 0.3 else "delivered"
            )
            truth[pmid] = outcome
            fake.know(pmid, outcome, f"+63917{i:07d}")
        server.start()
        result = run_cli(
            "reconcile", "--since", since.isoformat(), "--config", str(server.config_path)
        )
        yield {"server": server, "truth": truth, "cli": result}
    finally:
        server.stop(signal.SIGKILL)


def all_messages(server: Server, token: str, **filters: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, str] = {"limit": "200", **filters}
    headers = {"authorization": f"Bearer {token}"}
    while True:
        page = httpx.get(server.base_url + "/v1/messages", params=params, headers=headers)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        if page.json()["next_cursor"] is None:
            return items
        params["cursor"] = page.json()["next_cursor"]


def test_after_an_outage_reconcile_recovers_every_final_status(
    drill: dict[str, Any], fake: FakeStatusApi
):
    result = drill["cli"]
    assert result.returncode == 0, result.stderr
    assert f"acme\t{MESSAGES} overdue" in result.stdout
    assert fake.lookup_calls == MESSAGES  # one lookup each, none repeated

    server, truth = drill["server"], drill["truth"]
    token = server.staff_token("drill-viewer")
    stored = {m["provider_message_id"]: m for m in all_messages(server, token, provider="acme")}
    assert stored.keys() == truth.keys()
    expected = {"delivered": "delivered", "undelivered": "undelivered", "pending": "sent"}
    for pmid, outcome in truth.items():
        message = stored[pmid]
        assert message["status"] == expected[outcome], pmid
        code = ERROR_CODES["standard"] if outcome == "undelivered" else None
        assert message["error_code"] == code, pmid
    final = sum(outcome != "pending" for outcome in truth.values())
    assert f"{final} final" in result.stdout


def test_the_staff_api_lists_what_is_still_overdue(drill: dict[str, Any]):
    server, truth = drill["server"], drill["truth"]
    token = server.staff_token("overdue-viewer")
    overdue = all_messages(server, token, overdue="true")
    pending = {pmid for pmid, outcome in truth.items() if outcome == "pending"}
    assert {m["provider_message_id"] for m in overdue} == pending
    refused = httpx.get(
        server.base_url + "/v1/messages",
        params={"overdue": "perhaps"},
        headers={"authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "FILTER_INVALID"


def test_a_message_page_shows_its_lookup_and_the_console_lists_the_overdue(
    drill: dict[str, Any],
):
    from console_client import Console

    server, truth = drill["server"], drill["truth"]
    token = server.staff_token("overdue-console", "viewer")
    pending = sorted(pmid for pmid, outcome in truth.items() if outcome == "pending")
    with Console(server) as console:
        console.login(token=token)
        page = console.get("/console/overdue")
        assert page.status_code == 200
        assert 'data-test="overdue">' + str(len(pending)) + "<" in page.text
        assert 'data-test="still-pending">' + str(len(pending)) + "<" in page.text
        assert page.text.count('data-test="overdue-message"') == min(len(pending), 50)
        assert "looked up, still pending" in page.text
        one = all_messages(server, token, provider_message_id=pending[0])[0]
        message_page = console.get(f"/console/messages/{one['id']}")
        assert "looked up at the provider" in message_page.text


def test_reconcile_refuses_bad_usage_with_one_line(drill: dict[str, Any]):
    config = str(drill["server"].config_path)
    unknown = run_cli("reconcile", "--provider", "nope", "--config", config)
    assert unknown.returncode == 2
    assert "--provider 'nope' is not configured" in unknown.stderr
    backwards = run_cli(
        "reconcile", "--since", "2026-11-23T14:00Z", "--until", "2026-11-23T10:00Z",
        "--config", config,
    )  # fmt: skip
    assert backwards.returncode == 2
    dry = run_cli("reconcile", "--dry-run", "--config", config)
    assert dry.returncode == 0, dry.stderr
    assert "nothing asked or changed" in dry.stdout


def test_two_reconcile_processes_never_ask_about_one_message_at_once(tmp_path):
    """Two real ``receiver reconcile`` processes on one database, each lookup held for a
    moment by the fake, so that they overlap: each message is asked about once."""
    import asyncio
    import subprocess
    import sys

    from receiver.config import load
    from receiver.core.reports import Report
    from receiver.core.status import Status
    from receiver.records import RawRequest
    from receiver.store import open_store
    from receiver.testing.fake_server import Stall

    with FakeStatusApi("standard") as api:
        table = {**api.provider_table(), "report_timeout_seconds": 0.001}
        path = write_config(tmp_path, None, {"acme": table})
        ids = [f"twice-{i}" for i in range(64)]  # 4 rounds of 16 each

        async def seed() -> None:
            store = open_store(load(path).store_url)
            await store.open()
            now = datetime.now(UTC) - timedelta(seconds=1)
            reports = [Report(f"wh-{p}", p, Status.SENT, "sent", now) for p in ids]
            await store.ingest("acme", RawRequest(path="/", body=b"{}", received_at=now), reports)
            await store.close()

        asyncio.run(seed())
        for pmid in ids:
            api.know(pmid, "delivered", "+639171234567")
        api.on_lookup(*[Stall(0.5)] * len(ids))  # about 2 s of work: the two overlap
        command = [sys.executable, "-m", "receiver", "reconcile", "--config", str(path)]
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)]
        runs.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
        outputs = [run.communicate(timeout=120)[0].decode() for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        assert api.most_at_once == 1
        assert all(api.lookups_of(pmid) == 1 for pmid in ids), outputs
        finals = [int(re.search(r"(\d+) final", out)[1]) for out in outputs]  # type: ignore[index]
        assert sum(finals) == len(ids) and min(finals) > 0, outputs  # both did some
