"""``POST /webhooks/{provider}`` end to end on real servers (README "HTTP API", "Status model").

Most tests share one module-scoped server (distinct message ids keep them apart);
tests that need their own configuration or break the store start their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from conftest import Server, assert_problem, new_whsec, running_server, unique
from prometheus_client.parser import text_string_to_metric_families

from receiver.core.signatures import standard_webhooks
from receiver.testing import SignedRequest, standard_report, standard_request

# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory, backend_settings: dict[str, Any]
) -> Iterator[Server]:
    """One server with the default config, shared by the tests of this module (on each
    backend in turn)."""
    with running_server(tmp_path_factory, "shared-server", backend_settings) as server:
        yield server


@pytest.fixture(scope="module")
def shared_api(shared: Server) -> Iterator[httpx.Client]:
    with shared.api(shared.staff_token("webhook-tests", "sender")) as api:
        yield api


def moment(seconds_ago: int) -> datetime:
    """A whole-second aware UTC time ``seconds_ago`` before now."""
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).replace(microsecond=0)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def sign(
    secret: str,
    body: bytes,
    *,
    event_id: str | None = None,
    timestamp: int | None = None,
    content_type: str | None = "application/json",
) -> SignedRequest:
    """Any bytes, correctly signed (Standard Webhooks v1) for the ``default`` provider."""
    event_id = event_id or unique("evt")
    timestamp = int(time.time()) if timestamp is None else timestamp
    key = standard_webhooks.decode_secret(secret)
    headers = {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_webhooks.signature(key, event_id, timestamp, body),
    }
    if content_type is not None:
        headers["content-type"] = content_type
    return SignedRequest("/webhooks/default", body, headers)


def payload(data: Any) -> bytes:
    return json.dumps({"type": "message.status", "data": data}).encode()


def expected_signature(secret: str, request: SignedRequest) -> str:
    """The signature the server computes for this request with ``secret``."""
    key = standard_webhooks.decode_secret(secret)
    return standard_webhooks.signature(
        key,
        request.headers["webhook-id"],
        int(request.headers["webhook-timestamp"]),
        request.body,
    )


def counts(received: int, applied: int = 0, duplicates: int = 0, superseded: int = 0) -> dict:
    return {
        "received": received,
        "applied": applied,
        "duplicates": duplicates,
        "superseded": superseded,
    }


def assert_counts(answer: httpx.Response, expected: dict[str, int]) -> None:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].split(";")[0] == "application/json"
    assert answer.json() == expected


def metric(server: Server, sample: str, labels: dict[str, str]) -> float:
    """One sample's value in GET /metrics; 0 when it is absent."""
    text = httpx.get(server.base_url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and s.labels == labels:
                return float(s.value)
    return 0.0


def failures(server: Server, reason: str) -> float:
    return metric(
        server,
        "receiver_signature_failures_total",
        {"provider": "default", "reason": reason},
    )


def message(api: httpx.Client, provider_message_id: str) -> dict[str, Any]:
    answer = api.get("/v1/messages", params={"provider_message_id": provider_message_id})
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert len(items) == 1, items
    return items[0]


def no_message(api: httpx.Client, provider_message_id: str) -> bool:
    answer = api.get("/v1/messages", params={"provider_message_id": provider_message_id})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"] == []


def events(api: httpx.Client, provider_message_id: str) -> list[dict[str, Any]]:
    message_id = message(api, provider_message_id)["id"]
    answer = api.get(f"/v1/messages/{message_id}/events")
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


# --------------------------------------------------------------------------- 200


def test_a_committed_report_is_answered_with_counts_and_visible_to_staff(shared, shared_api):
    pid, occurred = unique("prov"), moment(120)
    request = standard_request(
        shared.secret(),
        standard_report(
            pid,
            "undelivered",
            occurred_at=occurred,
            to="+639171234567",
            error_code="E451",
            error_message="absent subscriber",
        ),
    )
    assert_counts(shared.post(request), counts(1, applied=1))

    record = message(shared_api, pid)
    assert record["provider"] == "default"
    assert record["status"] == "undelivered"
    assert record["final"] is True
    assert record["error_code"] == "E451"
    assert record["error_message"] == "absent subscriber"
    assert record["to"] == "+639171234567"
    assert parse_time(record["status_changed_at"]) == occurred
    assert record["report_count"] == 1
    assert shared_api.get(f"/v1/messages/{record['id']}").json() == record

    [event] = events(shared_api, pid)
    assert event["event_id"] == request.headers["webhook-id"]
    assert event["status"] == "undelivered"
    assert event["provider_status"] == "undelivered"
    assert event["error_code"] == "E451"
    assert event["error_message"] == "absent subscriber"
    assert parse_time(event["occurred_at"]) == occurred
    assert abs(parse_time(event["received_at"]) - datetime.now(UTC)) < timedelta(seconds=60)
    assert event["outcome"] == "applied"
    assert event["deliveries"] == 1


def test_occurred_at_defaults_to_the_webhook_timestamp(shared, shared_api):
    pid, sent_at = unique("prov"), int(time.time()) - 42
    request = standard_request(
        shared.secret(), standard_report(pid, "delivered"), timestamp=sent_at
    )
    assert_counts(shared.post(request), counts(1, applied=1))
    [event] = events(shared_api, pid)
    assert parse_time(event["occurred_at"]) == datetime.fromtimestamp(sent_at, UTC)
    assert parse_time(message(shared_api, pid)["status_changed_at"]) == datetime.fromtimestamp(
        sent_at, UTC
    )


def test_a_charset_parameter_on_the_content_type_is_accepted(shared, shared_api):
    pid = unique("prov")
    request = sign(
        shared.secret(),
        payload(standard_report(pid, "sent")),
        content_type="Application/JSON; charset=utf-8",
    )
    assert_counts(shared.post(request), counts(1, applied=1))
    assert message(shared_api, pid)["status"] == "sent"


# --------------------------------------------------------------------------- 404


def test_an_unknown_provider_is_a_404_problem(shared):
    request = standard_request(shared.secret(), standard_report(unique("prov"), "delivered"))
    answer = httpx.post(
        shared.base_url + "/webhooks/nobody", content=request.body, headers=request.headers
    )
    body = assert_problem(answer, 404, "PROVIDER_UNKNOWN")
    assert "nobody" in body["detail"]


# --------------------------------------------------------------------------- 401


def _missing(secret: str) -> SignedRequest:
    return SignedRequest(
        "/webhooks/default",
        payload(standard_report(unique("prov"), "delivered")),
        {"content-type": "application/json"},
    )


def _signature_header_missing(secret: str) -> SignedRequest:
    request = standard_request(secret, standard_report(unique("prov"), "delivered"))
    headers = {k: v for k, v in request.headers.items() if k != "webhook-signature"}
    return SignedRequest(request.path, request.body, headers)


def _wrong_secret(secret: str) -> SignedRequest:
    return standard_request(new_whsec(), standard_report(unique("prov"), "delivered"))


def _stale(secret: str) -> SignedRequest:
    return standard_request(
        secret, standard_report(unique("prov"), "delivered"), timestamp=int(time.time()) - 3600
    )


def _future(secret: str) -> SignedRequest:
    return standard_request(
        secret, standard_report(unique("prov"), "delivered"), timestamp=int(time.time()) + 3600
    )


def _garbage(secret: str) -> SignedRequest:
    request = standard_request(secret, standard_report(unique("prov"), "delivered"))
    return SignedRequest(
        request.path, request.body, {**request.headers, "webhook-signature": "garbage!!"}
    )


def _bad_timestamp(secret: str) -> SignedRequest:
    request = standard_request(secret, standard_report(unique("prov"), "delivered"))
    return SignedRequest(
        request.path, request.body, {**request.headers, "webhook-timestamp": "yesterday"}
    )


def _unknown_version(secret: str) -> SignedRequest:
    request = standard_request(secret, standard_report(unique("prov"), "delivered"))
    good = request.headers["webhook-signature"]
    return SignedRequest(
        request.path, request.body, {**request.headers, "webhook-signature": "v2" + good[2:]}
    )


def _overlong_id(secret: str) -> SignedRequest:
    return standard_request(
        secret, standard_report(unique("prov"), "delivered"), event_id="e" * 300
    )


def _tampered(secret: str) -> SignedRequest:
    request = standard_request(secret, standard_report(unique("prov"), "failed"))
    body = request.body.replace(b'"failed"', b'"delivered"')
    assert body != request.body
    return SignedRequest(request.path, body, request.headers)


@pytest.mark.parametrize(
    ("build", "code"),
    [
        (_missing, "SIGNATURE_MISSING"),
        (_signature_header_missing, "SIGNATURE_MISSING"),
        (_wrong_secret, "SIGNATURE_INVALID"),
        (_stale, "TIMESTAMP_STALE"),
        (_future, "TIMESTAMP_FUTURE"),
        (_garbage, "SIGNATURE_MALFORMED"),
        (_bad_timestamp, "SIGNATURE_MALFORMED"),
        (_unknown_version, "SIGNATURE_MALFORMED"),
        (_overlong_id, "SIGNATURE_MALFORMED"),
        (_tampered, "SIGNATURE_INVALID"),
    ],
)
def test_a_request_failing_verification_is_a_401_problem(shared, shared_api, build, code):
    secret = shared.secret()
    request = build(secret)
    reason = code.lower()
    before = failures(shared, reason)

    answer = shared.post(request)

    assert_problem(answer, 401, code)
    if "webhook-id" in request.headers and request.headers["webhook-timestamp"].isdigit():
        right = expected_signature(secret, request)
        assert right not in answer.text
        assert right.removeprefix("v1,") not in answer.text
    assert secret not in answer.text
    assert failures(shared, reason) == before + 1
    provider_message_id = json.loads(request.body)["data"]["message_id"]
    assert no_message(shared_api, provider_message_id)


# --------------------------------------------------------------------------- rotation


def test_every_configured_secret_is_accepted_during_rotation(server_factory):
    old, new = new_whsec(), new_whsec()
    server = server_factory(providers={"default": {"type": "standard", "secrets": [new, old]}})
    first, second = unique("prov"), unique("prov")
    assert_counts(
        server.post(standard_request(new, standard_report(first, "sent"))), counts(1, applied=1)
    )
    assert_counts(
        server.post(standard_request(old, standard_report(second, "sent"))), counts(1, applied=1)
    )
    stranger = server.post(standard_request(new_whsec(), standard_report(unique("prov"), "sent")))
    assert_problem(stranger, 401, "SIGNATURE_INVALID")
    with server.api(server.staff_token("rotator")) as api:
        assert message(api, first)["status"] == "sent"
        assert message(api, second)["status"] == "sent"


def test_one_valid_signature_among_several_is_enough(shared, shared_api):
    pid = unique("prov")
    request = standard_request(shared.secret(), standard_report(pid, "sent"))
    stranger = expected_signature(new_whsec(), request)
    offered = f"v1,AAAA v2,whatever {stranger} {request.headers['webhook-signature']}"
    answer = shared.post(
        SignedRequest(request.path, request.body, {**request.headers, "webhook-signature": offered})
    )
    assert_counts(answer, counts(1, applied=1))
    assert message(shared_api, pid)["status"] == "sent"


def test_an_occurred_at_with_an_offset_is_stored_in_utc(shared, shared_api):
    pid = unique("prov")
    body = payload(
        {"message_id": pid, "status": "buffered", "occurred_at": "2026-11-23T17:59:58+08:00"}
    )
    assert_counts(shared.post(sign(shared.secret(), body)), counts(1, applied=1))
    expected = datetime(2026, 11, 23, 9, 59, 58, tzinfo=UTC)
    record = message(shared_api, pid)
    assert record["status_changed_at"].endswith("Z")
    assert parse_time(record["status_changed_at"]) == expected
    [event] = events(shared_api, pid)
    assert parse_time(event["occurred_at"]) == expected


# --------------------------------------------------------------------------- 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"type": "message.status", "data": {', "body"),
        (b"\xff\xfe not even text", "body"),
        (payload({"status": "delivered"}), "data.message_id"),
        (payload({"message_id": "p-1"}), "data.status"),
        (payload({"message_id": 12345, "status": "delivered"}), "data.message_id"),
        (payload({"message_id": "p-1", "status": ["delivered"]}), "data.status"),
        (payload({"message_id": "p-1", "status": "delivered", "to": "0917 123"}), "data.to"),
        (
            payload(
                {"message_id": "p-1", "status": "delivered", "occurred_at": "2026-01-01T00:00:00"}
            ),
            "data.occurred_at",
        ),
        (
            payload(
                [
                    {"message_id": "p-1", "status": "sent"},
                    {"message_id": "p-1", "status": 7},
                    {"message_id": "p-1", "status": "delivered"},
                ]
            ),
            "data[1].status",
        ),
        (payload([]), "data"),
        (payload([{"message_id": "p-1", "status": "sent"}] * 1001), "data"),
        (b"null", "body"),
        (payload("delivered"), "data"),
        (
            json.dumps({"type": "other", "data": {"message_id": "p", "status": "x"}}).encode(),
            "type",
        ),
        (json.dumps({"type": "message.status"}).encode(), "data"),
    ],
)
def test_an_invalid_payload_is_a_400_naming_the_field(shared, shared_api, body, field):
    answer = shared.post(sign(shared.secret(), body))
    problem = assert_problem(answer, 400, "PAYLOAD_INVALID")
    assert problem["field"] == field
    assert field in problem["detail"]
    assert no_message(shared_api, "p-1")


def test_a_bad_batch_item_spoils_the_whole_request(shared, shared_api):
    good, bad = unique("prov"), unique("prov")
    body = payload([standard_report(good, "delivered"), standard_report(bad, "delivered", to="12")])
    problem = assert_problem(shared.post(sign(shared.secret(), body)), 400, "PAYLOAD_INVALID")
    assert problem["field"] == "data[1].to"
    assert no_message(shared_api, good)
    assert no_message(shared_api, bad)


# --------------------------------------------------------------------------- 413


def sized_payload(data: Any, size: int) -> bytes:
    """A valid payload padded (with an ignored member) to exactly ``size`` bytes."""
    bare = json.dumps({"type": "message.status", "data": data, "padding": ""}).encode()
    body = bare[: -len(b'""}')] + b'"' + b"p" * (size - len(bare)) + b'"}'
    assert len(body) == size
    json.loads(body)
    return body


def test_a_body_over_max_body_bytes_is_a_413_problem(server_factory):
    server = server_factory(settings={"max_body_bytes": 2048})
    url = server.base_url + "/webhooks/default"
    secret = server.secret()

    too_big_id = unique("prov")
    too_big = sign(secret, sized_payload(standard_report(too_big_id, "sent"), 2049))
    answer = httpx.post(url, content=too_big.body, headers=too_big.headers, timeout=15)
    assert answer.request.headers["content-length"] == "2049"
    assert_problem(answer, 413, "BODY_TOO_LARGE")

    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"{" + b" " * 510 + b"}"

    chunked = httpx.post(url, content=chunks(), headers=too_big.headers, timeout=15)
    assert chunked.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in chunked.request.headers
    assert_problem(chunked, 413, "BODY_TOO_LARGE")

    # Exactly at the limit is still accepted, also when chunked.
    fits_id, chunked_id = unique("prov"), unique("prov")
    fits = sign(secret, sized_payload(standard_report(fits_id, "sent"), 2048))
    assert_counts(server.post(fits), counts(1, applied=1))
    fits_chunked = sign(secret, sized_payload(standard_report(chunked_id, "sent"), 2048))
    pieces = [fits_chunked.body[i : i + 300] for i in range(0, 2048, 300)]
    answer = httpx.post(url, content=iter(pieces), headers=fits_chunked.headers, timeout=15)
    assert answer.request.headers.get("transfer-encoding") == "chunked"
    assert_counts(answer, counts(1, applied=1))

    with server.api(server.staff_token("sizes")) as api:
        assert no_message(api, too_big_id)
        assert message(api, fits_id)["status"] == "sent"
        assert message(api, chunked_id)["status"] == "sent"


# --------------------------------------------------------------------------- 415


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
def test_a_wrong_content_type_is_a_415_problem(shared, shared_api, content_type):
    pid = unique("prov")
    request = sign(
        shared.secret(), payload(standard_report(pid, "sent")), content_type=content_type
    )
    answer = httpx.post(
        shared.base_url + request.path, content=request.body, headers=request.headers
    )
    if content_type is None:
        assert "content-type" not in answer.request.headers
    assert_problem(answer, 415, "CONTENT_TYPE_UNSUPPORTED")
    assert no_message(shared_api, pid)


# --------------------------------------------------------------------------- 405


def test_get_on_a_webhook_url_is_a_405_problem(shared):
    answer = httpx.get(shared.base_url + "/webhooks/default")
    body = assert_problem(answer, 405)
    assert body["code"] == "METHOD_NOT_ALLOWED"
    assert "POST" in answer.headers.get("allow", "")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/webhooks/default/extra", 404),  # a "/" in the name: no route
        ("POST", "/webhooks/", 404),  # no name
        ("PUT", "/webhooks/default", 405),  # not a method of the route
    ],
)
def test_a_request_beside_the_webhook_route_gets_the_routers_problem(shared, method, path, status):
    """POSTs to a webhook URL skip the router (``WebhookShortcut``); these do not."""
    request = standard_request(shared.secret(), standard_report(unique("prov"), "sent"))
    answer = httpx.request(
        method, shared.base_url + path, content=request.body, headers=request.headers
    )
    assert_problem(answer, status)
    assert answer.headers["x-request-id"]


# --------------------------------------------------------------------------- 503


@pytest.mark.sqlite_only("locks the SQLite file to make the store unavailable")
def test_a_store_that_cannot_commit_is_a_503_and_the_retry_applies_cleanly(server):
    pid = unique("prov")
    request = standard_request(server.secret(), standard_report(pid, "delivered"))
    event_id = request.headers["webhook-id"]
    token = server.staff_token("locked-out")  # the CLI needs the database: before locking

    lock = sqlite3.connect(server.db_path, isolation_level=None, timeout=10)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        answer = server.post(request, timeout=15)
        waited = time.monotonic() - started
        problem = assert_problem(answer, 503, "STORE_UNAVAILABLE")
        assert int(answer.headers["retry-after"]) > 0
        assert waited > 3, "the writer should have waited for the lock (busy timeout)"
        assert "Traceback" not in problem["detail"]
        assert_problem(httpx.get(server.base_url + "/readyz", timeout=15), 503)
        assert httpx.get(server.base_url + "/healthz", timeout=15).status_code == 200
    finally:
        lock.execute("ROLLBACK")
        lock.close()

    with contextlib.closing(sqlite3.connect(server.db_path)) as db:
        for table, column, value in (
            ("events", "event_id", event_id),
            ("messages", "provider_message_id", pid),
        ):
            found = db.execute(f"SELECT count(*) FROM {table} WHERE {column} = ?", (value,))
            assert found.fetchone()[0] == 0, table
        raw = db.execute(
            "SELECT count(*) FROM raw_requests WHERE headers LIKE ?", (f"%{event_id}%",)
        )
        assert raw.fetchone()[0] == 0

    ready = httpx.get(server.base_url + "/readyz", timeout=15)
    assert ready.status_code == 200, ready.text
    assert_counts(server.post(request, timeout=15), counts(1, applied=1))
    with server.api(token) as api:
        record = message(api, pid)
        assert (record["status"], record["report_count"]) == ("delivered", 1)
        [event] = events(api, pid)
        assert (event["event_id"], event["deliveries"]) == (event_id, 1)


# --------------------------------------------------------------------------- redeliveries


def test_sequential_redeliveries_are_duplicates(shared, shared_api):
    pid = unique("prov")
    request = standard_request(shared.secret(), standard_report(pid, "delivered"))
    assert_counts(shared.post(request), counts(1, applied=1))
    assert_counts(shared.post(request), counts(1, duplicates=1))
    assert_counts(shared.post(request), counts(1, duplicates=1))
    [event] = events(shared_api, pid)
    assert event["deliveries"] == 3
    assert event["outcome"] == "applied"
    assert message(shared_api, pid)["report_count"] == 1


async def test_concurrent_redeliveries_apply_exactly_once(shared, shared_api):
    pid = unique("prov")
    request = standard_request(shared.secret(), standard_report(pid, "delivered"))
    async with httpx.AsyncClient(base_url=shared.base_url, timeout=30) as client:
        answers = await asyncio.gather(
            *(
                client.post(request.path, content=request.body, headers=request.headers)
                for _ in range(32)
            )
        )
    assert [a.status_code for a in answers] == [200] * 32
    total = {key: sum(a.json()[key] for a in answers) for key in counts(0)}
    assert total == counts(32, applied=1, duplicates=31)
    assert all(a.json()["received"] == 1 for a in answers)
    [event] = events(shared_api, pid)
    assert event["deliveries"] == 32
    record = message(shared_api, pid)
    assert (record["status"], record["report_count"]) == ("delivered", 1)


# --------------------------------------------------------------------------- out of order


def test_a_late_sent_report_does_not_move_a_delivered_message_back(shared, shared_api):
    pid = unique("prov")
    secret = shared.secret()
    delivered_at = moment(10)
    delivered = standard_request(
        secret, standard_report(pid, "delivered", occurred_at=delivered_at)
    )
    sent = standard_request(secret, standard_report(pid, "sent", occurred_at=moment(20)))
    assert_counts(shared.post(delivered), counts(1, applied=1))
    assert_counts(shared.post(sent), counts(1, superseded=1))
    record = message(shared_api, pid)
    assert (record["status"], record["final"], record["report_count"]) == ("delivered", True, 2)
    assert parse_time(record["status_changed_at"]) == delivered_at
    timeline = events(shared_api, pid)
    assert [(e["status"], e["outcome"]) for e in timeline] == [
        ("sent", "superseded"),
        ("delivered", "applied"),
    ]


def test_a_failure_is_corrected_by_a_later_delivered(shared, shared_api):
    pid = unique("prov")
    secret = shared.secret()
    failed = standard_request(
        secret, standard_report(pid, "failed", occurred_at=moment(30), error_code="E1")
    )
    delivered_at = moment(5)
    delivered = standard_request(
        secret, standard_report(pid, "delivered", occurred_at=delivered_at)
    )
    assert_counts(shared.post(failed), counts(1, applied=1))
    assert message(shared_api, pid)["status"] == "failed"
    assert_counts(shared.post(delivered), counts(1, applied=1))
    record = message(shared_api, pid)
    assert record["status"] == "delivered"
    assert record["error_code"] is None
    assert parse_time(record["status_changed_at"]) == delivered_at


def test_the_earlier_of_two_failures_wins_in_either_order(shared, shared_api):
    secret = shared.secret()
    early, late = moment(60), moment(30)
    first, second = unique("prov"), unique("prov")

    def reports(pid: str) -> tuple[SignedRequest, SignedRequest]:
        # The earlier one is "failed", which loses the tie-break between equal times:
        # only the occurrence time can make it win.
        return (
            standard_request(
                secret, standard_report(pid, "failed", occurred_at=early, error_code="EARLY")
            ),
            standard_request(
                secret, standard_report(pid, "undelivered", occurred_at=late, error_code="LATE")
            ),
        )

    early_one, late_one = reports(first)
    assert_counts(shared.post(early_one), counts(1, applied=1))
    assert_counts(shared.post(late_one), counts(1, superseded=1))

    early_two, late_two = reports(second)
    assert_counts(shared.post(late_two), counts(1, applied=1))
    assert_counts(shared.post(early_two), counts(1, applied=1))

    def final(pid: str) -> tuple[Any, ...]:
        record = message(shared_api, pid)
        return (
            record["status"],
            record["error_code"],
            parse_time(record["status_changed_at"]),
            record["report_count"],
        )

    assert final(first) == final(second) == ("failed", "EARLY", early, 2)


# --------------------------------------------------------------------------- batches


def test_a_batch_is_received_item_by_item(shared, shared_api):
    one, two = unique("prov"), unique("prov")
    request = standard_request(
        shared.secret(),
        [
            standard_report(one, "sent", occurred_at=moment(50)),
            standard_report(two, "delivered", occurred_at=moment(40)),
            standard_report(one, "delivered", occurred_at=moment(30)),
        ],
    )
    answer = shared.post(request)
    assert answer.status_code == 200, answer.text
    assert answer.json()["received"] == 3
    assert answer.json() == counts(3, applied=3)
    webhook_id = request.headers["webhook-id"]
    assert [e["event_id"] for e in events(shared_api, one)] == [
        f"{webhook_id}:0",
        f"{webhook_id}:2",
    ]
    assert [e["event_id"] for e in events(shared_api, two)] == [f"{webhook_id}:1"]
    assert message(shared_api, one)["status"] == "delivered"
    assert message(shared_api, two)["status"] == "delivered"

    # The whole batch again: every item is a duplicate.
    assert_counts(shared.post(request), counts(3, duplicates=3))
    assert {e["deliveries"] for e in events(shared_api, one)} == {2}


# --------------------------------------------------------------------------- unknown words


def test_an_unknown_status_word_is_kept_but_changes_nothing(shared, shared_api):
    pid = unique("prov")
    secret = shared.secret()
    assert_counts(
        shared.post(standard_request(secret, standard_report(pid, "sent", occurred_at=moment(20)))),
        counts(1, applied=1),
    )
    odd = standard_request(
        secret, standard_report(pid, "PARTIALLY_TELEPORTED", occurred_at=moment(10))
    )
    assert_counts(shared.post(odd), counts(1, superseded=1))
    record = message(shared_api, pid)
    assert (record["status"], record["report_count"]) == ("sent", 2)
    timeline = events(shared_api, pid)
    assert [(e["status"], e["provider_status"], e["outcome"]) for e in timeline] == [
        ("sent", "sent", "applied"),
        (None, "PARTIALLY_TELEPORTED", "superseded"),
    ]


def test_an_unknown_word_for_a_new_message_leaves_it_without_status(shared, shared_api):
    pid = unique("prov")
    odd = standard_request(shared.secret(), standard_report(pid, "mystery"))
    assert_counts(shared.post(odd), counts(1, superseded=1))
    record = message(shared_api, pid)
    assert (record["status"], record["final"], record["status_changed_at"]) == (None, False, None)
    [event] = events(shared_api, pid)
    assert (event["status"], event["provider_status"]) == (None, "mystery")


# --------------------------------------------------------------------------- insecure


def test_an_insecure_provider_accepts_unsigned_requests_and_warns(server_factory):
    server = server_factory(
        providers={"default": {"type": "standard", "insecure_no_signature": True}}
    )
    pid = unique("prov")
    body = payload(standard_report(pid, "delivered"))
    headers = {
        "content-type": "application/json",
        "webhook-id": unique("evt"),
        "webhook-timestamp": str(int(time.time())),
    }
    answer = httpx.post(server.base_url + "/webhooks/default", content=body, headers=headers)
    assert_counts(answer, counts(1, applied=1))

    # Still a webhook-id: it is the event id.
    no_id = {k: v for k, v in headers.items() if k != "webhook-id"}
    missing = httpx.post(server.base_url + "/webhooks/default", content=body, headers=no_id)
    assert assert_problem(missing, 400, "PAYLOAD_INVALID")["field"] == "webhook-id"
    no_ts = {k: v for k, v in headers.items() if k != "webhook-timestamp"}
    missing = httpx.post(server.base_url + "/webhooks/default", content=body, headers=no_ts)
    assert assert_problem(missing, 400, "PAYLOAD_INVALID")["field"] == "webhook-timestamp"

    warnings = [
        json.loads(line)
        for line in server.log_path.read_text().splitlines()
        if line.startswith("{") and "insecure_no_signature" in line
    ]
    assert warnings, server.log_path.read_text()
    assert any(w["level"] == "warning" for w in warnings)
    with server.api(server.staff_token("insecure")) as api:
        assert message(api, pid)["status"] == "delivered"


# --------------------------------------------------------------------------- X-Request-ID


def test_a_sane_request_id_is_echoed(shared):
    request = standard_request(shared.secret(), standard_report(unique("prov"), "sent"))
    traced = SignedRequest(
        request.path, request.body, {**request.headers, "x-request-id": "abc-123.XYZ:9_z"}
    )
    answer = shared.post(traced)
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] == "abc-123.XYZ:9_z"
    problem = httpx.post(
        shared.base_url + "/webhooks/nobody", content=b"{}", headers={"x-request-id": "trace-42"}
    )
    assert problem.headers["x-request-id"] == "trace-42"
    assert problem.json()["request_id"] == "trace-42"


@pytest.mark.parametrize("offered", ["x" * 300, "has spaces in it", "semi;colon", ""])
def test_an_insane_request_id_is_replaced(shared, offered):
    answer = httpx.post(
        shared.base_url + "/webhooks/nobody", content=b"{}", headers={"x-request-id": offered}
    )
    generated = answer.headers["x-request-id"]
    assert generated != offered
    assert 8 <= len(generated) <= 128
    assert " " not in generated
    assert answer.json()["request_id"] == generated
    other = httpx.post(
        shared.base_url + "/webhooks/nobody", content=b"{}", headers={"x-request-id": offered}
    )
    assert other.headers["x-request-id"] != generated


def test_every_webhook_answer_carries_a_request_id(shared):
    request = standard_request(shared.secret(), standard_report(unique("prov"), "sent"))
    answers = [
        shared.post(request),
        httpx.post(shared.base_url + "/webhooks/default", content=b"x"),
        httpx.get(shared.base_url + "/webhooks/default"),
    ]
    ids = [a.headers["x-request-id"] for a in answers]
    assert all(ids) and len(set(ids)) == 3


def test_a_client_reference_in_a_report_makes_the_message_findable_by_it(shared):
    reference = "order-8821-confirmation"
    request = standard_request(
        shared.secret(),
        standard_report("prov-ref-1", "sent", client_reference=reference),
    )
    assert shared.post(request).status_code == 200
    with shared.api(shared.staff_token("ref-viewer")) as api:
        items = api.get("/v1/messages", params={"client_reference": reference}).json()["items"]
    assert [(m["provider_message_id"], m["client_reference"]) for m in items] == [
        ("prov-ref-1", reference)
    ]
