"""The console's message page against a real ``receiver serve``: the status in words,
colour and symbol, the timeline (outcomes, redeliveries, explained error codes), phone
masking per role, and the admin-only raw reports and "Reprocess" button.

One server serves the module; every test uses its own provider message ids, event ids
and staff members. Reports are posted with the ``receiver.testing`` builders, as a
provider would send them.
"""

from __future__ import annotations

import signal
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import Server, new_whsec, run_cli, unique, write_config
from console_client import Console, new_number
from html_tree import Element, parse

from receiver.providers import explain_error
from receiver.testing import standard_report, standard_request, twilio_report, twilio_request

pytestmark = pytest.mark.long_running

AUTH_TOKEN = "9f3c2a7d51e84b0c96ad2f4e7b1c3d58"
# http, not https: an https public URL makes the session cookie Secure, which httpx
# would not send back over loopback http.
PUBLIC_BASE_URL = "http://dlr.example.com"
T0 = datetime(2026, 11, 23, 10, 1, tzinfo=UTC)
PROVIDERS: dict[str, dict[str, Any]] = {
    "default": {"type": "standard", "secrets": [new_whsec()]},
    "twilio": {"type": "twilio", "secrets": [AUTH_TOKEN]},
    # Sends through a closed loopback port: the message stays queued, never sent.
    "acme": {
        "type": "standard",
        "secrets": [new_whsec()],
        "api_base_url": "http://127.0.0.1:9",
        "api_key": "test-api-key",
        "sender": "ACME",
    },
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("console-message")
    config = write_config(workdir, {"public_base_url": PUBLIC_BASE_URL}, PROVIDERS)
    server = Server(workdir, config).start()
    yield server
    server.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def api(server: Server) -> Iterator[httpx.Client]:
    """The staff JSON API with an admin token, to find messages and read the store."""
    with server.api(server.staff_token("message-page-api", "admin")) as client:
        yield client


def logged_in(server: Server, role: str) -> Console:
    console = Console(server)
    console.login(token=server.staff_token(unique(role), role))
    return console


def post_standard(
    server: Server, pmid: str, status: str, event_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    request = standard_request(
        server.secret(), standard_report(pmid, status, **fields), event_id=event_id
    )
    answer = server.post(request)
    assert answer.status_code == 200, answer.text
    counts: dict[str, Any] = answer.json()
    return counts


def post_twilio(server: Server, sid: str, status: str, error_code: str | None = None) -> None:
    params = twilio_report(sid, status, to="+15558675310", error_code=error_code)
    request = twilio_request(AUTH_TOKEN, params, public_base_url=PUBLIC_BASE_URL, provider="twilio")
    answer = server.post(request)
    assert answer.status_code == 200, answer.text


def message_id(api: httpx.Client, pmid: str) -> str:
    [item] = api.get("/v1/messages", params={"provider_message_id": pmid}).json()["items"]
    return str(item["id"])


def open_page(console: Console, mid: str) -> tuple[httpx.Response, Element]:
    answer = console.get(f"/console/messages/{mid}")
    assert answer.status_code == 200, answer.text
    return answer, parse(answer.text)


def timeline_rows(page: Element) -> list[Element]:
    return page.find("table", data_test="timeline").find("tbody").find_all("tr")


def row_of(page: Element, event_id: str) -> Element:
    return page.find("tr", data_event_id=event_id)


# --- the status banner ------------------------------------------------------------


def test_a_carrier_filtered_twilio_message_says_why_in_words(server, api):
    sid = "SM" + uuid.uuid4().hex
    post_twilio(server, sid, "sent")
    post_twilio(server, sid, "undelivered", error_code="30007")
    with logged_in(server, "viewer") as console:
        _, page = open_page(console, message_id(api, sid))

    banner = page.find(data_test="status")
    assert banner.attrs["data-status"] == "undelivered"
    assert "tone-bad" in banner.classes()
    assert "\u2717" in banner.text  # a symbol, never colour alone
    assert banner.find(data_test="status-words").text == "Undelivered"
    reason = explain_error("twilio", "30007")
    assert reason is not None and "filtered" in reason
    assert banner.find(data_test="reason").text == reason
    assert banner.find(data_test="code").text == "(Twilio 30007)"
    rows = timeline_rows(page)
    assert [row.attrs["data-outcome"] for row in rows] == ["applied", "applied"]
    assert rows[1].find(data_test="explanation").text == reason
    assert "Twilio 30007" in rows[1].find(data_test="event-error").text
    assert rows[0].find(data_test="event-error").text == "none"


@pytest.mark.parametrize(
    ("status", "words", "tone", "symbol"),
    [
        ("delivered", "Delivered to handset", "tone-good", "\u2713"),
        ("sent", "Sent to carrier", "tone-wait", "\u2192"),
        ("queued", "Queued", "tone-wait", "\u2026"),
        ("expired", "Expired", "tone-bad", "\u2717"),
        ("unknown", "Outcome unknown", "tone-unknown", "?"),
    ],
)
def test_the_banner_says_the_status_and_when_it_changed(server, api, status, words, tone, symbol):
    pmid = unique("banner")
    post_standard(server, pmid, status, occurred_at=T0 + timedelta(minutes=2))
    with logged_in(server, "viewer") as console:
        _, page = open_page(console, message_id(api, pmid))
    banner = page.find(data_test="status")
    assert banner.attrs["data-status"] == status
    assert tone in banner.classes()
    assert symbol in banner.text
    assert banner.find(data_test="status-words").text == words
    moment = banner.find("time")
    assert moment.attrs["datetime"] == "2026-11-23T10:03:00Z"
    assert moment.text == "2026-11-23 10:03:00 UTC"
    assert banner.text.startswith(f"{symbol} {words} 2026-11-23 10:03:00 UTC")


def test_a_failure_without_a_known_code_shows_the_providers_message(server, api):
    pmid = unique("failed")
    post_standard(server, pmid, "rejected", error_code="E42", error_message="Sender id not allowed")
    with logged_in(server, "viewer") as console:
        _, page = open_page(console, message_id(api, pmid))
    banner = page.find(data_test="status")
    assert banner.find(data_test="status-words").text == "Rejected"
    assert banner.find(data_test="reason").text == "Sender id not allowed"
    assert banner.find(data_test="code").text == "(code E42)"


@pytest.mark.parametrize("role", ["viewer", "sender"])
def test_a_number_in_the_providers_message_is_masked_for_a_viewer(server, api, role):
    pmid = unique("barred")
    text = "Destination 639171234569 is barred"
    post_standard(server, pmid, "undelivered", error_code="E13", error_message=text)
    with logged_in(server, role) as console:
        answer, page = open_page(console, message_id(api, pmid))
    shown = text if role == "sender" else "Destination 63********69 is barred"
    assert page.find(data_test="status").find(data_test="reason").text == shown
    assert ("639171234569" in answer.text) is (role == "sender")


# --- the timeline -------------------------------------------------------------------


def test_the_timeline_shows_every_report_its_effect_and_redeliveries(server, api):
    pmid = unique("timeline")
    sent, delivered, odd = unique("evt-s"), unique("evt-d"), unique("evt-w")
    post_standard(server, pmid, "delivered", delivered, occurred_at=T0 + timedelta(minutes=2))
    post_standard(server, pmid, "sent", sent, occurred_at=T0)  # late: superseded
    for _ in range(2):  # the provider redelivers the delivery report twice
        again = post_standard(
            server, pmid, "delivered", delivered, occurred_at=T0 + timedelta(minutes=2)
        )
        assert again["duplicates"] == 1
    post_standard(server, pmid, "handset_exploded", odd, occurred_at=T0 + timedelta(minutes=5))

    with logged_in(server, "viewer") as console:
        _, page = open_page(console, message_id(api, pmid))

    rows = timeline_rows(page)
    assert [row.attrs["data-event-id"] for row in rows] == [sent, delivered, odd]  # by occurrence
    by_id = {row.attrs["data-event-id"]: row for row in rows}
    assert by_id[sent].attrs["data-outcome"] == "superseded"
    assert "arrived after a later status; kept for the record" in by_id[sent].text
    assert by_id[delivered].attrs["data-outcome"] == "applied"
    assert "changed the status" in by_id[delivered].find(data_test="effect").text
    assert by_id[delivered].find(data_test="deliveries").text == (
        "received 3 times (redelivered 2 times)"
    )
    assert by_id[sent].find(data_test="deliveries").text == "received once"
    assert by_id[odd].attrs["data-outcome"] == "superseded"
    assert "maps to no status" in by_id[odd].text
    assert "handset_exploded" in by_id[odd].text
    assert "no status" in by_id[odd].text
    # When it occurred (the provider's time) and when we received it, both as <time>.
    occurred, received = by_id[sent].find_all("time")[:2]
    assert occurred.attrs["datetime"] == "2026-11-23T10:01:00Z"
    received_at = datetime.fromisoformat(received.attrs["datetime"])
    assert received_at > T0 + timedelta(minutes=2)  # received now, long after
    assert "provider report" in by_id[sent].text
    banner = page.find(data_test="status")
    assert banner.attrs["data-status"] == "delivered"


def test_our_send_steps_are_in_the_timeline_without_a_raw_request(server, api):
    sender = server.staff_token(unique("sender"), "sender")
    number, _ = new_number()
    reference = unique("order-ref-1234")
    with server.api(sender) as client:
        answer = client.post(
            "/v1/messages",
            json={"provider": "acme", "to": number, "body": "Hi", "client_reference": reference},
        )
    assert answer.status_code == 202, answer.text
    mid = answer.json()["id"]

    with logged_in(server, "admin") as console:
        _, page = open_page(console, mid)

    [row] = timeline_rows(page)
    assert "our send step" in row.text
    assert "accepted" in row.text
    assert not row.has(data_test="reprocess")
    assert "no stored request" in row.text
    assert page.find(data_test="client-reference").text == reference
    assert page.find(data_test="recipient").text == number  # admins see it in full
    assert "ACME" in page.find(data_test="facts").text
    raw = page.find(data_test="raw")
    assert not raw.has(data_test="raw-request")
    assert "only our own send steps" in raw.text


# --- roles: masking, raw reports, reprocess ------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "sender"])
def test_viewers_and_senders_see_no_raw_report_no_button_and_may_not_reprocess(server, api, role):
    number, _ = new_number()
    pmid, event_id = unique("roles"), unique("evt-r")
    post_standard(server, pmid, "delivered", event_id, to=number)
    mid = message_id(api, pmid)
    with logged_in(server, role) as console:
        answer, page = open_page(console, mid)
        recipient = page.find(data_test="recipient").text
        if role == "viewer":
            assert recipient == number[:3] + "*" * 6 + number[-4:]
            assert number not in answer.text and number[3:] not in answer.text
        else:
            assert recipient == number
        assert not page.has(data_test="raw")
        assert not page.has(data_test="reprocess")
        assert "webhook-signature" not in answer.text
        token = page.find("input", name="csrf_token").attrs["value"]
        refused = console.post(
            f"/console/messages/{mid}/reprocess", {"csrf_token": token, "event_id": event_id}
        )
    assert refused.status_code == 403
    [event] = api.get(f"/v1/messages/{mid}/events").json()["items"]
    assert event["reprocessed_at"] is None


def test_an_admin_sees_the_raw_reports_escaped_and_pretty_printed(server, api):
    number, _ = new_number()
    pmid, event_id = unique("raw"), unique("evt-raw")
    post_standard(server, pmid, "queued", event_id, to=number, error_message="<b>held</b>")
    with logged_in(server, "admin") as console:
        answer, page = open_page(console, message_id(api, pmid))

    assert "<b>held</b>" not in answer.text  # escaped everywhere it appears
    [request] = page.find(data_test="raw").find_all(data_test="raw-request")
    assert event_id in request.text
    headers = request.find(data_test="raw-headers").text
    assert f'"webhook-id": "{event_id}"' in headers
    assert "authorization" not in headers.lower()
    body_node = request.find(data_test="raw-body")
    body = body_node.text
    assert '"error_message": "<b>held</b>"' in body
    assert f'"to": "{number}"' in body  # admins see the full number
    raw_text = "".join(c for c in body_node.children if isinstance(c, str))
    assert '{\n  "type": "message.status",\n  "data": {' in raw_text  # indented JSON
    assert page.find(data_test="recipient").text == number
    assert row_of(page, event_id).has(data_test="reprocess")


@pytest.mark.sqlite_only("misfiles a report by writing the SQLite file")
def test_an_admin_reprocess_corrects_a_misread_report_and_says_what_it_did(server, api):
    pmid, queued, delivered = unique("fix"), unique("evt-q"), unique("evt-d")
    post_standard(server, pmid, "queued", queued, occurred_at=T0)
    post_standard(server, pmid, "delivered", delivered, occurred_at=T0 + timedelta(minutes=2))
    # As if an older parser had read the delivery report as "sent".
    with sqlite3.connect(server.db_path) as db:
        db.execute(
            "UPDATE events SET status = 'sent', outcome = 'superseded' WHERE event_id = ?",
            (delivered,),
        )
        db.execute(
            "UPDATE messages SET status = 'queued', status_event_id = ?"
            " WHERE provider_message_id = ?",
            (queued, pmid),
        )
    db.close()
    mid = message_id(api, pmid)

    with logged_in(server, "admin") as console:
        _, page = open_page(console, mid)
        assert page.find(data_test="status").attrs["data-status"] == "queued"
        form = row_of(page, delivered).find("form")
        fields = {node.attrs["name"]: node.attrs["value"] for node in form.find_all("input")}
        assert fields["event_id"] == delivered
        answer = console.post(form.attrs["action"], fields)
        assert answer.status_code == 303
        assert urlsplit(answer.headers["location"]).path == f"/console/messages/{mid}"

        _, page = open_page(console, mid)
        flash = page.find(data_test="flash")
        assert "1 corrected" in flash.text and "0 applied" in flash.text
        assert delivered in flash.text
        assert page.find(data_test="status").attrs["data-status"] == "delivered"
        row = row_of(page, delivered)
        assert row.attrs["data-outcome"] == "applied"
        assert row.has(data_test="reprocessed")
        _, again = open_page(console, mid)
        assert not again.has(data_test="flash")  # shown once

    events = {e["event_id"]: e for e in api.get(f"/v1/messages/{mid}/events").json()["items"]}
    assert events[delivered]["status"] == "delivered"
    assert events[delivered]["reprocessed_at"] is not None


@pytest.mark.sqlite_only("misfiles a report by writing the SQLite file")
def test_a_refused_reprocess_comes_back_as_a_notice(server, api):
    pmid, event_id = unique("refused"), unique("evt-x")
    post_standard(server, pmid, "sent", event_id)
    mid = message_id(api, pmid)
    with sqlite3.connect(server.db_path) as db:  # the current parser rejects this body
        db.execute(
            "UPDATE raw_requests SET body = CAST('{\"type\": 1}' AS BLOB)"
            " WHERE id = (SELECT request_id FROM events WHERE event_id = ?)",
            (event_id,),
        )
    db.close()
    with logged_in(server, "admin") as console:
        token = console.csrf(f"/console/messages/{mid}")
        path = f"/console/messages/{mid}/reprocess"
        assert console.post(path, {"csrf_token": token, "event_id": event_id}).status_code == 303
        _, page = open_page(console, mid)
        notice = page.find(data_test="flash")
        assert "problem" in notice.classes()
        assert "current parser rejects the stored request" in notice.text
        # An event that is not one of this message's reports is refused the same way.
        assert console.post(path, {"csrf_token": token, "event_id": "nope"}).status_code == 303
        _, page = open_page(console, mid)
        assert "no provider report 'nope'" in page.find(data_test="flash").text


def test_a_report_whose_stored_request_was_erased_says_so_and_cannot_be_reprocessed(server, api):
    number, _ = new_number()
    pmid, event_id = unique("erased"), unique("evt-e")
    post_standard(server, pmid, "delivered", event_id, to=number)
    mid = message_id(api, pmid)
    erased = run_cli("erase", "--to", number, "--config", str(server.config_path))
    assert erased.returncode == 0, erased.stderr

    with logged_in(server, "admin") as console:
        _, page = open_page(console, mid)
        row = row_of(page, event_id)
        assert row.has(data_test="raw-deleted")
        assert not row.has(data_test="reprocess")
        raw = page.find(data_test="raw")
        assert not raw.has(data_test="raw-request")
        assert "were deleted (retention or erasure)" in raw.find(data_test="raw-deleted-note").text
        token = console.csrf(f"/console/messages/{mid}")
        path = f"/console/messages/{mid}/reprocess"
        assert console.post(path, {"csrf_token": token, "event_id": event_id}).status_code == 303
        _, page = open_page(console, mid)
        assert "was deleted (retention or erasure)" in page.find(data_test="flash").text


def test_a_reprocess_without_the_csrf_token_changes_nothing(server, api):
    pmid, event_id = unique("csrf"), unique("evt-c")
    post_standard(server, pmid, "delivered", event_id)
    mid = message_id(api, pmid)
    with logged_in(server, "admin") as console:
        answer = console.post(f"/console/messages/{mid}/reprocess", {"event_id": event_id})
        assert answer.status_code == 403
        stale = console.post(
            f"/console/messages/{mid}/reprocess", {"csrf_token": "forged", "event_id": event_id}
        )
        assert stale.status_code == 403
        _, page = open_page(console, mid)
        assert not page.has(data_test="flash")


def test_without_login_neither_page_nor_reprocess(server, api):
    pmid, event_id = unique("anon"), unique("evt-a")
    post_standard(server, pmid, "delivered", event_id)
    mid = message_id(api, pmid)
    with Console(server) as console:
        page = console.get(f"/console/messages/{mid}")
        assert page.status_code == 303
        assert urlsplit(page.headers["location"]).path == "/console/login"
        token = console.csrf()
        answer = console.post(
            f"/console/messages/{mid}/reprocess", {"csrf_token": token, "event_id": event_id}
        )
        assert answer.status_code == 303
        assert urlsplit(answer.headers["location"]).path == "/console/login"


def test_an_unknown_message_is_a_404_page(server):
    with logged_in(server, "viewer") as console:
        answer = console.get("/console/messages/msg_does_not_exist")
    assert answer.status_code == 404
    assert "No message with this id" in answer.text
