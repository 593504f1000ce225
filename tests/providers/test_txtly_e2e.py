"""Txtly reports end to end through a real ``receiver serve``: signed with the webhook's
signing secret, or tokened, applied once, redeliveries counted as duplicates, a bad
signature or token refused, and a provider that only sends refusing every report."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from conftest import Server, running_server

from receiver.providers.txtly import TxtlyConfig, TxtlyProvider
from receiver.testing import txtly_event, txtly_request
from receiver.testing.fake_txtly import EXAMPLE_API_KEY, EXAMPLE_SENDER_ID

SECRET = "whsec_9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a49"
RETIRED_SECRET = "whsec_1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d"
TOKEN = "tok_" + "Zt7k" * 7
PROVIDERS: dict[str, dict[str, Any]] = {
    "txtly": {"type": "txtly", "secrets": [SECRET]},
    "txtly-token": {"type": "txtly", "url_token": TOKEN},
    "txtly-both": {"type": "txtly", "secrets": [SECRET], "url_token": TOKEN},
    "txtly-send": {
        "type": "txtly",
        "api_key": EXAMPLE_API_KEY,
        "sender": EXAMPLE_SENDER_ID,
        "api_base_url": "http://127.0.0.1:9",  # never called: nothing is sent here
    },
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory, "txtly", providers=PROVIDERS) as started:
        yield started


@pytest.fixture(scope="module")
def viewer(server: Server) -> str:
    """A token that reads whole numbers (a viewer's are masked)."""
    return server.staff_token("txtly-reader", "sender")


def stored(server: Server, token: str, provider: str, sms_id: str) -> dict[str, Any]:
    with server.api(token) as api:
        params = {"provider": provider, "provider_message_id": sms_id}
        [message] = api.get("/v1/messages", params=params).json()["items"]
        events = api.get(f"/v1/messages/{message['id']}/events").json()["items"]
    return {**message, "events": events}


def test_signed_reports_are_applied_once(server: Server, viewer: str) -> None:
    sms_id = "5b1f7a0e-3c2d-4e8f-9a6b-1c2d3e4f5a6b"
    sent = txtly_request(SECRET, txtly_event(sms_id, "sent", to="+61412345678"), provider="txtly")
    delivered = txtly_request(SECRET, txtly_event(sms_id, "delivered"), provider="txtly")

    answers = [server.post(request).json() for request in (delivered, sent, delivered)]

    assert [(a["applied"], a["duplicates"], a["superseded"]) for a in answers] == [
        (1, 0, 0),
        (0, 0, 1),
        (0, 1, 0),
    ]
    message = stored(server, viewer, "txtly", sms_id)
    assert (message["status"], message["final"], message["to"]) == (
        "delivered",
        True,
        "+61412345678",
    )
    assert [e["provider_status"] for e in message["events"]] == ["sent", "delivered"]


def test_a_bad_or_missing_signature_is_refused(server: Server) -> None:
    event = txtly_event("0f9e8d7c-6b5a-4f3e-8d2c-1b0a9f8e7d6c", "delivered")
    forged = txtly_request(RETIRED_SECRET, event, provider="txtly")
    unsigned = txtly_request(None, event, provider="txtly")
    tampered = replace(forged, body=forged.body.replace(b"delivered", b"failed"))

    for request, code in ((forged, "SIGNATURE_INVALID"), (unsigned, "SIGNATURE_MISSING")):
        answer = server.post(request)
        assert (answer.status_code, answer.json()["code"]) == (401, code)
        assert answer.headers["content-type"].startswith("application/problem+json")
    signed = txtly_request(SECRET, event, provider="txtly")
    assert server.post(replace(tampered, headers=signed.headers)).status_code == 401


def test_other_event_types_are_acknowledged_without_a_report(server: Server) -> None:
    event = {
        "id": "evt_abc123",
        "type": "email.delivered",
        "created_at": "2026-03-21T14:30:00Z",
        "data": {"email_id": "em_xyz789", "to": "user@example.com"},
    }
    answer = server.post(txtly_request(SECRET, event, provider="txtly"))
    assert (answer.status_code, answer.json()["received"]) == (200, 0)


def test_an_unsigned_provider_takes_reports_with_its_token_only(
    server: Server, viewer: str
) -> None:
    sms_id = "7d6c5b4a-3f2e-4d1c-9b0a-8f7e6d5c4b3a"
    event = txtly_event(sms_id, "bounced")
    good = txtly_request(None, event, provider="txtly-token", url_token=TOKEN)
    wrong = txtly_request(None, event, provider="txtly-token", url_token="tok_" + "x" * 28)
    missing = txtly_request(None, event, provider="txtly-token")

    assert server.post(missing).json()["code"] == "SIGNATURE_MISSING"
    assert server.post(wrong).json()["code"] == "SIGNATURE_INVALID"
    assert server.post(good).json()["applied"] == 1
    assert server.post(good).json()["duplicates"] == 1
    assert stored(server, viewer, "txtly-token", sms_id)["status"] == "undelivered"
    assert TOKEN not in server.log_path.read_text()


def test_with_a_secret_and_a_token_both_are_checked(server: Server) -> None:
    event = txtly_event("2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f", "delivered")
    both = txtly_request(SECRET, event, provider="txtly-both", url_token=TOKEN)
    token_only = txtly_request(None, event, provider="txtly-both", url_token=TOKEN)
    signature_only = txtly_request(SECRET, event, provider="txtly-both")

    assert server.post(signature_only).status_code == 401
    assert server.post(token_only).status_code == 401
    assert server.post(both).json()["applied"] == 1


def test_a_provider_that_only_sends_refuses_every_report(server: Server) -> None:
    event = txtly_event("3e4f5a6b-7c8d-4e9f-8a0b-1c2d3e4f5a6b", "delivered")
    for secret in (None, SECRET):
        answer = server.post(txtly_request(secret, event, provider="txtly-send"))
        assert (answer.status_code, answer.json()["code"]) == (401, "SIGNATURE_MISSING")
        assert "takes none" in answer.json()["detail"]


def test_a_report_signed_with_a_retired_secret_is_accepted_once_resigned(
    server: Server, viewer: str
) -> None:
    sms_id = "4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d"
    old = txtly_request(RETIRED_SECRET, txtly_event(sms_id, "failed"), provider="txtly")
    assert server.post(old).status_code == 401

    provider = TxtlyProvider("txtly", TxtlyConfig(type="txtly", secrets=[SECRET]))
    resigned = provider.resign(old, public_base_url=server.base_url, now=0.0)

    assert server.post(resigned).json()["applied"] == 1
    assert stored(server, viewer, "txtly", sms_id)["status"] == "failed"
