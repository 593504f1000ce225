"""Type ``smstools`` (sans-IO): config, the ``delivery_report`` parser and its status map,
event ids, timestamps, and the sender's requests and answer reading.

The payloads are shaped like the example on https://www.sms-tools.it/it/webhooks; the
send answers like https://smstools.com/en/sms-gateway-api/send_message and its
"Handling errors" page."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import ValidationError

from receiver.core.status import Status
from receiver.errors import PayloadInvalid
from receiver.providers import PROVIDER_TYPES, error_label, explain_error
from receiver.providers.base import (
    JSON,
    Accepted,
    Deferred,
    InboundRequest,
    Rejected,
    Unknown,
    WebhookRequest,
)
from receiver.providers.smstools import (
    STATUS_MAP,
    SmstoolsConfig,
    SmstoolsProvider,
    SmstoolsSender,
    parse_smstools_time,
)
from receiver.records import OutboxItem
from receiver.testing import smstools_report, smstools_request

TOKEN = "tok_" + "Hq7Z" * 8
RECEIVED = datetime(2026, 12, 4, 10, 0, 0, tzinfo=UTC)

# The example payload of Smstools' webhooks page, verbatim.
DOCUMENTED = b"""[
  {
    "webhook_id": "wh_a9b56720-7adc-4c78-a04d-62521d1d3b09",
    "webhook_type": "delivery_report",
    "username": "myusername",
    "timezone": "Europe/Brussels",
    "message": {
      "messageid": "e1qk89exbzgf6fzfunceym2sd67h88",
      "datetime": "2026-01-01 00:00:00",
      "datetime_utc": "2026-01-01 00:00:00",
      "content": "here comes your message body",
      "sender": "yoursender",
      "receiver": "32470123456",
      "reference": "yourref",
      "delivery_code": "1",
      "delivery_status": "delivered",
      "delivery_status_datetime": "2026-01-01 00:00:00",
      "delivery_code_detail": "10",
      "delivery_code_detail_description": "Unknown Subscriber"
    }
  }
]"""


def provider(**keys: Any) -> SmstoolsProvider:
    table = {"type": "smstools", "url_token": TOKEN, **keys}
    return SmstoolsProvider("smstools", SmstoolsConfig.model_validate(table))


def inbound(body: bytes | list[Any] | dict[str, Any]) -> InboundRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return InboundRequest(
        method="POST",
        url=f"https://dlr.example.com/webhooks/smstools?token={TOKEN}",
        headers={"content-type": JSON},
        query_string=f"token={TOKEN}".encode(),
        body=raw,
        media_type=JSON,
        received_at=RECEIVED,
    )


def parse(body: bytes | list[Any] | dict[str, Any]) -> list[Any]:
    return provider().parse(inbound(body))


def event(code: str = "1", **message: Any) -> dict[str, Any]:
    """A documented event with ``message`` fields changed (None removes one)."""
    made: dict[str, Any] = json.loads(DOCUMENTED)[0]
    made["message"]["delivery_code"] = code
    for key, value in message.items():
        if value is None:
            made["message"].pop(key, None)
        else:
            made["message"][key] = value
    return made


# --- config ---------------------------------------------------------------------------------


def test_registered_and_class_attributes() -> None:
    assert PROVIDER_TYPES["smstools"] is SmstoolsProvider
    assert SmstoolsProvider.media_types == frozenset({JSON})
    assert SmstoolsConfig.signed_reports is False
    assert error_label("smstools") == "Smstools"


@pytest.mark.parametrize(
    "keys",
    [
        {"url_token": TOKEN},
        {"allowed_ips": ["185.71.0.0/24"]},
        {"url_token": TOKEN, "allowed_ips": ["185.71.0.10/32"]},
        {"insecure_no_signature": True},
    ],
    ids=["token", "addresses", "both", "insecure"],
)
def test_a_guarded_config_is_accepted(keys: dict[str, Any]) -> None:
    config = SmstoolsConfig.model_validate({"type": "smstools", **keys})
    assert not config.sends


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        ({}, "url_token: reports of this type are not signed"),
        ({"url_token": TOKEN, "secrets": ["whsec_abc"]}, "(?s)secrets.*Smstools signs no reports"),
        ({"url_token": "short"}, "url_token"),
        ({"url_token": TOKEN, "client_id": "4366217136"}, "api_key: is required to send"),
        ({"url_token": TOKEN, "api_key": "s3cret"}, "client_id: is required to send"),
        ({"url_token": TOKEN, "sender": "ACME"}, "client_id: is required to send"),
        ({"url_token": TOKEN, "client_id": "a b", "api_key": "x"}, "client_id"),
        ({"url_token": TOKEN, "sender": "TwelveLetter"}, "sender"),
        ({"url_token": TOKEN, "sender": "+123456789012345"}, "sender"),
        ({"url_token": TOKEN, "sender": "ACME!"}, "sender"),
        ({"url_token": TOKEN, "client_secret": "x"}, "client_secret"),
    ],
    ids=[
        "unguarded",
        "secrets",
        "short-token",
        "id-without-secret",
        "secret-without-id",
        "sender-alone",
        "id-with-space",
        "long-name",
        "long-number",
        "special-character",
        "unknown-key",
    ],
)
def test_bad_config_refused(keys: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        SmstoolsConfig.model_validate({"type": "smstools", **keys})


@pytest.mark.parametrize("name", [None, "32460260667", "+32460260667", "Parcel Shop"])
def test_a_sending_config(name: str | None) -> None:
    keys = {"client_id": "436621713682841522298", "api_key": "FGbXCUtjrY64E32BbBkz8"}
    config = provider(**keys, sender=name).config
    assert config.sends and config.sender == name  # a number, or a name of 11 characters


# --- verify and resign --------------------------------------------------------------------


def test_verify_has_nothing_to_check_the_edge_checks_the_token() -> None:
    provider().verify(inbound(DOCUMENTED), 0.0)  # no signature exists to refuse


def test_resign_returns_the_request_unchanged() -> None:
    request = WebhookRequest("/webhooks/smstools?token=REDACTED", DOCUMENTED, {})
    assert provider().resign(request, public_base_url="https://x.example", now=0) is request


# --- parse ----------------------------------------------------------------------------------


def test_parse_the_documented_example() -> None:
    [report] = parse(DOCUMENTED)

    assert report.provider_message_id == "e1qk89exbzgf6fzfunceym2sd67h88"
    assert (report.status, report.provider_status) == (Status.DELIVERED, "delivered")
    assert report.to == "+32470123456"
    assert (report.error_code, report.error_message) == ("10", "Unknown Subscriber")
    assert report.message_reference == report.client_reference == "yourref"
    # 2026-01-01 00:00 in Brussels (CET, UTC+1) is 2025-12-31 23:00 UTC.
    assert report.occurred_at == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    assert report.event_id.startswith("d_")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("0", Status.SENT),
        ("1", Status.DELIVERED),
        ("2", Status.UNDELIVERED),
        ("3", Status.BUFFERED),
        ("4", Status.REJECTED),
        ("5", Status.REJECTED),
        ("9", Status.UNKNOWN),
    ],
)
def test_status_mapping_row(code: str, status: Status) -> None:
    [report] = parse([event(code, delivery_code_detail="")])
    assert report.status is status


def test_status_mapping_is_the_documented_table() -> None:
    assert set(STATUS_MAP) == {"0", "1", "2", "3", "4", "5", "9"}


@pytest.mark.parametrize("code", ["6", "7", "42"])
def test_an_unknown_code_is_kept_with_status_none(code: str) -> None:
    [report] = parse([event(code, delivery_status="something new")])
    assert (report.status, report.provider_status) == (None, "something new")


def test_the_code_stands_for_the_word_when_the_word_is_missing() -> None:
    [report] = parse([event("3", delivery_status=None)])
    assert (report.status, report.provider_status) == (Status.BUFFERED, "3")


def test_a_numeric_code_is_read_as_text() -> None:
    [report] = parse([event(2)])  # type: ignore[arg-type]  # a JSON number
    assert report.status is Status.UNDELIVERED


@pytest.mark.parametrize(
    ("code", "detail", "description", "error_code", "error_message"),
    [
        ("0", "", "", None, None),  # submitted: no error
        ("1", "", "", None, None),
        ("3", "", "", None, None),
        ("2", "", "", "2", None),  # not delivered, no detail: the code is the error
        ("4", "", "", "4", None),
        ("9", "", "", "9", None),
        ("5", "10", "Unknown Subscriber", "10", "Unknown Subscriber"),
        ("2", "11", "", "11", None),
    ],
)
def test_error_code_and_message(
    code: str, detail: str, description: str, error_code: str | None, error_message: str | None
) -> None:
    changes = {"delivery_code_detail": detail, "delivery_code_detail_description": description}
    [report] = parse([event(code, **changes)])
    assert (report.error_code, report.error_message) == (error_code, error_message)


def test_every_explained_code_is_explained() -> None:
    assert "invalid or unknown" in (explain_error("smstools", "10") or "")
    assert "range" in (explain_error("smstools", "11") or "")
    assert "opt-out" in (explain_error("smstools", "131") or "")
    for code in ("2", "4", "5", "9"):
        assert explain_error("smstools", code) is not None
    assert explain_error("smstools", "12") is None  # not in what we could read: no guess


def test_a_batch_gives_one_report_per_delivery_report_and_skips_other_types() -> None:
    read = {"webhook_id": "wh_1", "webhook_type": "read_report", "message": {"x": 1}}
    inbox = {"webhook_id": "wh_2", "webhook_type": "inbox_message"}
    funds = {"webhook_type": "insufficient_funds", "timezone": "Europe/Brussels"}
    batch = [event("0"), read, event("1", messageid="h2md1ewkyzjkuyn9ak7pryw1evtyw3x"), inbox]

    reports = parse([*batch, funds])

    assert [(r.provider_message_id, r.status) for r in reports] == [
        ("e1qk89exbzgf6fzfunceym2sd67h88", Status.SENT),
        ("h2md1ewkyzjkuyn9ak7pryw1evtyw3x", Status.DELIVERED),
    ]
    assert parse([read, inbox]) == []


def test_a_lone_event_object_is_read_as_a_batch_of_one() -> None:
    assert parse(event("1")) == parse([event("1")])


def test_blank_fields_are_absent() -> None:
    [report] = parse([event("1", reference="", receiver="", delivery_code_detail="")])
    assert report.message_reference is None and report.to is None and report.error_code is None


# --- event ids ------------------------------------------------------------------------------


def test_a_redelivery_gets_the_same_event_id_whatever_its_webhook_id() -> None:
    first = event("1")
    again = {**event("1"), "webhook_id": "wh_5d1f0a36-0a39-4b8e-a6a3-0c33f7e0a2b1"}
    assert parse([first])[0].event_id == parse([again])[0].event_id


@pytest.mark.parametrize(
    "change",
    [
        {"delivery_code": "2"},
        {"delivery_code_detail": "11"},
        {"delivery_status_datetime": "2026-01-01 00:00:05"},
        {"messageid": "h2md1ewkyzjkuyn9ak7pryw1evtyw3x"},
    ],
)
def test_a_different_report_gets_a_different_event_id(change: dict[str, str]) -> None:
    code = change.pop("delivery_code", "1")
    assert parse([event("1")])[0].event_id != parse([event(code, **change)])[0].event_id


def test_submitted_then_delivered_are_two_events() -> None:
    ids = {r.event_id for r in parse([event("0", delivery_code_detail=""), event("1")])}
    assert len(ids) == 2


# --- timestamps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "local", "utc"),
    [
        ("Europe/Brussels", "2026-07-01 14:30:00", datetime(2026, 7, 1, 12, 30, tzinfo=UTC)),
        ("Europe/Brussels", "2026-01-15 14:30:00", datetime(2026, 1, 15, 13, 30, tzinfo=UTC)),
        ("UTC", "2026-01-15 14:30:00", datetime(2026, 1, 15, 14, 30, tzinfo=UTC)),
        ("America/New_York", "2026-01-15 09:30:00", datetime(2026, 1, 15, 14, 30, tzinfo=UTC)),
        # The hour the clocks go back happens twice: the first one is taken.
        ("Europe/Brussels", "2026-10-25 02:30:00", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    ],
)
def test_the_status_time_is_read_in_the_accounts_time_zone(
    zone: str, local: str, utc: datetime
) -> None:
    payload = {**event("1", delivery_status_datetime=local), "timezone": zone}
    assert parse([payload])[0].occurred_at == utc


def test_without_a_time_zone_the_messages_utc_time_is_used() -> None:
    payload = {**event("1", datetime_utc="2026-01-01 08:00:00"), "timezone": ""}
    assert parse([payload])[0].occurred_at == datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("blank", ["", "0000-00-00 00:00:00"])
def test_without_any_time_the_arrival_is_used(blank: str) -> None:
    changes = {"delivery_status_datetime": blank, "datetime_utc": blank}
    assert parse([event("0", **changes)])[0].occurred_at == RECEIVED


def test_parse_smstools_time() -> None:
    brussels = parse_smstools_time("2026-03-29 03:30:00", ZoneInfo("Europe/Brussels"))
    assert brussels == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # CEST began at 02:00
    assert parse_smstools_time("2026-01-01T00:00:00.5", UTC) == datetime(
        2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="not a valid date"):
        parse_smstools_time("2026-02-30 00:00:00", UTC)


# --- invalid payloads -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "body"),
        (b"not json", "body"),
        (b'"delivered"', "body"),
        (b"[1]", "[0]"),
        (b'[{"message": {}}]', "[0].webhook_type"),
        (b'[{"webhook_type": "delivery_report"}]', "[0].message"),
        (json.dumps([event("1"), event("1", messageid=None)]).encode(), "[1].message.messageid"),
        (json.dumps([event("1", messageid="a/b")]).encode(), "[0].message.messageid"),
        (json.dumps([event("x")]).encode(), "[0].message.delivery_code"),
        (json.dumps([event("")]).encode(), "[0].message.delivery_code"),
        (
            json.dumps([event("1", delivery_status_datetime="01/01/2026 10:00")]).encode(),
            "[0].message.delivery_status_datetime",
        ),
        (
            json.dumps([event("1", delivery_status_datetime="2026-13-01 10:00:00")]).encode(),
            "[0].message.delivery_status_datetime",
        ),
        (
            json.dumps([{**event("1"), "timezone": "Mars/Olympus_Mons"}]).encode(),
            "[0].timezone",
        ),
        (json.dumps([event("1", reference="r" * 256)]).encode(), "[0].message.reference"),
    ],
    ids=[
        "empty",
        "not-json",
        "a-string",
        "not-an-object",
        "no-type",
        "no-message",
        "no-messageid",
        "bad-messageid",
        "bad-code",
        "blank-code",
        "time-format",
        "no-such-date",
        "no-such-zone",
        "long-reference",
    ],
)
def test_an_invalid_payload_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadInvalid) as caught:
        parse(body)
    assert caught.value.field == field


# --- the builder ----------------------------------------------------------------------------


def test_the_builder_makes_what_the_parser_reads() -> None:
    sent = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    made = smstools_report(
        "e0ncuxht345hjmbjvv2feky0azflcw",
        "2",
        reference="msg_01JD0000000000000000000000",
        sent_at=sent,
        status_at=sent + timedelta(seconds=20),
        detail="11",
        detail_description="Receiver is temporarily outside the range of the network",
    )
    request = smstools_request([made], token=TOKEN, provider="smstools")

    assert request.path == f"/webhooks/smstools?token={TOKEN}"
    assert made["message"]["datetime"] == "2026-07-01 14:00:00"  # Brussels, CEST
    assert made["message"]["datetime_utc"] == "2026-07-01 12:00:00"
    [report] = provider().parse(inbound(request.body))
    assert report.occurred_at == sent + timedelta(seconds=20)
    assert (report.status, report.error_code) == (Status.UNDELIVERED, "11")
    assert report.message_reference == "msg_01JD0000000000000000000000"


def test_the_documented_payload_fields_reach_the_builder() -> None:
    made = smstools_report("e1qk89exbzgf6fzfunceym2sd67h88", "1", reference="yourref")
    documented = json.loads(
        b'{"webhook_id": "", "webhook_type": "", "username": "", "timezone": "", "message": {'
        b'"messageid": "", "datetime": "", "datetime_utc": "", "content": "", "sender": "",'
        b' "receiver": "", "reference": "", "delivery_code": "", "delivery_status": "",'
        b' "delivery_status_datetime": "", "delivery_code_detail": "",'
        b' "delivery_code_detail_description": ""}}'
    )
    assert made.keys() == documented.keys()
    assert made["message"].keys() == documented["message"].keys()


# --- sending --------------------------------------------------------------------------------

CLIENT_ID = "436621713682841522298"
CLIENT_SECRET = "FGbXCUtjrY64E32BbBkz8"
ITEM = OutboxItem(
    message_id="msg_01JDX8Y2W3V4T5S6R7Q8P9N0M1",
    provider="smstools",
    to="+32470123456",
    body="Your parcel arrives today",
    sender=None,
    attempts=1,
    in_doubt=False,
    created_at=RECEIVED,
)


def sender(**keys: Any) -> SmstoolsSender:
    made = provider(client_id=CLIENT_ID, api_key=CLIENT_SECRET, sender="PARCELS", **keys).sender()
    assert isinstance(made, SmstoolsSender)
    return made


def answer(status: int, payload: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=payload, headers=headers)


def test_only_a_configured_provider_sends() -> None:
    assert provider().sender() is None


def test_the_send_request() -> None:
    request = sender().send_request(ITEM)

    assert (request.method, str(request.url)) == (
        "POST",
        "https://api.smsgatewayapi.com/v1/message/send",
    )
    assert request.headers["x-client-id"] == CLIENT_ID
    assert request.headers["x-client-secret"] == CLIENT_SECRET
    assert request.headers["content-type"] == JSON
    assert json.loads(request.content) == {
        "message": "Your parcel arrives today",
        "to": "32470123456",  # international format without "+"
        "sender": "PARCELS",
        "reference": ITEM.message_id,  # our id: every report echoes it
    }


def test_a_messages_own_sender_wins_and_the_base_url_can_change() -> None:
    item = replace(ITEM, sender="+32460260667")
    request = sender(api_base_url="http://127.0.0.1:8081/").send_request(item)
    assert str(request.url) == "http://127.0.0.1:8081/v1/message/send"
    assert json.loads(request.content)["sender"] == "+32460260667"


def test_no_lookup_and_no_idempotency_so_a_doubt_is_held() -> None:
    made = sender()
    assert made.lookup_request(ITEM) is None
    assert made.idempotency_lifetime is None
    with pytest.raises(NotImplementedError):
        made.read_found(ITEM, answer(200, {}))


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            answer(200, {"messageid": "h2md1ewkyzjkuyn9ak7pryw1evtyw3x"}),
            Accepted("h2md1ewkyzjkuyn9ak7pryw1evtyw3x", "accepted"),
        ),
        (
            answer(200, {"messageids": ["678rjqhrjwg3r7t78te1yxfda9u3yt6"]}),
            Accepted("678rjqhrjwg3r7t78te1yxfda9u3yt6", "accepted"),
        ),
        (
            answer(400, {"error": "131", "errorMsg": "This number is on your opt-out list."}),
            Rejected("131", "This number is on your opt-out list."),
        ),
        (
            answer(400, {"error": "118"}),
            Rejected("118", "the message is too long for Smstools"),
        ),
        (answer(400, {"error": "error parsing json"}), Rejected(None, "error parsing json")),
        (httpx.Response(400, text="<html>"), Rejected(None, "HTTP 400 Bad Request")),
    ],
    ids=["one-id", "ids", "refused", "code-only", "text-error", "not-json"],
)
def test_reading_answers(response: httpx.Response, expected: Any) -> None:
    assert sender().read_send(response) == expected


@pytest.mark.parametrize(
    ("response", "words"),
    [
        (answer(400, {"error": "104", "errorMsg": "Invalid credentials"}), "104"),
        (answer(401, {"error": "104", "errorMsg": "Invalid credentials"}), "104"),
        (answer(400, {"error": "105"}), "try again later"),
        (answer(400, {"error": 108, "errorMsg": "Not enough credits."}), "108"),
        (answer(403, {"error": "200"}), "not allowed"),
        (answer(429, {}, {"retry-after": "7"}), "429"),
    ],
    ids=["credentials", "credentials-401", "server-issues", "credits", "ip", "429"],
)
def test_answers_about_our_account_or_smstools_are_retried(
    response: httpx.Response, words: str
) -> None:
    result = sender().read_send(response)
    assert isinstance(result, Deferred)
    assert words in result.reason


def test_the_429_wait_is_kept() -> None:
    result = sender().read_send(answer(429, {}, {"retry-after": "7"}))
    assert isinstance(result, Deferred) and result.retry_after == "7"


@pytest.mark.parametrize(
    "response",
    [
        answer(500, {"error": "Internal Server Error"}),
        answer(503, {"error": "105"}),  # a 5xx may have taken it, whatever it says
        answer(200, {}),
        answer(200, {"error": "108"}),
        answer(200, {"messageids": ["a", "b"]}),
        httpx.Response(200, text="OK"),
        answer(409, {}),
    ],
    ids=["500", "503-105", "no-id", "error-in-200", "two-ids", "text-200", "409"],
)
def test_answers_that_may_have_taken_it_are_in_doubt(response: httpx.Response) -> None:
    assert isinstance(sender().read_send(response), Unknown)
