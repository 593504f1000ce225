"""The status change feed end to end: a real ``receiver serve``, real subscribers on
loopback (``receiver.testing.TestSubscriber``), reports posted concurrently over HTTP.

One server serves most tests (module scope): ``orders`` is a healthy subscriber,
``flaky`` misbehaves when told to, ``gone`` only wants messages of provider ``other``.
The crash test has a server of its own."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Server, new_whsec, run_cli, running_server, stored_rows, write_config
from console_client import Console
from html_tree import parse
from standardwebhooks.webhooks import Webhook

from receiver.config import load
from receiver.core.status import RANK, Status
from receiver.testing import TestSubscriber, standard_report, standard_request
from receiver.testing.fake_server import Drop, Fail, Reject, Stall, Throttle

pytestmark = pytest.mark.long_running

FAST_RETRIES = {"backoff_seconds": 0.05, "backoff_max_seconds": 0.5, "timeout_seconds": 2}
T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def subscribers(backend_settings: dict[str, Any]) -> Iterator[dict[str, TestSubscriber]]:
    """Fresh for each backend's server: what one server delivered must not count for the
    next."""
    started = {name: TestSubscriber().start() for name in ("orders", "flaky", "gone")}
    try:
        yield started
    finally:
        for subscriber in started.values():
            subscriber.close()


@pytest.fixture(scope="module")
def feed_server(
    tmp_path_factory: pytest.TempPathFactory,
    subscribers: dict[str, TestSubscriber],
    backend_settings: dict[str, Any],
) -> Iterator[Server]:
    settings = {
        **backend_settings,
        "subscribers": {
            "orders": subscribers["orders"].config_keys(),
            "flaky": {**subscribers["flaky"].config_keys(), **FAST_RETRIES},
            "gone": {**subscribers["gone"].config_keys(), "providers": ["other"]},
        },
    }
    providers = {
        "default": {"type": "standard", "secrets": [new_whsec()]},
        "other": {"type": "standard", "secrets": [new_whsec()]},
    }
    with running_server(tmp_path_factory, "feed", settings, providers) as server:
        yield server


@pytest.fixture(scope="module")
def viewer(feed_server: Server) -> Iterator[httpx.Client]:
    with contextlib.closing(feed_server.api(feed_server.staff_token("feed-viewer"))) as client:
        yield client


def change_ids(server: Server) -> list[str]:
    """The change ids in the server's store, in feed order: ``id`` on SQLite (one writer
    commits in id order), the ``position`` the sequencer gives committed changes on
    PostgreSQL (processes writing at once commit ids out of order)."""
    on_postgresql = load(server.config_path).store_url.startswith("postgresql")
    order = "position" if on_postgresql else "id"
    rows = stored_rows(server, f"SELECT change_id FROM changes ORDER BY {order}")
    return [row["change_id"] for row in rows]


HISTORIES: list[list[tuple[str, str | None]]] = [
    [("queued", None), ("sent", None), ("delivered", None)],
    [("sent", None), ("buffered", None), ("delivered", None)],
    [("sent", None), ("undelivered", "E1")],
    [("queued", None), ("failed", "E2"), ("delivered", None)],
    [("sent", None)],
]
"""Plausible report histories, (provider word, error code) in the order they occurred:
some end in a failure, one failure is corrected by `delivered`."""


def end_cursor(viewer: httpx.Client) -> str:
    """The cursor after the newest change."""
    cursor = ""
    while True:
        page = viewer.get("/v1/changes", params={"after": cursor, "limit": 1000}).json()
        if not page["items"]:
            return str(page["next"])
        cursor = page["next"]


async def post_all(server: Server, requests: list[Any], concurrency: int = 24) -> list[Any]:
    """POST each signed request; the JSON answers."""
    gate = asyncio.Semaphore(concurrency)
    # A connection idle for a second is not reused: httpx's default (5 s) is the
    # server's keep-alive timeout, and on a loaded machine a request sent on a pooled
    # connection just as the server closed it was reset (httpx.ReadError).
    limits = httpx.Limits(keepalive_expiry=1.0)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30, limits=limits) as client:

        async def post(request: Any) -> Any:
            async with gate:
                answer = await client.post(
                    request.path, content=request.body, headers=request.headers
                )
                assert answer.status_code == 200, answer.text
                return answer.json()

        return await asyncio.gather(*(post(r) for r in requests))


async def follow(client: httpx.AsyncClient, done: asyncio.Event) -> list[str]:
    """Follow GET /v1/changes until ``done`` and then one empty page."""
    seen: list[str] = []
    cursor = ""
    while True:
        finished = done.is_set()
        page = (await client.get("/v1/changes", params={"after": cursor, "limit": 50})).json()
        seen += [item["change_id"] for item in page["items"]]
        cursor = page["next"]
        if not page["items"]:
            if finished:
                return seen
            await asyncio.sleep(0.02)


async def test_500_messages_shuffled_with_redeliveries_arrive_in_order(
    feed_server: Server, subscribers: dict[str, TestSubscriber], viewer: httpx.Client
) -> None:
    rng = random.Random(13)
    secret = feed_server.secret()
    requests = []
    for number in range(500):
        for step, (word, code) in enumerate(HISTORIES[number % len(HISTORIES)]):
            report = standard_report(
                f"bulk-{number}", word, occurred_at=T0 + timedelta(seconds=step), error_code=code
            )
            requests.append(standard_request(secret, report, event_id=f"bulk-{number}-{step}"))
        # A report that occurred late but ranks low: superseded, never a change.
        late = standard_report(f"bulk-{number}", "queued", occurred_at=T0 + timedelta(hours=1))
        requests.append(standard_request(secret, late, event_id=f"bulk-{number}-late"))
    requests += rng.sample(requests, len(requests) // 3)  # redeliveries: duplicates
    rng.shuffle(requests)

    token = viewer.headers["Authorization"]
    async with httpx.AsyncClient(
        base_url=feed_server.base_url, headers={"Authorization": token}
    ) as client:
        done = asyncio.Event()
        following = asyncio.create_task(follow(client, done))
        answers = await post_all(feed_server, requests)
        done.set()
        followed = await following

    rows = change_ids(feed_server)
    unique = len({request.headers["webhook-id"] for request in requests})
    assert sum(answer["duplicates"] for answer in answers) == len(requests) - unique
    # Each change was caused by a distinct report that was applied when it arrived:
    # none by a duplicate, none by a superseded report.
    causes = [
        (row["cause_event_id"], row["outcome"])
        for row in stored_rows(
            feed_server,
            "SELECT c.cause_event_id, e.outcome FROM changes c JOIN events e"
            " ON e.event_id = c.cause_event_id WHERE c.cause_event_id LIKE 'bulk-%'",
        )
    ]
    assert len(causes) == len({event for event, _ in causes}) >= 500
    assert {outcome for _, outcome in causes} == {"applied"}
    # The client that followed the cursor saw exactly the change rows, in commit order.
    assert followed == rows

    orders = subscribers["orders"]
    await asyncio.to_thread(orders.wait_for_changes, len(rows), 60)
    by_message = {
        changes[0]["message"]["provider_message_id"]: changes
        for changes in orders.by_message().values()
    }
    assert len([key for key in by_message if key.startswith("bulk-")]) == 500
    pages: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        params = {"provider": "default", "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = viewer.get("/v1/messages", params=params).json()
        pages.update({m["provider_message_id"]: m for m in page["items"]})
        cursor = page["next_cursor"]
        if cursor is None:
            break
    for key, changes in by_message.items():
        if not key.startswith("bulk-"):
            continue
        assert [c["seq"] for c in changes] == list(range(1, len(changes) + 1)), key
        ranks = [RANK[Status(c["status"])] for c in changes]
        assert ranks == sorted(ranks), key
        for before, after in itertools.pairwise(changes):
            assert after["previous_status"] == before["status"]
        last, current = changes[-1]["message"], pages[key]
        for field in ("id", "status", "final", "error_code", "error_message"):
            assert last[field] == current[field], (key, field)
    assert orders.rejected == []


async def test_a_failing_subscriber_still_gets_every_change_in_order(
    feed_server: Server, subscribers: dict[str, TestSubscriber]
) -> None:
    flaky = subscribers["flaky"]
    flaky.on_send(*[Fail(500)] * 15, *[Drop()] * 15, *[Throttle("1")] * 6)
    secret = feed_server.secret()
    for step, word in enumerate(("queued", "sent", "delivered")):  # in order per message
        requests = [
            standard_request(
                secret,
                standard_report(f"flaky-{n}", word, occurred_at=T0 + timedelta(seconds=step)),
                event_id=f"flaky-{n}-{step}",
            )
            for n in range(10)
        ]
        await post_all(feed_server, requests, concurrency=4)
    expected = {
        change for change, key in rows_by_key(feed_server).items() if key.startswith("flaky-")
    }
    await asyncio.to_thread(
        flaky.wait_until,
        lambda: expected <= {c.webhook_id for c in flaky.acknowledged},
        "every flaky change acknowledged",
        60,
    )
    for key in {f"flaky-{n}" for n in range(10)}:
        [changes] = [
            c for c in flaky.by_message().values() if c[0]["message"]["provider_message_id"] == key
        ]
        assert [c["seq"] for c in changes] == [1, 2, 3]
        assert [c["status"] for c in changes] == ["queued", "sent", "delivered"]
    # Retries happened, and each attempt carried its change's id as webhook-id.
    assert len(flaky.attempts) > len(flaky.distinct())
    assert all(c.webhook_id == c.data["change_id"] for c in flaky.attempts)


async def test_a_change_waits_for_the_one_before_it_that_is_still_on_its_way(
    feed_server: Server, subscribers: dict[str, TestSubscriber]
) -> None:
    # The first change's POST is held past the subscriber's timeout (2 s): it fails and
    # goes again. The second change, written meanwhile, must go only after the first
    # was acknowledged, never in between.
    flaky = subscribers["flaky"]
    flaky.on_send(Stall(3.0))
    secret = feed_server.secret()

    def seqs(changes: list[Any]) -> list[int]:
        return [
            c.data["seq"] for c in changes if c.data["message"]["provider_message_id"] == "chain-1"
        ]

    first = standard_report("chain-1", "sent", occurred_at=T0)
    await post_all(feed_server, [standard_request(secret, first, event_id="chain-a")])
    await asyncio.to_thread(flaky.wait_until, lambda: seqs(flaky.attempts) == [1], "1st POST")
    second = standard_report("chain-1", "delivered", occurred_at=T0 + timedelta(seconds=1))
    await post_all(feed_server, [standard_request(secret, second, event_id="chain-b")])
    await asyncio.to_thread(
        flaky.wait_until, lambda: 2 in seqs(flaky.acknowledged), "the second change", 30
    )
    assert seqs(flaky.attempts) == [1, 1, 2]  # held, again (acknowledged), then the second
    assert seqs(flaky.distinct()) == [1, 2]


def rows_by_key(server: Server) -> dict[str, str]:
    """change_id -> the provider message id of its message."""
    rows = stored_rows(server, "SELECT change_id, message FROM changes")
    return {row["change_id"]: json.loads(row["message"])["provider_message_id"] for row in rows}


def test_our_signature_verifies_with_the_standardwebhooks_package(
    feed_server: Server, subscribers: dict[str, TestSubscriber]
) -> None:
    orders = subscribers["orders"]
    secret = feed_server.secret()
    request = standard_request(secret, standard_report("signed-1", "delivered"))
    assert feed_server.post(request).status_code == 200
    orders.wait_until(
        lambda: any(
            c.data["message"]["provider_message_id"] == "signed-1" for c in orders.acknowledged
        ),
        "the change of signed-1",
    )
    [received] = [
        c for c in orders.acknowledged if c.data["message"]["provider_message_id"] == "signed-1"
    ]
    payload = Webhook(orders.secret).verify(received.body, received.headers)
    assert payload["type"] == "message.status_changed"
    assert payload["data"]["change_id"] == received.headers["webhook-id"]
    assert payload["data"]["cause"]["source"] == "webhook"
    assert payload["data"]["message"]["status"] == "delivered"


def test_410_disables_the_subscriber_until_redelivered(
    feed_server: Server, subscribers: dict[str, TestSubscriber]
) -> None:
    gone = subscribers["gone"]
    gone.on_send(Reject(410))
    other = feed_server.secret("other")
    for step, word in enumerate(("sent", "delivered")):
        report = standard_report("gone-1", word, occurred_at=T0 + timedelta(seconds=step))
        assert (
            feed_server.post(standard_request(other, report, provider="other")).status_code == 200
        )
    gone.wait_until(lambda: len(gone.attempts) >= 1, "the first attempt")
    config = str(feed_server.config_path)

    def listed() -> str:
        result = run_cli("subscribers", "list", "--config", config)
        assert result.returncode == 0, result.stderr
        [line] = [row for row in result.stdout.splitlines() if row.startswith("gone\t")]
        return line

    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while "disabled" not in listed():
        assert datetime.now(UTC) < deadline, listed()
    assert "410" in listed() and "\t2\t" in listed()  # both changes wait
    log = feed_server.log_path.read_text()
    assert any('"level": "error"' in line and "410" in line for line in log.splitlines()), (
        "no error line for the 410"
    )
    assert gone.acknowledged == []
    with Console(feed_server) as console:
        console.login(token=feed_server.staff_token("gone-admin", "admin"))
        page = parse(console.get("/console/subscribers").text)
        row = page.find("tr", **{"data-name": "gone"})
        assert row.attrs["data-state"] == "disabled"
        assert "410 Gone" in row.find(**{"data-test": "disabled-reason"}).text

    result = run_cli("subscribers", "redeliver", "gone", "--dead", "--config", config)
    assert result.returncode == 0, result.stderr
    assert "enabled" in result.stdout
    gone.wait_for_changes(2)
    assert [c.data["seq"] for c in gone.distinct()] == [1, 2]
    # The filter held: only messages of provider `other` reached `gone`.
    assert {c.data["message"]["provider"] for c in gone.distinct()} == {"other"}


def test_redeliver_of_an_unknown_subscriber_is_a_usage_error(feed_server: Server) -> None:
    result = run_cli("subscribers", "redeliver", "nobody", "--config", str(feed_server.config_path))
    assert result.returncode == 2
    assert "nobody" in result.stderr
    result = run_cli(
        "subscribers",
        "redeliver",
        "orders",
        "--since",
        "yesterday",
        "--config",
        str(feed_server.config_path),
    )
    assert result.returncode == 2
    assert "--since" in result.stderr


def test_the_stream_sends_changes_as_sse_and_resumes_from_last_event_id(
    feed_server: Server, viewer: httpx.Client
) -> None:
    secret = feed_server.secret()
    first = end_cursor(viewer)
    for step, word in enumerate(("sent", "delivered")):
        report = standard_report(
            "sse-1", word, occurred_at=T0 + timedelta(seconds=step), to="+639171234567"
        )
        assert feed_server.post(standard_request(secret, report)).status_code == 200

    def read_events(headers: dict[str, str], count: int) -> list[tuple[str, dict[str, Any]]]:
        events: list[tuple[str, dict[str, Any]]] = []
        event_id = None
        with viewer.stream(
            "GET", "/v1/changes/stream", params={"after": first}, headers=headers, timeout=20
        ) as answer:
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/event-stream")
            for line in answer.iter_lines():
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: "):
                    assert event_id is not None
                    events.append((event_id, json.loads(line[6:])))
                    if len(events) == count:
                        return events
        raise AssertionError("the stream ended")

    both = read_events({}, 2)
    assert [data["message"]["provider_message_id"] for _, data in both] == ["sse-1", "sse-1"]
    assert [data["seq"] for _, data in both] == [1, 2]
    assert both[0][1]["message"]["to"] == "+63******4567"  # a viewer sees it masked
    # A reconnect names the last id it saw: the stream goes on from there.
    [resumed] = read_events({"Last-Event-ID": both[0][0]}, 1)
    assert resumed == both[1]
    page = viewer.get("/v1/changes", params={"after": first}).json()
    assert [item["change_id"] for item in page["items"]] == [d["change_id"] for _, d in both]
    assert page["next"] == both[1][0]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": "abc"}, "after"),
        ({"after": "-1"}, "after"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "1"}, "cursor"),
    ],
)
def test_bad_pull_parameters_are_400(
    viewer: httpx.Client, params: dict[str, str], field: str
) -> None:
    for path in ("/v1/changes", "/v1/changes/stream"):
        if path.endswith("stream") and field == "limit":
            continue  # the stream takes no limit: an unknown parameter, tested as `cursor`
        answer = viewer.get(path, params=params)
        assert answer.status_code == 400
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["field"] == field


def test_a_bad_last_event_id_is_400(viewer: httpx.Client) -> None:
    answer = viewer.get("/v1/changes/stream", headers={"Last-Event-ID": "x1"})
    assert answer.status_code == 400
    assert answer.json()["field"] == "Last-Event-ID"


def test_the_feed_needs_a_token(feed_server: Server) -> None:
    for path in ("/v1/changes", "/v1/changes/stream"):
        assert httpx.get(feed_server.base_url + path).status_code == 401


def test_metrics_show_each_subscriber(
    feed_server: Server, subscribers: dict[str, TestSubscriber]
) -> None:
    orders = subscribers["orders"]
    report = standard_report("metrics-1", "sent")
    assert feed_server.post(standard_request(feed_server.secret(), report)).status_code == 200
    orders.wait_until(
        lambda: any(
            c.data["message"]["provider_message_id"] == "metrics-1" for c in orders.acknowledged
        ),
        "the change of metrics-1",
    )
    text = httpx.get(feed_server.base_url + "/metrics").text
    for name in ("orders", "flaky", "gone"):
        assert f'receiver_subscriber_backlog{{subscriber="{name}"}}' in text
        assert f'receiver_subscriber_oldest_pending_seconds{{subscriber="{name}"}}' in text
        delivered = (
            f'receiver_subscriber_deliveries_total{{outcome="delivered",subscriber="{name}"}}'
        )
        assert delivered in text
    assert 'receiver_subscriber_delivery_seconds_count{subscriber="orders"}' in text


# --------------------------------------------------------------------------- crash


def test_kill_9_between_commit_and_delivery_loses_nothing(
    tmp_path: Path,
) -> None:
    with TestSubscriber() as subscriber:
        # Two deliveries at a time, each held by the subscriber: most changes are
        # committed and not yet delivered when the service dies. (Held for up to
        # 3 s, an attempt's timeout, so that the kill comes first even on a loaded
        # machine; after the restart the dead process's claims expire in 5 x 3 s.)
        subscriber.on_send(Stall(None), Stall(None))
        keys = {**subscriber.config_keys(), "concurrency": 2, "timeout_seconds": 3}
        config = write_config(tmp_path, {"subscribers": {"orders": keys}})
        server = Server(tmp_path, config).start()
        try:
            secret = server.secret()
            for n in range(6):
                for step, word in enumerate(("sent", "delivered")):
                    report = standard_report(
                        f"crash-{n}", word, occurred_at=T0 + timedelta(seconds=step)
                    )
                    assert server.post(standard_request(secret, report)).status_code == 200
            subscriber.wait_until(lambda: len(subscriber.attempts) >= 2, "two held deliveries")
            before_kill = {c.webhook_id for c in subscriber.attempts}
            server.stop(signal.SIGKILL)
            # Committed, not delivered: the held ones, and those waiting behind them (an
            # attempt that timed out may have been retried and answered in between).
            with subscriber.lock:
                assert len({c.webhook_id for c in subscriber.acknowledged}) < 12
            subscriber.release()  # the held answers go to a dead connection
            server.start()
            rows = change_ids(server)
            assert len(rows) == 12
            subscriber.wait_for_changes(12, timeout=120)  # a safety deadline only
        finally:
            server.stop(signal.SIGKILL)
        arrived = {c.webhook_id for c in subscriber.acknowledged}
        assert arrived == set(rows)
        # The changes attempted before the crash came again under the same webhook-id.
        assert before_kill <= arrived
        for changes in subscriber.by_message().values():
            assert [c["seq"] for c in changes] == [1, 2]


def test_the_console_shows_a_message_s_changes_and_the_subscribers_health(
    feed_server: Server, subscribers: dict[str, TestSubscriber], viewer: httpx.Client
) -> None:
    orders = subscribers["orders"]
    secret = feed_server.secret()
    for step, word in enumerate(("sent", "delivered")):
        report = standard_report("console-1", word, occurred_at=T0 + timedelta(seconds=step))
        assert feed_server.post(standard_request(secret, report)).status_code == 200
    orders.wait_until(
        lambda: (
            len(
                [
                    c
                    for c in orders.acknowledged
                    if c.data["message"]["provider_message_id"] == "console-1"
                ]
            )
            >= 2
        ),
        "both changes of console-1",
    )
    [message] = viewer.get("/v1/messages", params={"provider_message_id": "console-1"}).json()[
        "items"
    ]
    with Console(feed_server) as console:
        console.login(token=feed_server.staff_token("console-viewer", "viewer"))
        page = parse(console.get(f"/console/messages/{message['id']}").text)
        rows = page.find_all("tr", **{"data-test": "change"})
        assert [row.attrs["data-seq"] for row in rows] == ["1", "2"]
        assert "sent" in rows[1].text and "delivered" in rows[1].text
        for row in rows:
            states = {
                d.attrs["data-subscriber"]: d.attrs["data-state"]
                for d in row.find_all(**{"data-test": "delivery"})
            }
            # `gone` wants only provider `other`; `flaky` may still be retrying.
            assert states["orders"] == "delivered"
            assert "gone" not in states and "flaky" in states
        # The subscribers page is for admins.
        assert console.get("/console/subscribers").status_code == 403

    with Console(feed_server) as console:
        console.login(token=feed_server.staff_token("console-admin", "admin"))
        answer = console.get("/console/subscribers")
        assert answer.status_code == 200
        page = parse(answer.text)
        names = [
            row.attrs["data-name"] for row in page.find_all("tr", **{"data-test": "subscriber"})
        ]
        assert names == ["flaky", "gone", "orders"]
        assert subscribers["orders"].secret not in answer.text


async def test_a_client_following_the_cursor_sees_every_change_of_three_ingesting_processes(
    tmp_path: Path, store_url: str
) -> None:
    """Three `receiver serve` processes on one store (README "Status change feed"), reports
    posted to all three at once, a client following /v1/changes on one of them: its list
    is exactly the change rows, in commit order. On PostgreSQL the processes commit
    changes out of id order, which neither the cursor nor the deliveries may trip on."""
    with TestSubscriber() as subscriber:
        # Leases (5 x the timeout) far longer than the test: a change whose delivery a
        # worker overlooked would arrive only after its lease ran out.
        subscribers = {"orders": {**subscriber.config_keys(), "timeout_seconds": 300}}
        config = write_config(tmp_path, {"database_url": store_url, "subscribers": subscribers})
        servers = [Server(tmp_path, config).start()]
        try:
            for n in (1, 2):
                workdir = tmp_path / f"process{n}"
                workdir.mkdir()
                servers.append(Server(workdir, config).start())
            secret = servers[0].secret()
            token = servers[0].staff_token("follower")
            requests = [
                standard_request(
                    secret,
                    standard_report(f"multi-{n}", word, occurred_at=T0 + timedelta(seconds=step)),
                    event_id=f"multi-{n}-{step}",
                )
                for n in range(100)
                for step, word in enumerate(("sent", "delivered"))
            ]
            async with httpx.AsyncClient(
                base_url=servers[0].base_url, headers={"Authorization": f"Bearer {token}"}
            ) as client:
                done = asyncio.Event()
                following = asyncio.create_task(follow(client, done))
                await asyncio.gather(
                    *(post_all(server, requests[i::3], 8) for i, server in enumerate(servers))
                )
                done.set()
                followed = await following
            rows = change_ids(servers[0])
            assert len(rows) >= 100
            assert followed == rows
            # Each change reached the subscriber, whichever process delivered it.
            await asyncio.to_thread(subscriber.wait_for_changes, len(rows), 60)
            assert {c.webhook_id for c in subscriber.acknowledged} == set(rows)
        finally:
            for server in servers:
                server.stop(signal.SIGKILL)


def test_an_open_event_stream_does_not_hold_up_a_shutdown(tmp_path: Path) -> None:
    """uvicorn waits for every answer to finish before it stops; an event stream would
    never finish, so it ends when the shutdown begins (the client reconnects)."""
    server = Server(tmp_path, write_config(tmp_path)).start()
    try:
        token = server.staff_token("streamer")
        with httpx.stream(
            "GET",
            server.base_url + "/v1/changes/stream",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as answer:
            lines = answer.iter_lines()
            assert next(lines) == "retry: 1000"
            assert server.process is not None
            rest: list[str] = []
            reader = threading.Thread(target=lambda: rest.extend(lines), daemon=True)
            reader.start()
            server.process.send_signal(signal.SIGTERM)
            reader.join(timeout=30)  # a safety limit: without the fix it never ends
            assert not reader.is_alive(), "the stream stayed open through the shutdown"
            assert rest == [""]  # the stream ended: the server closed it
        assert server.stop() == 0
    finally:
        server.stop(signal.SIGKILL)
