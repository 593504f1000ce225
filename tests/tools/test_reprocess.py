"""``POST /v1/events/{provider}/{event_id}/reprocess``, with the app in this process
(tests/in_process.py): nothing here needs a socket."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import assert_problem
from in_process import InProcessServer, in_process_server

from receiver.testing import standard_report, standard_request

OCCURRED = datetime(2026, 11, 23, 9, 59, 58, tzinfo=UTC)


@pytest.fixture
def receiver_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """The plugin's fixture of that name, in this process (its ``receiver_staff`` holds
    an admin token of this one)."""
    with in_process_server(tmp_path_factory.mktemp("receiver")) as server:
        yield server


def reprocess_path(event_id: str, provider: str = "default") -> str:
    return f"/v1/events/{provider}/{event_id}/reprocess"


def post_report(server: InProcessServer, event_id: str, message_id: str, status: str) -> None:
    report = standard_report(message_id, status, occurred_at=OCCURRED, to="+639171234567")
    answer = server.post(standard_request(server.secret(), report, event_id=event_id))
    assert answer.status_code == 200, answer.text


def message_and_events(
    staff: httpx.Client, provider_message_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    found = staff.get("/v1/messages", params={"provider_message_id": provider_message_id})
    [message] = found.json()["items"]
    events = staff.get(f"/v1/messages/{message['id']}/events").json()["items"]
    return message, events


def result(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert isinstance(body, dict)
    return body


def counts(**given: int) -> dict[str, int]:
    return {"applied": 0, "superseded": 0, "corrected": 0, "unchanged": 0, **given}


def test_a_report_that_reads_the_same_is_unchanged_and_changes_nothing(
    receiver_server, receiver_staff
):
    post_report(receiver_server, "evt-1", "prov-1", "delivered")
    before = message_and_events(receiver_staff, "prov-1")

    answer = result(receiver_staff.post(reprocess_path("evt-1")))

    assert answer == {"event_id": "evt-1", "reports": 1, "missing": False, **counts(unchanged=1)}
    after = message_and_events(receiver_staff, "prov-1")
    assert after == before  # same status, same timeline, deliveries still 1
    assert after[1][0]["deliveries"] == 1
    assert after[1][0]["reprocessed_at"] is None


@pytest.mark.sqlite_only("misfiles a report by writing the SQLite file")
def test_a_misread_report_is_corrected_and_its_message_recomputed(receiver_server, receiver_staff):
    # Three reports; then the store is made to look as if an older parser had read the
    # delivery report as "sent" without its error fields.
    post_report(receiver_server, "evt-q", "prov-x", "queued")
    post_report(receiver_server, "evt-d", "prov-x", "delivered")
    with sqlite3.connect(receiver_server.db_path) as db:
        db.execute(
            "UPDATE events SET status = 'sent', outcome = 'superseded' WHERE event_id = 'evt-d'"
        )
        db.execute(
            "UPDATE messages SET status = 'queued', status_event_id = 'evt-q'"
            " WHERE provider_message_id = 'prov-x'"
        )
    db.close()
    assert message_and_events(receiver_staff, "prov-x")[0]["status"] == "queued"

    answer = result(receiver_staff.post(reprocess_path("evt-d")))

    assert answer == {"event_id": "evt-d", "reports": 1, "missing": False, **counts(corrected=1)}
    message, events = message_and_events(receiver_staff, "prov-x")
    assert message["status"] == "delivered"
    assert message["report_count"] == 2
    corrected = {event["event_id"]: event for event in events}
    assert corrected["evt-d"]["status"] == "delivered"
    assert corrected["evt-d"]["outcome"] == "applied"
    assert corrected["evt-d"]["reprocessed_at"] is not None
    assert corrected["evt-d"]["deliveries"] == 1
    assert corrected["evt-q"]["reprocessed_at"] is None
    # Again: now it reads the same.
    assert result(receiver_staff.post(reprocess_path("evt-d")))["unchanged"] == 1


@pytest.mark.sqlite_only("misfiles a report by writing the SQLite file")
def test_a_report_filed_under_the_wrong_message_moves_to_the_right_one(
    receiver_server, receiver_staff
):
    post_report(receiver_server, "evt-w", "prov-right", "delivered")
    with sqlite3.connect(receiver_server.db_path) as db:  # as if misfiled by an old parser
        db.execute("UPDATE messages SET provider_message_id = 'prov-wrong'")
    db.close()

    answer = result(receiver_staff.post(reprocess_path("evt-w")))

    assert answer["corrected"] == 1
    right, events = message_and_events(receiver_staff, "prov-right")
    assert (right["status"], right["report_count"]) == ("delivered", 1)
    assert [event["event_id"] for event in events] == ["evt-w"]
    wrong, left = message_and_events(receiver_staff, "prov-wrong")
    assert (wrong["status"], wrong["report_count"], left) == (None, 0, [])


@pytest.mark.sqlite_only("misfiles a report by writing the SQLite file")
def test_reprocess_applies_a_report_missing_from_the_processed_set(receiver_server, receiver_staff):
    # A batch of two reports; then the second is removed from the store, as if an
    # older parser had not produced it. Reprocessing the batch's first event re-runs
    # the whole stored request and applies the missing report through ingest.
    batch = [
        standard_report("prov-a", "sent", occurred_at=OCCURRED),
        standard_report("prov-b", "delivered", occurred_at=OCCURRED, to="+639171234567"),
    ]
    request = standard_request(receiver_server.secret(), batch, event_id="evt-batch")
    assert receiver_server.post(request).json()["applied"] == 2
    with sqlite3.connect(receiver_server.db_path) as db:
        db.execute("DELETE FROM events WHERE event_id = 'evt-batch:1'")
        db.execute("DELETE FROM messages WHERE provider_message_id = 'prov-b'")
    db.close()
    listed = receiver_staff.get("/v1/messages", params={"provider_message_id": "prov-b"})
    assert listed.json()["items"] == []

    answer = result(receiver_staff.post(reprocess_path("evt-batch:0")))

    expected = counts(applied=1, unchanged=1)
    assert answer == {"event_id": "evt-batch:0", "reports": 2, "missing": False, **expected}
    message, events = message_and_events(receiver_staff, "prov-b")
    assert message["status"] == "delivered"
    assert message["to"] == "+639171234567"
    assert [(e["event_id"], e["outcome"], e["deliveries"]) for e in events] == [
        ("evt-batch:1", "applied", 1)
    ]
    # Once more: everything is now processed and reads the same.
    again = result(receiver_staff.post(reprocess_path("evt-batch:1")))
    assert again == {
        "event_id": "evt-batch:1",
        "reports": 2,
        "missing": False,
        **counts(unchanged=2),
    }


@pytest.mark.sqlite_only("misfiles a report by writing the SQLite file")
def test_a_stored_request_the_parser_now_rejects_is_422(receiver_server, receiver_staff):
    post_report(receiver_server, "evt-bad", "prov-bad", "sent")
    with sqlite3.connect(receiver_server.db_path) as db:
        db.execute("UPDATE raw_requests SET body = CAST('{\"type\": 1}' AS BLOB)")
    db.close()
    answer = receiver_staff.post(reprocess_path("evt-bad"))
    assert_problem(answer, 422, "STORED_REQUEST_INVALID")
    assert "current parser rejects the stored request" in answer.json()["detail"]


def test_a_viewer_may_not_reprocess(receiver_server):
    post_report(receiver_server, "evt-2", "prov-2", "sent")
    with receiver_server.api(receiver_server.staff_token("viewer1", "viewer")) as viewer:
        assert_problem(viewer.post(reprocess_path("evt-2")), 403, "FORBIDDEN")
    with receiver_server.api(receiver_server.staff_token("sender1", "sender")) as sender:
        assert_problem(sender.post(reprocess_path("evt-2")), 403, "FORBIDDEN")


@pytest.mark.parametrize(
    ("provider", "event_id", "code"),
    [("default", "evt-unknown", "NOT_FOUND"), ("nosuch", "evt-3", "PROVIDER_UNKNOWN")],
)
def test_an_unknown_event_or_provider_is_404(
    receiver_server, receiver_staff, provider, event_id, code
):
    post_report(receiver_server, "evt-3", "prov-3", "sent")
    assert_problem(receiver_staff.post(reprocess_path(event_id, provider)), 404, code)


@pytest.mark.parametrize("authorization", [None, "Bearer rcv_not-a-token", "Basic abc"])
def test_no_or_bad_token_is_401(receiver_server, authorization):
    post_report(receiver_server, "evt-4", "prov-4", "sent")
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = receiver_server.client.post(reprocess_path("evt-4"), headers=headers)
    assert_problem(answer, 401, "UNAUTHORIZED")
