"""Smstools end to end, through a real ``receiver serve`` on loopback.

Reports: ``delivery_report`` webhooks carrying the ``url_token`` in their URL (Smstools
signs nothing) are applied, redeliveries are duplicates, a missing or wrong token is a
401, and ``receiver simulate`` streams in Smstools' format verify.

Sends: 200 business actions through ``POST /v1/messages`` and the worker inside
``receiver serve`` to ``FakeSmstools``, half of them with a fault Smstools can show.
Smstools has no idempotency key and no lookup by our reference, so every send that may
have reached it is *held* for a person, never resent; its delivery report (which echoes
our reference) completes it, and one it never took is sent again with
``receiver outbox resend``. The provider ends with exactly 200 messages, one per action,
each linked to its report.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import Server, ServerFactory, run_cli, running_server, stored_rows

from receiver.providers.base import Accepted, Deferred, Rejected, Unknown
from receiver.providers.smstools import SmstoolsConfig, SmstoolsProvider
from receiver.records import OutboxItem
from receiver.testing import smstools_report, smstools_request
from receiver.testing.fake_smstools import Busy, Drop, Fail, FakeSmstools, Reject

TOKEN = "tok_" + "Vb3k9QmX2pLr" * 3
PROVIDERS = {"smstools": {"type": "smstools", "url_token": TOKEN}}
FAST = {
    "connect_timeout_seconds": 0.5,
    "read_timeout_seconds": 2.0,
    "poll_seconds": 0.05,
    "backoff_seconds": 0.05,
    "backoff_max_seconds": 0.2,
}
ROOMY = {"sender": {"per_second": 1000, "burst": 1000}}
WAIT = 40.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory, "smstools", providers=PROVIDERS) as started:
        yield started


@pytest.fixture(scope="module")
def viewer(server: Server) -> Iterator[httpx.Client]:
    with server.api(server.staff_token("smstools-reader", "sender")) as client:  # whole numbers
        yield client


def stored(viewer: httpx.Client, messageid: str) -> dict[str, Any]:
    found = viewer.get(
        "/v1/messages", params={"provider": "smstools", "provider_message_id": messageid}
    )
    assert found.status_code == 200, found.text
    [message] = found.json()["items"]
    return dict(message)


# --- reports --------------------------------------------------------------------------------


def test_a_report_with_the_token_is_applied_and_a_redelivery_is_a_duplicate(server, viewer):
    submitted = smstools_report("q0dmxv2c6n1f8rj4h7skz5w3ptb9ya", "0", receiver="32470111222")
    delivered = smstools_report("q0dmxv2c6n1f8rj4h7skz5w3ptb9ya", "1", receiver="32470111222")
    first = server.post(smstools_request([submitted, delivered], token=TOKEN, provider="smstools"))
    again = server.post(smstools_request([delivered], token=TOKEN, provider="smstools"))
    # Smstools' retry may carry a new webhook_id: still the same report.
    retried = {**delivered, "webhook_id": "wh_00000000-0000-4000-8000-000000000000"}
    third = server.post(smstools_request(retried, token=TOKEN, provider="smstools"))

    assert first.status_code == 200, first.text
    assert first.json() == {"received": 2, "applied": 2, "duplicates": 0, "superseded": 0}
    assert again.json()["duplicates"] == 1 and third.json()["duplicates"] == 1
    message = stored(viewer, "q0dmxv2c6n1f8rj4h7skz5w3ptb9ya")
    assert (message["status"], message["to"], message["report_count"]) == (
        "delivered",
        "+32470111222",
        2,
    )


def test_a_failure_keeps_its_detail_code(server, viewer):
    report = smstools_report(
        "z8yxw7vu6ts5rq4po3nm2lk1jihgfe",
        "5",
        detail="10",
        detail_description="Receiver number is invalid or unknown",
    )
    answer = server.post(smstools_request(report, token=TOKEN, provider="smstools"))

    assert answer.status_code == 200, answer.text
    message = stored(viewer, "z8yxw7vu6ts5rq4po3nm2lk1jihgfe")
    assert (message["status"], message["error_code"], message["error_message"]) == (
        "rejected",
        "10",
        "Receiver number is invalid or unknown",
    )


@pytest.mark.parametrize(
    ("token", "code"),
    [(None, "SIGNATURE_MISSING"), ("tok_" + "x" * 36, "SIGNATURE_INVALID")],
    ids=["missing", "wrong"],
)
def test_a_report_without_the_token_is_refused(server, viewer, token, code):
    report = smstools_report("m4n5b6v7c8x9z0l1k2j3h4g5f6d7s8", "1")

    answer = server.post(smstools_request(report, token=token, provider="smstools"))

    assert (answer.status_code, answer.json()["code"]) == (401, code)
    assert TOKEN not in answer.text
    unknown = {"provider_message_id": "m4n5b6v7c8x9z0l1k2j3h4g5f6d7s8"}
    assert viewer.get("/v1/messages", params=unknown).json()["items"] == []


def test_other_webhook_types_are_acknowledged_without_reports(server):
    inbox = {"webhook_id": "wh_9", "webhook_type": "inbox_message", "message": {}}
    answer = server.post(smstools_request([inbox], token=TOKEN, provider="smstools"))
    assert (answer.status_code, answer.json()["received"]) == (200, 0)


def test_a_bad_payload_with_the_token_names_the_field(server):
    report = smstools_report("p1o2i3u4y5t6r7e8w9q0a1s2d3f4g5", "1")
    report["message"]["delivery_code"] = "delivered"
    answer = server.post(smstools_request(report, token=TOKEN, provider="smstools"))
    assert (answer.status_code, answer.json()["field"]) == (400, "[0].message.delivery_code")


def test_a_simulated_stream_verifies(server):
    token = server.staff_token("smstools-simulator")
    result = run_cli(
        *("simulate", "--url", server.base_url, "--config", str(server.config_path)),
        *("--provider", "smstools", "--messages", "16", "--duplicates", "0.3", "--shuffle"),
        *("--seed", "7", "--start", "2026-11-20T08:00:00Z", "--verify-token", token),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "16 of 16 messages match, 0 mismatches" in result.stdout


# --- 200 sends with faults ------------------------------------------------------------------


def outbox_states(server: Server) -> dict[str, str]:
    rows = stored_rows(server, "SELECT message_id, state FROM outbox")
    return {row["message_id"]: row["state"] for row in rows}


def held_ids(server: Server) -> set[str]:
    """``receiver outbox held``: one line per held message, its id first."""
    listed = run_cli("outbox", "held", "--config", str(server.config_path))
    assert listed.returncode == 0, listed.stderr
    return {line.split("\t")[0] for line in listed.stdout.splitlines()}


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT  # a safety net only: nothing here measures speed
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.05)


def settled(server: Server, count: int) -> Callable[[], bool]:
    """Every one of ``count`` outbox rows is done or held (none waits or is in flight)."""

    def check() -> bool:
        states = outbox_states(server)
        return len(states) == count and set(states.values()) <= {"done", "held"}

    return check


FAULTS = [Drop()] * 30 + [Fail(500, record=True)] * 30 + [Fail(503)] * 10 + [Busy()] * 30
"""Half the actions: lost answers and 5xx after Smstools took the message (in doubt),
a 5xx before it took it (in doubt too: we cannot tell), and its error 105 ("try again
later": not taken, so retried)."""


async def test_200_sends_with_faults_reach_smstools_exactly_once_each(
    server_factory: ServerFactory,
) -> None:
    with FakeSmstools() as fake:
        table = {**PROVIDERS["smstools"], **fake.config_keys(), "sender": "PARCELS"}
        server = server_factory({"outbox": FAST, "send_rate_limits": ROOMY}, {"smstools": table})
        fake.webhook_url = f"{server.base_url}/webhooks/smstools?token={TOKEN}"
        texts = [f"Order {i:03d}: your parcel arrives today" for i in range(200)]
        faults = dict(zip(random.Random(18).sample(texts, 100), FAULTS, strict=True))
        for text, fault in faults.items():
            fake.on_message(text, fault)
        headers = {"Authorization": f"Bearer {server.staff_token('shop', 'sender')}"}

        async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as api:
            ids = await send_all(api, texts)
            by_fault = {kind: {ids[t] for t, f in faults.items() if f == kind} for kind in FAULTS}
            took_then_failed = by_fault[Drop()] | by_fault[Fail(500, record=True)]
            never_took = by_fault[Fail(503)]

            # Every send that may have reached Smstools is held, none is resent.
            await until(settled(server, 200), "every send is done or held")
            assert held_ids(server) == took_then_failed | never_took
            held = (await api.get(f"/v1/messages/{next(iter(never_took))}")).json()
            assert (held["status"], held["error_code"]) == ("unknown", "SEND_IN_DOUBT")
            assert len(fake.messages) == 190  # all but the 10 it never took

            # Its reports echo our reference: they complete the held messages.
            answers = await asyncio.to_thread(fake.report_all, "0", "1")
            assert {a.status_code for a in answers} == {200}
            assert held_ids(server) == never_took

            # A person checks with Smstools that it never took these, and sends them again.
            config = server.config_path
            for message_id in sorted(never_took):
                resend = run_cli("outbox", "resend", message_id, "--config", str(config))
                assert (resend.returncode, resend.stdout) == (0, f"{message_id}: queued again\n")
            await until(lambda: len(fake.messages) == 200, "the resent ones are taken")
            await until(settled(server, 200), "every send is done")
            await asyncio.to_thread(fake.report_all, "0", "1")
            assert held_ids(server) == set()

            records = await asyncio.gather(*(api.get(f"/v1/messages/{i}") for i in ids.values()))
            events = [api.get(f"/v1/messages/{m}/events") for m in took_then_failed]
            timelines = [answer.json()["items"] for answer in await asyncio.gather(*events)]

    # Exactly 200 messages at Smstools, one per business action.
    taken = {message.reference: message for message in fake.messages}
    assert len(fake.messages) == len(taken) == 200 and set(taken) == set(ids.values())
    # Retried only where Smstools said it took nothing; held ones were never resent blindly.
    calls = {m: fake.sends_of(m) for m in ids.values()}
    retried = by_fault[Busy()] | never_took
    assert {m for m, n in calls.items() if n == 2} == retried
    assert {m for m, n in calls.items() if n == 1} == set(ids.values()) - retried
    # Every message is linked to its report: Smstools' id recorded, delivered.
    for answer in records:
        record = answer.json()
        assert record["provider_message_id"] == taken[record["id"]].messageid
        assert (record["status"], record["report_count"]) == ("delivered", 2), record
    for timeline in timelines:  # held, then completed by its reports
        steps = [(e["source"], e["status"]) for e in timeline]
        assert ("outbound", "unknown") in steps and ("webhook", "delivered") in steps
    assert outbox_states(server) == dict.fromkeys(ids.values(), "done")


async def send_all(api: httpx.AsyncClient, texts: list[str]) -> dict[str, str]:
    """``POST /v1/messages`` for every text (16 at a time); our message id per text."""
    gate = asyncio.Semaphore(16)

    async def send(index: int, text: str) -> tuple[str, str]:
        body = {"to": f"+3247{index:07d}", "body": text}
        async with gate:
            answer = await api.post(
                "/v1/messages", json=body, headers={"Idempotency-Key": f"order-{index}"}
            )
        assert answer.status_code == 202, answer.text
        return text, str(answer.json()["id"])

    pairs: list[Awaitable[tuple[str, str]]] = [send(i, t) for i, t in enumerate(texts)]
    return dict(await asyncio.gather(*pairs))


# --- the sender against the fake's answers --------------------------------------------------


def test_the_sender_reads_what_the_fake_answers() -> None:
    item = OutboxItem(
        message_id="msg_01JDX8Y2W3V4T5S6R7Q8P9N0M1",
        provider="smstools",
        to="+32470123456",
        body="Your parcel arrives today",
        sender="PARCELS",
        attempts=1,
        in_doubt=False,
        created_at=datetime.now(UTC),
    )
    with FakeSmstools() as fake, httpx.Client() as client:

        def attempt(**keys: str) -> object:
            table = {"type": "smstools", "url_token": TOKEN, **fake.config_keys(), **keys}
            sender = SmstoolsProvider("smstools", SmstoolsConfig.model_validate(table)).sender()
            assert sender is not None
            return sender.read_send(client.send(sender.send_request(item)))

        fake.on_send(Reject(400, "131", "This number is on your opt-out list."), Busy())
        refused, busy = attempt(), attempt()
        wrong_secret = attempt(api_key="not-the-secret")
        fake.on_send(Fail(502))
        failed = attempt()
        taken = attempt()

    assert refused == Rejected("131", "This number is on your opt-out list.")
    assert isinstance(busy, Deferred) and "105" in busy.reason
    assert isinstance(wrong_secret, Deferred) and "104" in wrong_secret.reason
    assert isinstance(failed, Unknown)
    [message] = fake.messages
    assert taken == Accepted(message.messageid, "accepted")
    assert (message.reference, message.to) == (item.message_id, "32470123456")
    assert message.sender == "PARCELS"
    assert fake.sends_of(item.message_id) == 4  # the wrong secret never reached the sends
