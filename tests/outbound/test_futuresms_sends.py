"""Sending through FutureSMS end to end: ``POST /v1/messages`` on a real ``receiver
serve``, whose outbox worker sends to ``FakeFutureSms`` on loopback, which posts its DLRs
back to the ``dlr_address`` it was given.

The business facts asserted: how many orders FutureSMS really took (``fake.orders``),
under which ``client_order_id``, and that every message is linked to its order and
completed by its report, even when the answer naming the order was lost and the
retry got CONFLICT.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Server, free_port, stored_rows, write_config

from receiver.testing.fake_futuresms import FakeFutureSms
from receiver.testing.fake_server import Drop, Fail, Stall, Throttle

TOKEN = "tok_" + "Zp3k" * 8
FAST = {
    "connect_timeout_seconds": 0.5,
    "read_timeout_seconds": 0.5,
    "poll_seconds": 0.05,
    "backoff_seconds": 0.05,
    "backoff_max_seconds": 0.2,
}
WAIT = 180.0
"""A safety deadline only (the full suite's load can slow 200 sends a lot)."""


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def fake() -> Iterator[FakeFutureSms]:
    with FakeFutureSms() as server:
        yield server


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Callable[[FakeFutureSms], Server]]:
    """Start ``receiver serve`` sending through a fake; its ``public_base_url`` is its
    own address, so the orders' ``dlr_address`` leads back to it."""
    started: list[Server] = []

    def start(fake: FakeFutureSms) -> Server:
        port = free_port()
        settings = {
            "public_base_url": f"http://127.0.0.1:{port}",
            "outbox": FAST,
            "send_rate_limits": {"sender": {"per_second": 1000, "burst": 1000}},
        }
        providers = {"fs": {"type": "futuresms", "url_token": TOKEN, **fake.config_keys()}}
        workdir = tmp_path / f"receiver{len(started)}"
        workdir.mkdir()
        server = Server(workdir, write_config(workdir, settings, providers))
        started.append(server)
        return server.start(port=port)

    yield start
    for server in started:
        server.stop(signal.SIGKILL)


def send(client: httpx.Client, to: str, **template: Any) -> str:
    """Queue a template message through the API; its id."""
    payload = {"provider": "fs", "to": to, "template": {"id": "TPL1001", **template}}
    answer = client.post(
        "/v1/messages", json=payload, headers={"idempotency-key": str(uuid.uuid4())}
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def until(condition: Callable[[], Any], what: str) -> Any:
    """Poll ``condition`` until it returns something true (a safety timeout only)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def handed_over(client: httpx.Client, message_id: str) -> list[dict[str, Any]]:
    events = client.get(f"/v1/messages/{message_id}/events").json()["items"]
    return [e for e in events if e["event_id"].endswith(":sent_to_provider")]


def outbox_attempts(server: Server, message_id: str) -> int:
    [row] = stored_rows(server, "SELECT attempts FROM outbox WHERE message_id = ?", (message_id,))
    return int(row["attempts"])


# --------------------------------------------------------------------------- the fake


def test_the_fake_answers_as_futuresms_documents(fake: FakeFutureSms) -> None:
    with httpx.Client(base_url=fake.base_url) as api:
        refused = api.post("/api/v1/auth/login", json={"username": "api-user", "password": "x"})
        login = api.post(
            "/api/v1/auth/login", json={"username": "api-user", "password": "fake-password"}
        )
        pair = login.json()["data"]
        headers = {"authorization": f"Bearer {pair['access_token']}"}
        order = {
            "phone_number": "+639171234567",
            "template_id": "TPL1001",
            "sender_id": "SID-1",
            "var": "FutureSMS",
            "client_order_id": "client-ord-20260325-0001",
        }
        taken = api.post("/api/v1/sms/sends", json=order, headers=headers)
        repeated = api.post("/api/v1/sms/sends", json=order, headers=headers)
        invalid = api.post("/api/v1/sms/sends", json={**order, "var": "x" * 25}, headers=headers)
        order_id = taken.json()["data"]["order_id"]
        tracked = api.get(f"/api/v1/sms/orders/{order_id}", headers=headers)
        unknown = api.get("/api/v1/sms/orders/SDPS0000", headers=headers)
        rotated = api.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        reused = api.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        old_access = api.get(f"/api/v1/sms/orders/{order_id}", headers=headers)

    assert refused.status_code == 401 and refused.json()["reason"] == "INVALID_CREDENTIALS"
    assert login.status_code == 200 and pair["access_token_expires_at"].endswith("Z")
    assert taken.status_code == 202
    assert taken.json()["data"]["order_status"] == "pending"
    assert taken.json()["data"]["message_status"] is None
    assert repeated.status_code == 409
    body = repeated.json()
    assert {k: body[k] for k in ("error_code", "reason", "message", "details", "path")} == {
        "error_code": "CONFLICT",
        "reason": None,
        "message": "Conflict",
        "details": "client_order_id already exists for this merchant",
        "path": "/api/v1/sms/sends",
    }
    assert body["timestamp"].endswith("Z") and body["request_id"]
    assert (invalid.status_code, invalid.json()["error_code"]) == (422, "VALIDATION_ERROR")
    assert tracked.json()["data"]["client_order_id"] == "client-ord-20260325-0001"
    assert unknown.status_code == 404
    assert rotated.status_code == 200 and reused.status_code == 401  # rotation: spent
    assert old_access.status_code == 401 and old_access.json()["reason"] == "TOKEN_EXPIRED"
    assert len(fake.orders) == 1 and fake.counts.conflicts == 1
    assert fake.counts.refused_refreshes == 1


# --------------------------------------------------------------------------- through serve


def test_conflict_after_a_dropped_answer_marks_it_handed_over_and_its_report_completes_it(
    fake: FakeFutureSms, receiver: Callable[[FakeFutureSms], Server]
) -> None:
    fake.dlr_statuses = ()  # the report comes when the test says
    fake.on_send(Drop())  # FutureSMS takes the order; its answer never arrives
    server = receiver(fake)
    with server.api(server.staff_token("fs-sender", "sender")) as client:
        message_id = send(client, "+639171230001", variables={"var": "Alice"})
        [event] = until(lambda: handed_over(client, message_id), "the hand-over")
        before = client.get(f"/v1/messages/{message_id}").json()

        [order] = fake.orders
        reported = fake.report(order.order_id, "DELIVRD")
        after = client.get(f"/v1/messages/{message_id}").json()

    calls = fake.send_calls
    assert [call.client_order_id for call in calls] == [message_id, message_id]
    assert order.client_order_id == message_id and fake.counts.conflicts == 1
    assert (order.template_id, order.sender_id, order.var) == ("TPL1001", "SID-1", "Alice")
    assert order.dlr_address == f"{server.base_url}/webhooks/fs?token={TOKEN}"
    assert event["provider_status"] == "CONFLICT" and event["status"] == "queued"
    assert before["provider_message_id"] is None  # handed over, its order id not yet known
    assert reported.status_code == 200 and reported.json()["status"] == "ok"
    assert after["provider_message_id"] == order.order_id
    assert (after["status"], after["report_count"]) == ("delivered", 1)


def test_a_refused_refresh_is_followed_by_a_login_in_the_same_attempt(
    fake: FakeFutureSms, receiver: Callable[[FakeFutureSms], Server]
) -> None:
    server = receiver(fake)
    with server.api(server.staff_token("fs-sender", "sender")) as client:
        first = send(client, "+639171230002")
        until(lambda: handed_over(client, first), "the first hand-over")
        fake.end_sessions()  # the access token and the refresh token are both refused now
        second = send(client, "+639171230003")
        until(lambda: handed_over(client, second), "the second hand-over")

    assert len(fake.orders) == 2
    assert (fake.counts.logins, fake.counts.refused_refreshes) == (2, 1)
    assert fake.counts.expired_tokens == 1
    assert outbox_attempts(server, second) == 1  # 401, refresh refused, login, sent


def test_content_that_does_not_fit_futuresms_is_refused_before_sending(
    fake: FakeFutureSms, receiver: Callable[[FakeFutureSms], Server]
) -> None:
    server = receiver(fake)
    with server.api(server.staff_token("fs-sender", "sender")) as client:
        to = "+639171230004"
        body = client.post(
            "/v1/messages", json={"to": to, "body": "hi", "client_reference": "r" * 12}
        )
        two = client.post(
            "/v1/messages",
            json={
                "to": to,
                "template": {"id": "TPL1001", "variables": {"1": "a", "2": "b"}},
                "client_reference": "r" * 13,
            },
        )
    assert (body.status_code, body.json()["field"]) == (422, "body")
    assert (two.status_code, two.json()["field"]) == (422, "template.variables")
    assert fake.send_calls == []


def test_200_sends_half_with_faults_make_exactly_200_orders_each_linked_to_its_report(
    fake: FakeFutureSms, receiver: Callable[[FakeFutureSms], Server]
) -> None:
    numbers = [f"+63917123{i:04d}" for i in range(200)]
    faults: list[tuple[Any, ...]] = [
        *[(Drop(),)] * 30,  # took the order, the answer was lost: the retry gets CONFLICT
        *[(Fail(500, record=True),)] * 20,  # took the order, then answered 500
        *[(Stall(1.0),)] * 10,  # took it, answered after our read timeout
        *[(Fail(503),)] * 20,  # took nothing: the retry is the order
        *[(Throttle("1"),)] * 10,  # 429 with Retry-After
        *[(Fail(502), Drop())] * 10,  # two faults in a row
    ]
    for number, behaviours in zip(numbers[::2], faults, strict=True):
        fake.on_send_to(number, *behaviours)
    server = receiver(fake)

    with server.api(server.staff_token("fs-sender", "sender")) as client:
        message_ids = {}
        for index, number in enumerate(numbers):
            if index in (50, 100, 150):
                fake.expire_access_tokens()  # 401s mid-run: one refresh, then on
            message_ids[send(client, number, variables={"var": f"#{index}"})] = number
        fake.wait_for_reports(200, timeout=WAIT)
        listed = client.get(
            "/v1/messages", params={"provider": "fs", "status": "delivered", "limit": 200}
        ).json()["items"]

    orders = fake.orders
    assert len(orders) == 200  # exactly one order per business action
    assert {order.client_order_id for order in orders} == set(message_ids)
    assert all(order.phone_number == message_ids[order.client_order_id] for order in orders)
    by_reference = {order.client_order_id: order for order in orders}
    assert len(listed) == 200
    for message in listed:  # each linked to its order, and completed by its report
        order = by_reference[message["id"]]
        assert message["provider_message_id"] == order.order_id
        assert message["report_count"] == 1
    # An order taken whose answer was lost is settled by the retry's CONFLICT, or, when
    # its DLR (naming our client_order_id) comes first, by the report itself: either way
    # one order. Both happen in a run this size.
    assert fake.counts.conflicts >= 1
    assert all(post.status_code == 200 for post in fake.dlr_posts)  # no report was refused
    # One login, renewed by refreshes; another login only after an answer the client
    # never read (a refresh timed out under load: its token pair is unused).
    assert fake.counts.logins == 1 + fake.unused_sessions()
    assert fake.counts.refused_refreshes == 0
    assert fake.counts.refreshes >= 1 and fake.counts.expired_tokens >= 1
