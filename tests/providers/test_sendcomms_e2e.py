"""SendComms webhooks end to end through a real ``receiver serve``: signed as SendComms
signs them, applied, redeliveries counted as duplicates, and a missing, garbled or wrong
``X-SendComms-Signature`` refused with 401 saying which check failed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from conftest import Server, running_server

from receiver.testing import FakeSendComms, sendcomms_event, sendcomms_request

SECRET = "whsec_5d0c3b9e6a7f41c2b8e9d0a1f2c3b4a5e6f70819"
OLD_SECRET = "our-previous-webhook-secret"
SENT_AT = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    providers = {"sendcomms": {"type": "sendcomms", "secrets": [SECRET, OLD_SECRET]}}
    with running_server(tmp_path_factory, "sendcomms", providers=providers) as started:
        yield started


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return server.staff_token("support", "sender")  # sees numbers whole


def message(server: Server, token: str, transaction_id: str) -> dict[str, object]:
    with server.api(token) as api:
        answer = api.get("/v1/messages", params={"provider_message_id": transaction_id})
        [item] = answer.json()["items"]
        return dict(item)


def events(server: Server, token: str, message_id: object) -> list[dict[str, object]]:
    with server.api(token) as api:
        return list(api.get(f"/v1/messages/{message_id}/events").json()["items"])


def test_signed_reports_are_applied_and_redeliveries_are_duplicates(server, token):
    txn = "sms_mk1a2b3c_0a1b2c3d4e5f"
    sent = sendcomms_event("sms.sent", txn, timestamp=SENT_AT, message_id="SM" + "1" * 32)
    delivered = sendcomms_event("sms.delivered", txn, timestamp=SENT_AT + timedelta(seconds=8))
    # The same delivery posted again later, built afresh with a new timestamp.
    again = sendcomms_event("sms.delivered", txn, timestamp=SENT_AT + timedelta(minutes=5))

    answers = [
        server.post(sendcomms_request(SECRET, delivered)),  # out of order: delivered first
        server.post(sendcomms_request(SECRET, sent)),
        server.post(sendcomms_request(SECRET, delivered)),
        server.post(sendcomms_request(OLD_SECRET, again)),  # the old secret still verifies
    ]

    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    counts = [
        (a.json()["applied"], a.json()["superseded"], a.json()["duplicates"]) for a in answers
    ]
    assert counts == [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, 1)]
    record = message(server, token, txn)
    assert (record["status"], record["final"], record["to"]) == ("delivered", True, "+233540800994")
    timeline = events(server, token, record["id"])
    assert [(e["provider_status"], e["status"], e["deliveries"]) for e in timeline] == [
        ("sms.sent", "sent", 1),
        ("sms.delivered", "delivered", 3),
    ]
    assert timeline[1]["occurred_at"] == "2026-12-04T09:30:08Z"


def test_a_failed_send_records_the_error_text(server, token):
    txn = "sms_mk1a2b3c_ffffffffffff"
    failed = sendcomms_event("sms.failed", txn, error="Africa SMS server unavailable")
    assert server.post(sendcomms_request(SECRET, failed)).json()["applied"] == 1
    record = message(server, token, txn)
    assert (record["status"], record["error_code"], record["error_message"]) == (
        "failed",
        None,
        "Africa SMS server unavailable",
    )


def test_other_services_events_are_acknowledged_and_store_nothing(server):
    answer = server.post(sendcomms_request(SECRET, sendcomms_event("email.delivered", "txn_1")))
    assert answer.status_code == 200
    assert answer.json() == {"received": 0, "applied": 0, "duplicates": 0, "superseded": 0}


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "SIGNATURE_MISSING"),
        ("sha256=not-hex", "SIGNATURE_MALFORMED"),
        ("sha256=" + "ab" * 32, "SIGNATURE_INVALID"),
    ],
)
def test_a_bad_signature_is_refused(server, header: str | None, code: str):
    txn = "sms_mk1a2b3c_badbadbadbad"
    request = sendcomms_request(SECRET, sendcomms_event("sms.delivered", txn))
    headers = {k: v for k, v in request.headers.items() if k != "x-sendcomms-signature"}
    if header is not None:
        headers["x-sendcomms-signature"] = header
    answer = server.post(replace(request, headers=headers))
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == code
    assert request.headers["x-sendcomms-signature"][7:] not in answer.text


def test_a_report_signed_with_an_unknown_secret_changes_nothing(server, token):
    txn = "sms_mk1a2b3c_000000000001"
    genuine = sendcomms_request(SECRET, sendcomms_event("sms.sent", txn))
    forged = sendcomms_request("someone-elses-secret-123", sendcomms_event("sms.failed", txn))
    assert server.post(genuine).status_code == 200
    assert server.post(forged).status_code == 401
    assert message(server, token, txn)["status"] == "sent"


def test_signed_nonsense_is_a_400_naming_the_field(server):
    answer = server.post(sendcomms_request(SECRET, b'{"event": "sms.sent"}'))
    assert (answer.status_code, answer.json()["field"]) == (400, "transaction_id")


def test_a_form_body_is_415(server):
    request = sendcomms_request(SECRET, sendcomms_event("sms.sent", "sms_1"))
    form = replace(request, headers={**request.headers, "content-type": "text/plain"})
    assert server.post(form).status_code == 415


def test_the_fake_posts_a_later_report_signed_as_sendcomms_does(server, token):
    # FakeSendComms(delivery_reports=False) leaves the delivery report to the test.
    url = f"{server.base_url}/webhooks/sendcomms"
    txn = "sms_mk1a2b3c_0000000000aa"
    with FakeSendComms(webhook_url=url, webhook_secret=OLD_SECRET) as fake:
        answer = fake.post_webhook(sendcomms_event("sms.delivered", txn))
    assert (answer.status_code, answer.json()["applied"]) == (200, 1)
    assert message(server, token, txn)["status"] == "delivered"
