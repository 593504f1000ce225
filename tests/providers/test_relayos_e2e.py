"""``relayos`` end to end: real ``receiver serve`` processes on loopback, and the fake
RelayOS API (``receiver.testing.fake_relayos``) for sends and their status callbacks.

Reports carry the url_token as RelayOS carries it (in the ``callbackUrl``'s query);
sends go through ``POST /v1/messages`` and the outbox worker inside ``receiver serve``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Server, ServerFactory, run_cli, running_server

from receiver.testing import relayos_report, relayos_request
from receiver.testing.fake_relayos import Behaviour, Drop, Fail, FakeRelayOS, Stall, Throttle

TOKEN = "tok_" + "Wh4tsApp" * 4
API_KEY = "rly_live_4f9c2a7d51e84b0c96ad2f4e7b1c3d58"
PROVIDERS = {
    "relayos": {  # sends to a closed port: nothing queued in this module goes out
        "type": "relayos",
        "url_token": TOKEN,
        "api_key": API_KEY,
        "api_base_url": "http://127.0.0.1:9",
    },
    "relayos-office": {"type": "relayos", "allowed_ips": ["203.0.113.0/24"]},
    "relayos-local": {"type": "relayos", "allowed_ips": ["127.0.0.1/32"]},
}
ROOMY = {"send_rate_limits": {"sender": {"per_second": 1000, "burst": 1000}}}
OUTBOX = {
    "connect_timeout_seconds": 1,
    "read_timeout_seconds": 2,
    "poll_seconds": 0.05,
    "backoff_seconds": 0.05,
    "backoff_max_seconds": 0.5,
}
TEMPLATE = {"id": "lembrete_consulta", "language": "pt_BR", "variables": {"1": "João Silva"}}
WAIT = 60.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory, "relayos", ROOMY, PROVIDERS) as started:
        yield started


@pytest.fixture(scope="module")
def viewer(server: Server) -> Iterator[httpx.Client]:
    with server.api(server.staff_token("relayos-viewer")) as client:
        yield client


def callback(message_id: str, status: str, **fields: Any) -> Any:
    return relayos_request(
        relayos_report(message_id, status, **fields), url_token=TOKEN, provider="relayos"
    )


def stored(api: httpx.Client, provider_message_id: str) -> list[dict[str, Any]]:
    answer = api.get("/v1/messages", params={"provider_message_id": provider_message_id})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


# --------------------------------------------------------------------------- reports


def test_tokened_reports_are_applied_and_a_redelivery_is_a_duplicate(server, viewer):
    message_id = "msg_01hwz3k8j2fxqbv9r4tp6d"
    sent = server.post(callback(message_id, "SENT"))
    delivered = callback(message_id, "DELIVERED")
    first = server.post(delivered)
    again = server.post(delivered)
    read = server.post(callback(message_id, "READ"))

    assert (sent.status_code, sent.json()["applied"]) == (200, 1)
    assert first.json() == {"received": 1, "applied": 1, "duplicates": 0, "superseded": 0}
    assert again.json() == {"received": 1, "applied": 0, "duplicates": 1, "superseded": 0}
    assert read.json()["superseded"] == 1  # READ is delivered too: nothing to change
    [message] = stored(viewer, message_id)
    assert (message["provider"], message["status"], message["final"]) == (
        "relayos",
        "delivered",
        True,
    )
    events = viewer.get(f"/v1/messages/{message['id']}/events").json()["items"]
    assert [event["provider_status"] for event in events] == ["SENT", "DELIVERED", "READ"]
    assert [event["deliveries"] for event in events] == [1, 2, 1]


def test_read_alone_counts_as_delivered_and_failed_as_failed(server, viewer):
    server.post(callback("msg_01hwz4m2gxf7ws3u9rp8zd5cne", "READ"))
    server.post(callback("msg_01hwz5n3hyg8xt4v0sq9ae6dnf", "FAILED"))
    [read] = stored(viewer, "msg_01hwz4m2gxf7ws3u9rp8zd5cne")
    [failed] = stored(viewer, "msg_01hwz5n3hyg8xt4v0sq9ae6dnf")
    assert read["status"] == "delivered"
    assert (failed["status"], failed["final"]) == ("failed", True)


def test_a_report_without_the_token_or_with_another_is_refused(server, viewer):
    good = callback("msg_01hwz6p4jzh9yv5w1tr0bf7eog", "DELIVERED")
    missing = server.post(relayos_request(json.loads(good.body), provider="relayos"))
    wrong = server.post(
        relayos_request(json.loads(good.body), url_token="tok_" + "x" * 28, provider="relayos")
    )

    assert (missing.status_code, missing.json()["code"]) == (401, "SIGNATURE_MISSING")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "SIGNATURE_INVALID")
    assert TOKEN not in missing.text + wrong.text
    assert stored(viewer, "msg_01hwz6p4jzh9yv5w1tr0bf7eog") == []


def test_allowed_ips_guard_a_provider_without_a_token(server, viewer):
    report = relayos_report("msg_01hwz7q5k0j0zw6x2vs1cg8fph", "SENT")
    outside = server.post(relayos_request(report, provider="relayos-office"))
    inside = server.post(relayos_request(report, provider="relayos-local"))
    assert (outside.status_code, outside.json()["code"]) == (401, "SOURCE_NOT_ALLOWED")
    assert (inside.status_code, inside.json()["applied"]) == (200, 1)


def test_a_tokened_report_that_is_not_relayos_json_is_a_400_naming_the_field(server):
    report = relayos_report("msg_01hwz8r6m1k1aw7y3wt2dh9gqj", "SENT", occurred_at=None)
    report["occurred_at"] = "ontem"
    answer = server.post(relayos_request(report, url_token=TOKEN, provider="relayos"))
    assert (answer.status_code, answer.json()["field"]) == (400, "occurred_at")


def test_replay_resign_puts_the_token_back(server, server_factory: ServerFactory, tmp_path):
    message_id = "msg_01hwz9s7n2m2bx8z4xv3ej0hrk"
    assert server.post(callback(message_id, "DELIVERED")).status_code == 200
    export = run_cli("export", "--config", str(server.config_path), "--provider", "relayos")
    lines = [json.loads(line) for line in export.stdout.splitlines()]
    [record] = [line for line in lines if message_id in line["body"]]
    assert record["path"] == "/webhooks/relayos?token=REDACTED"

    target = server_factory(providers={"relayos": PROVIDERS["relayos"]})
    capture = tmp_path / "capture.jsonl"
    capture.write_text(json.dumps(record) + "\n")
    replayed = run_cli(
        "replay",
        str(capture),
        "--url",
        target.base_url,
        "--resign",
        "--config",
        str(target.config_path),
    )
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    with target.api(target.staff_token("v")) as api:
        [message] = stored(api, message_id)
    assert message["status"] == "delivered"


# --------------------------------------------------------------------------- what may be sent


@pytest.fixture(scope="module")
def sender(server: Server) -> Iterator[httpx.Client]:
    with server.api(server.staff_token("relayos-sender", "sender")) as client:
        yield client


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"body": "Olá"}, "body"),
        ({"template": {"id": "lembrete_consulta"}}, "template.language"),
        ({"template": {"id": "lembrete_consulta", "language": "pt-BR"}}, "template.language"),
        ({"template": {**TEMPLATE, "variables": {"nome": "João"}}}, "template.variables"),
        ({"template": {**TEMPLATE, "id": "Lembrete"}}, "template.id"),
        ({"template": TEMPLATE, "sender": "ACME"}, "sender"),
    ],
    ids=["body", "no-language", "hyphen", "named-variable", "name", "sender"],
)
def test_what_relayos_cannot_send_is_a_422_naming_the_field(
    sender: httpx.Client, fields: dict[str, Any], field: str
) -> None:
    answer = sender.post(
        "/v1/messages",
        json={"provider": "relayos", "to": "+5511999998888", **fields},
        headers={"Idempotency-Key": f"refused-{field}-{time.monotonic_ns()}"},
    )
    assert answer.status_code == 422, answer.text
    assert (answer.json()["code"], answer.json()["field"]) == ("REQUEST_INVALID", field)


# --------------------------------------------------------------------------- sending


def sending_server(server_factory: ServerFactory, fake: FakeRelayOS, **outbox: float) -> Server:
    """A receiver that sends through ``fake``, whose project posts callbacks to it (set
    with PUT /v1/projects/me/meta-credentials, as RelayOS's setup says)."""
    provider = {"type": "relayos", "url_token": TOKEN, **fake.config_keys()}
    settings = {**ROOMY, "outbox": {**OUTBOX, **outbox}}
    server = server_factory(settings=settings, providers={"relayos": provider})
    setup = httpx.put(
        f"{fake.base_url}/v1/projects/me/meta-credentials",
        json={
            "metaPhoneNumberId": "1234567890",
            "metaAccessToken": "EAAGm0PX4ZCpsBA",
            "callbackUrl": f"{server.base_url}/webhooks/relayos?token={TOKEN}",
        },
        headers={"authorization": f"Bearer {fake.api_key}"},
    )
    assert setup.status_code == 200, setup.text
    return server


def send(api: httpx.Client, index: int) -> str:
    answer = api.post(
        "/v1/messages",
        json={"to": f"+5511980{index:06d}", "template": TEMPLATE},
        headers={"Idempotency-Key": f"action-{index}"},
    )
    assert answer.status_code == 202, answer.text
    message_id: str = answer.json()["id"]
    return message_id


def all_settled(api: httpx.Client, message_ids: list[str]) -> list[dict[str, Any]]:
    """The relayos messages, once every one of ``message_ids`` is delivered with
    RelayOS's id and no other record is left (a safety timeout only)."""
    deadline = time.monotonic() + WAIT
    while True:
        page = api.get("/v1/messages", params={"provider": "relayos", "limit": 200}).json()
        items: list[dict[str, Any]] = page["items"]
        done = {m["id"] for m in items if m["status"] == "delivered" and m["provider_message_id"]}
        settled = done >= set(message_ids) and len(items) == len(message_ids)
        if settled or time.monotonic() > deadline:
            assert page["next_cursor"] is None  # never more records than messages
            return items
        time.sleep(0.1)


def test_a_lost_answer_is_settled_by_relayos_replaying_the_key(server_factory: ServerFactory):
    with FakeRelayOS() as fake:
        server = sending_server(server_factory, fake, read_timeout_seconds=15)
        # RelayOS queues the message and its answer is lost; the answer to the resend
        # under the same key is held until the message's reports have come in.
        fake.on_send(Drop(), Stall(None))
        with server.api(server.staff_token("s", "sender")) as api:
            message_id = send(api, 0)
            fake.wait_for_sends(2)
            [queued] = fake.messages
            reports = [fake.report(queued.id, status) for status in ("SENT", "DELIVERED")]
            fake.release()
            [message] = all_settled(api, [message_id])
            events = api.get(f"/v1/messages/{message_id}/events").json()["items"]

    assert [report.json()["applied"] for report in reports] == [1, 1]
    assert fake.calls_with_key(message_id) == 2  # the resend under the same key ...
    assert [m.id for m in fake.messages] == [queued.id]  # ... got the original back
    assert (message["id"], message["provider_message_id"]) == (message_id, queued.id)
    assert message["status"] == "delivered"
    # The reports came before we knew RelayOS's id; they are this message's now.
    assert [e["provider_status"] for e in events if e["source"] == "webhook"] == [
        "SENT",
        "DELIVERED",
    ]


FAULTS: tuple[Behaviour, ...] = (
    Drop(),  # queued, then the connection closes unanswered
    Fail(503, record=True),  # queued, then a 5xx
    Fail(500),  # a 5xx before anything was queued
    Throttle("1"),  # 429 with Retry-After
)


def test_200_business_actions_half_with_a_fault_make_200_messages_linked_to_their_reports(
    server_factory: ServerFactory,
):
    actions = 200
    with FakeRelayOS(lifecycle=("SENT", "DELIVERED")) as fake:
        server = sending_server(server_factory, fake)
        # The first attempt of every other action meets one of the faults in turn.
        fake.on_new_keys(*(FAULTS[i // 2 % 4] if i % 2 == 0 else None for i in range(actions)))
        with server.api(server.staff_token("s", "sender")) as api:
            message_ids = [send(api, index) for index in range(actions)]
            messages = all_settled(api, message_ids)
        fake.wait_for_callbacks(2 * actions, timeout=WAIT)

    queued = fake.messages
    assert len(queued) == actions  # exactly one WhatsApp message per business action
    assert sorted(m.idempotency_key or "" for m in queued) == sorted(message_ids)
    assert len(messages) == actions  # no record left over from a report that came first
    for message in messages:
        assert message["status"] == "delivered", message
        assert message["provider_message_id"] == fake.message_for_key(message["id"]).id
    assert {callback.http_status for callback in fake.callbacks} == {200}
    retried = sum(not call.new_key for call in fake.send_calls)
    assert retried >= actions // 2  # every faulted action was tried again
