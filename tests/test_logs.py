"""JSON-lines logs that never hold a full phone number or a secret (README "HTTP API")."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import time
import tomllib
from datetime import datetime

import httpx
import pytest
from conftest import new_whsec

from receiver.logs import PREMASKED, JsonFormatter, LineHandler, info_premasked, mask_phone_numbers
from receiver.testing import standard_report, standard_request
from receiver.testing.fake_provider import FakeProvider, Reject

NUMBER = "+639171234567"
DIGITS = NUMBER[1:]


# -- mask_phone_numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "+639171234567",  # Philippines, 12 digits
        "+14155552671",  # US, 11 digits
        "+4915123456789",  # Germany, 13 digits
        "+1234567",  # shortest E.164 the service accepts: 7 digits
        "+123456789012345",  # longest: 15 digits
    ],
)
def test_an_e164_number_is_masked_to_a_prefix_and_its_last_two_digits(number):
    masked = mask_phone_numbers(number)
    digits = number[1:]
    assert digits not in masked
    assert masked.startswith("+")
    assert masked.endswith(number[-2:])
    visible = re.sub(r"[^0-9]", "", masked)
    assert len(visible) <= 4  # at most a two-digit country hint and the last two digits
    assert masked[1:3] == digits[:2] or not masked[1:3].isdigit()
    assert "*" in masked


def test_numbers_are_masked_inside_text_and_every_occurrence():
    text = f"to={NUMBER}, from +14155552671; again ({NUMBER})."
    masked = mask_phone_numbers(text)
    assert DIGITS not in masked
    assert "14155552671" not in masked
    assert masked.startswith("to=+63")
    assert masked.count("*") > 0
    assert masked.endswith("67).")
    # Only the numbers changed: the text around them is intact.
    assert re.sub(r"\+[0-9*]+", "N", masked) == "to=N, from N; again (N)."


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nothing to see here",
        "+123456 is too short",
        "+0123456789 cannot start with 0",
        "status=delivered error_code=30008 took 12.5 ms",
        "msg_01J9Z8Y7X6W5V4T3S2R1Q0P9N8 evt_12345678",
        "2026-11-23T09:59:58Z",
    ],
)
def test_other_text_is_left_alone(text):
    assert mask_phone_numbers(text) == text


# Numbers without "+" as providers write them in their own text: 8-15 digits standing
# alone (receiver/logs.py says why), masked to their first and last two digits.
@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Destination 639171234569 is barred", "Destination 63********69 is barred"),
        ("msisdn=639171234569.", "msisdn=63********69."),
        ('{"to": "639171234569"}', '{"to": "63********69"}'),
        ("0917-123-4567 unreachable", "09*******67 unreachable"),
        ("0917 123 4567", "09*******67"),
        ("06 12 34 56 78", "06******78"),
        ("(415) 555-0100 busy", "41******00 busy"),
        ("call +1 (415) 555-0100", "call +1 41******00"),
        ("12345678", "12****78"),  # the shortest run that counts
        ("123456789012345", "12***********45"),  # the longest
        ("639171234567 and 639171234568", "63********67 and 63********68"),
        ("number: 4155550100, code 21610", "number: 41******00, code 21610"),
        (
            "1732355998 (a Unix time, cannot be told from a number)",
            "17******98 (a Unix time, cannot be told from a number)",
        ),
    ],
)
def test_a_number_without_plus_standing_alone_is_masked(text, masked):
    assert mask_phone_numbers(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "5550100 is a local number without its area code",  # 7 digits
        "1234567890123456 is longer than any number",  # 16 digits
        "2026-11-23 09:59:58 UTC",  # a date and a time
        "2026-11-23T09:59:58.123+00:00",
        "20261123T095958Z",
        "listening on 127.0.0.1:8000, port 54321",
        "took 12345678.5 ms",  # a decimal
        "1,234,567,890 reports",  # thousands separators
        "request 67264a065a40fce002692a6b67ed7ffe",  # our request ids: hex
        "123e4567-e89b-12d3-a456-426614174000",  # a UUID
        "12345678-1234-5678-1234-567812345678",  # a UUID of digits only
        "msg_01J9Z8Y7X6W5V4T3S2R1Q0P9N8 evt_12345678 SM1234567890",  # ids
        "batch-639171234567",  # part of a dashed id
        "status=delivered error_code=30008 took 12.5 ms count=1234567",
    ],
)
def test_digit_runs_that_are_not_numbers_are_left_alone(text):
    assert mask_phone_numbers(text) == text


# -- JsonFormatter ----------------------------------------------------------------------------


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.getLogger("receiver.test").makeRecord(
        "receiver.test", logging.WARNING, __file__, 1, message, args, None, extra=extra
    )
    return made


def test_the_formatter_writes_one_json_object_on_one_line():
    line = JsonFormatter().format(record("line one\nline two %d", 7, provider="acme", count=3))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "warning"
    assert entry["logger"] == "receiver.test"
    assert entry["message"] == "line one\nline two 7"
    assert entry["provider"] == "acme"
    assert entry["count"] == 3  # non-string extras keep their JSON type
    moment = datetime.fromisoformat(entry["time"])
    assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0
    # No LogRecord internals leak in as "extras".
    assert not {"args", "msg", "levelno", "pathname", "exc_info", "thread"} & set(entry)


def test_the_formatter_masks_numbers_in_message_args_and_string_extras():
    line = JsonFormatter().format(
        record("lookup to=%s", NUMBER, query=f"to={NUMBER}", path=f"/v1/x/{NUMBER}")
    )
    assert DIGITS not in line
    entry = json.loads(line)
    assert entry["message"].startswith("lookup to=+63")
    assert entry["message"].endswith("67")
    assert entry["query"].startswith("to=+63") and DIGITS not in entry["query"]
    assert entry["path"].startswith("/v1/x/+63")


@pytest.mark.parametrize("written", ["+63 917 123 4567", "+63-917-123-4567", "+63.917.123.4567"])
def test_numbers_written_with_separators_are_masked(written):
    masked = mask_phone_numbers(f"call {written} now")
    assert "917" not in masked and "4567" not in masked
    assert masked == "call +63********67 now"


def test_the_formatter_masks_numbers_in_non_string_extras():
    line = JsonFormatter().format(
        record("lookup", recipients=[NUMBER, "+14155552671"], query={"to": NUMBER})
    )
    entry = json.loads(line)
    assert DIGITS not in line and "14155552671" not in line
    assert entry["recipients"][0].endswith("67") and entry["query"]["to"].endswith("67")


def test_the_formatter_masks_numbers_in_exceptions():
    try:
        raise ValueError(f"cannot deliver to {NUMBER}")
    except ValueError:
        made = logging.getLogger("receiver.test").makeRecord(
            "receiver.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = JsonFormatter().format(made)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "error"
    assert "Traceback" in entry["exception"]
    assert "ValueError: cannot deliver to +63" in entry["exception"]
    assert DIGITS not in line


# -- the access line, written straight to the line handlers -----------------------------------


ACCESS_FIELDS = {
    "request_id": "log-fast-1",
    "method": "POST",
    "path": "/webhooks/default",
    "status": 200,
    "duration_ms": 1.25,
    "client": "127.0.0.1",
}


@pytest.fixture
def access_logger():
    """A logger of its own, not propagating, with the handler ``configure`` installs
    writing to a StringIO; the time frozen, so that two lines can be compared whole."""
    logger = logging.getLogger("receiver.test.access")
    handler = LineHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, handler.stream
    logger.handlers[:] = []


def test_the_access_line_written_straight_is_the_line_a_record_makes(access_logger, monkeypatch):
    logger, stream = access_logger
    monkeypatch.setattr(time, "time", lambda: 1795428000.25)
    monkeypatch.setattr(time, "time_ns", lambda: 1795428000_250_000_000)  # LogRecord, 3.13
    info_premasked(logger, "POST /webhooks/default 200", ACCESS_FIELDS)
    logger.info("POST /webhooks/default 200", extra={**ACCESS_FIELDS, PREMASKED: True})
    straight, recorded = stream.getvalue().splitlines()
    assert straight == recorded
    assert straight == (
        '{"time": "2026-11-23T10:00:00.250+00:00", "level": "info",'
        ' "logger": "receiver.test.access", "message": "POST /webhooks/default 200",'
        ' "request_id": "log-fast-1", "method": "POST", "path": "/webhooks/default",'
        ' "status": 200, "duration_ms": 1.25, "client": "127.0.0.1"}'
    )


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_another_handler_on_the_way_gets_the_access_line_as_a_record(access_logger):
    logger, stream = access_logger
    other = Records()
    logger.addHandler(other)
    info_premasked(logger, "POST /webhooks/default 200", ACCESS_FIELDS)
    [made] = other.records
    assert made.getMessage() == "POST /webhooks/default 200" and made.levelno == logging.INFO
    assert made.request_id == "log-fast-1" and getattr(made, PREMASKED) is True
    assert json.loads(stream.getvalue())["request_id"] == "log-fast-1"


def test_a_filter_on_the_logger_still_decides_about_the_access_line(access_logger):
    logger, stream = access_logger
    logger.addFilter(lambda record: record.status != 200)
    try:
        info_premasked(logger, "POST /webhooks/default 200", ACCESS_FIELDS)
        info_premasked(logger, "POST /webhooks/default 401", {**ACCESS_FIELDS, "status": 401})
    finally:
        logger.filters.clear()
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["status"] == 401


def test_a_handler_above_info_writes_no_access_line(access_logger):
    logger, stream = access_logger
    logger.handlers[0].setLevel(logging.WARNING)
    info_premasked(logger, "POST /webhooks/default 200", ACCESS_FIELDS)
    assert stream.getvalue() == ""


# -- end to end: the server's own log file ----------------------------------------------------


def test_the_server_log_is_json_lines_without_numbers_or_secrets(server):
    webhook_secret = server.secret()
    session_secret = str(tomllib.loads(server.config_path.read_text())["session_secret"])
    token = server.staff_token("log-reader", "sender")
    base = server.base_url

    report = standard_report("prov-log-1", "delivered", to=NUMBER)
    assert server.post(standard_request(webhook_secret, report)).status_code == 200
    with server.api(token) as api:
        found = api.get("/v1/messages?to=%2B639171234567")
        assert found.status_code == 200
        [message] = found.json()["items"]
        assert message["to"] == NUMBER  # the API shows it to a sender; the log must not
        message_id = message["id"]
        assert api.get(f"/v1/messages/{message_id}/events").status_code == 200
        # A few errors, some of them carrying the number or a secret in the request.
        assert api.get("/v1/messages/%2B639171234567").status_code == 404
        assert api.get("/v1/messages", params={"to": "+63917", "x": NUMBER}).status_code == 400
        assert api.get("/v1/messages", params={"cursor": session_secret}).status_code == 400
    assert httpx.get(base + "/nope", headers={"X-Request-ID": "log-e2e-1"}).status_code == 404
    assert (
        httpx.get(
            base + "/v1/messages", headers={"Authorization": f"Bearer {webhook_secret}"}
        ).status_code
        == 401
    )
    forged = standard_request(
        "whsec_" + "A" * 32, standard_report("prov-log-2", "failed", to=NUMBER)
    )
    assert server.post(forged).status_code == 401
    bad = standard_request(webhook_secret, {"message_id": "prov-log-3", "status": "x", "to": "12"})
    assert server.post(bad).status_code == 400

    server.stop()  # flush everything (and the shutdown lines) to the file
    text = server.log_path.read_text()
    lines = text.splitlines()
    assert len(lines) > 5
    entries = []
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"log line {number} is not JSON: {line!r}")
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= set(entry), line
        entries.append(entry)

    access = [e for e in entries if e.get("path") == "/nope"]
    assert len(access) == 1
    assert access[0]["request_id"] == "log-e2e-1"
    assert access[0]["method"] == "GET"
    assert access[0]["status"] == 404
    assert isinstance(access[0]["duration_ms"], (int, float)) and access[0]["duration_ms"] >= 0
    lookups = [e for e in entries if e.get("path") == "/v1/messages" and e.get("status") == 200]
    assert lookups, "the staff lookup left no access line"
    webhooks = [e for e in entries if e.get("path") == "/webhooks/default"]
    assert sorted(e["status"] for e in webhooks) == [200, 400, 401]
    assert all(e.get("request_id") for e in webhooks)

    assert DIGITS not in text
    assert webhook_secret not in text
    assert webhook_secret.removeprefix("whsec_") not in text
    assert session_secret not in text
    assert token not in text


def test_a_number_in_the_providers_own_words_is_masked_in_the_server_log(server_factory):
    """A provider's rejection text is logged (the outbox worker's warning): a number in
    it without "+" is masked, the rest of the text is kept for the operator."""
    barred = "639171234569"
    with FakeProvider() as fake:
        provider = {"type": "standard", "secrets": [new_whsec()], **fake.config_keys()}
        server = server_factory({"outbox": {"poll_seconds": 0.05}}, {"default": provider})
        fake.on_send(Reject(400, "NUMBER_BARRED", f"Destination {barred} is barred"))
        with server.api(server.staff_token("log-sender", "sender")) as api:
            sent = api.post(
                "/v1/messages",
                json={"to": "+" + barred, "body": "hello"},
                headers={"Idempotency-Key": "log-barred-1"},
            )
            assert sent.status_code == 202, sent.text
            message_id = sent.json()["id"]
            deadline = time.monotonic() + 20  # a safety timeout, not a measurement
            while api.get(f"/v1/messages/{message_id}").json()["status"] != "rejected":
                assert time.monotonic() < deadline, "the rejection was never recorded"
                time.sleep(0.05)
        server.stop()
    text = server.log_path.read_text()
    assert "NUMBER_BARRED Destination 63********69 is barred" in text
    assert barred not in text
