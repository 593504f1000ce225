"""Provider type ``standard``: config, verify, parse and answer (README "HTTP API"), and
the sender (README "Sending")."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from receiver.core.reports import Outcome, Report
from receiver.core.signatures.standard_webhooks import decode_secret, signature
from receiver.core.status import Status
from receiver.errors import PayloadInvalid, SignatureError
from receiver.providers.base import (
    Accepted,
    Answer,
    Deferred,
    InboundRequest,
    NoSuchMessage,
    Rejected,
    Sender,
    Unknown,
)
from receiver.providers.standard import StandardConfig, StandardProvider
from receiver.records import OutboxItem

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW_SECRET = "whsec_" + base64.b64encode(bytes(range(200, 232))).decode()
WEBHOOK_ID = "msg_2p8xKz0bQm7dN1vRj4TcYw"
SENT_AT_DT = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
SENT_AT = int(SENT_AT_DT.timestamp())  # the webhook-timestamp header

REPORT = {
    "message_id": "prov-123",
    "status": "delivered",
    "occurred_at": "2026-11-23T09:59:58Z",
    "to": "+639171234567",
    "error_code": None,
    "error_message": None,
}


def provider(**config: Any) -> StandardProvider:
    config.setdefault("secrets", [SECRET])
    return StandardProvider("acme", StandardConfig(type="standard", **config))


def request(
    payload: Any,
    *,
    webhook_id: str = WEBHOOK_ID,
    timestamp: int | str = SENT_AT,
    secret: str = SECRET,
    extra_headers: dict[str, str] | None = None,
) -> InboundRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sig = signature(decode_secret(secret), webhook_id, int(timestamp), body)
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sig,
        **(extra_headers or {}),
    }
    return InboundRequest(
        method="POST",
        url="https://sms-receipts.example.com/webhooks/acme",
        headers=headers,
        query_string=b"",
        body=body,
        media_type="application/json",
        received_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
    )


def status_payload(data: Any) -> dict[str, Any]:
    return {"type": "message.status", "data": data}


# --- the class and its config ---------------------------------------------------------------


def test_class_attributes() -> None:
    assert StandardProvider.kind == "standard"
    assert StandardProvider.config_model is StandardConfig
    assert frozenset({"application/json"}) == StandardProvider.media_types


def test_provider_keeps_name_and_config() -> None:
    p = provider(tolerance_seconds=120)
    assert p.name == "acme"
    assert p.config.tolerance_seconds == 120
    assert p.verifies is True


def test_config_defaults() -> None:
    config = StandardConfig(type="standard", secrets=[SECRET])
    assert config.tolerance_seconds == 300
    assert config.insecure_no_signature is False
    assert config.secrets == [SECRET]


def test_config_from_toml_like_mapping() -> None:
    config = StandardConfig.model_validate(
        {"type": "standard", "secrets": [SECRET, NEW_SECRET], "tolerance_seconds": 60}
    )
    assert config.secrets == [SECRET, NEW_SECRET]
    assert config.tolerance_seconds == 60


def test_config_is_frozen() -> None:
    config = StandardConfig(type="standard", secrets=[SECRET])
    with pytest.raises(ValidationError):
        config.tolerance_seconds = 10  # type: ignore[misc]


def test_empty_secrets_need_insecure_no_signature() -> None:
    with pytest.raises(ValidationError, match="insecure_no_signature"):
        StandardConfig(type="standard", secrets=[])
    with pytest.raises(ValidationError, match="at least one secret"):
        StandardConfig(type="standard")


def test_insecure_no_signature_allows_no_secrets() -> None:
    p = provider(secrets=[], insecure_no_signature=True)
    assert p.verifies is False
    reports = p.parse(request(status_payload(REPORT)))
    assert [r.event_id for r in reports] == [WEBHOOK_ID]


@pytest.mark.parametrize(
    ("secrets", "match"),
    [
        pytest.param(
            ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], r"secrets\[0\]: must start with", id="no-prefix"
        ),
        pytest.param(
            [SECRET, "whsec_not base64!"], r"secrets\[1\]: is not valid base64", id="bad-b64"
        ),
        pytest.param(
            [SECRET, "whsec_c2VjcmV0"], r"secrets\[1\]: must hold at least 16", id="short"
        ),
        pytest.param(["hunter2"], r"secrets\[0\]", id="plain-password"),
    ],
)
def test_bad_whsec_secret_rejected(secrets: list[str], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        StandardConfig(type="standard", secrets=secrets)


def test_bad_secret_rejected_even_when_insecure() -> None:
    with pytest.raises(ValidationError, match=r"secrets\[0\]"):
        StandardConfig(type="standard", secrets=["nope"], insecure_no_signature=True)


@pytest.mark.parametrize(
    "extra",
    [{"secret": SECRET}, {"tolerance": 60}, {"signing_key": "x"}],
    ids=["secret-singular", "tolerance-typo", "unknown"],
)
def test_unknown_key_rejected(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        StandardConfig(type="standard", secrets=[SECRET], **extra)
    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]
    assert info.value.errors()[0]["loc"] == (next(iter(extra)),)


@pytest.mark.parametrize("type_", ["twilio", "Standard", ""])
def test_wrong_type_rejected(type_: str) -> None:
    with pytest.raises(ValidationError):
        StandardConfig(type=type_, secrets=[SECRET])  # type: ignore[arg-type]


@pytest.mark.parametrize("tolerance", [0, -1, 172801])
def test_tolerance_bounds(tolerance: int) -> None:
    with pytest.raises(ValidationError, match="tolerance_seconds"):
        StandardConfig(type="standard", secrets=[SECRET], tolerance_seconds=tolerance)


# --- verify -------------------------------------------------------------------------------------


def test_verify_accepts_signed_request() -> None:
    provider().verify(request(status_payload(REPORT)), now=SENT_AT + 5)


def test_verify_tries_every_secret_of_a_rotation() -> None:
    p = provider(secrets=[SECRET, NEW_SECRET])
    p.verify(request(status_payload(REPORT), secret=NEW_SECRET), now=SENT_AT)
    p.verify(request(status_payload(REPORT), secret=SECRET), now=SENT_AT)


def test_verify_rejects_unknown_secret() -> None:
    with pytest.raises(SignatureError) as info:
        provider().verify(request(status_payload(REPORT), secret=NEW_SECRET), now=SENT_AT)
    assert info.value.code == "SIGNATURE_INVALID"


def test_verify_uses_configured_tolerance() -> None:
    p = provider(tolerance_seconds=60)
    p.verify(request(status_payload(REPORT)), now=SENT_AT + 60)
    with pytest.raises(SignatureError) as info:
        p.verify(request(status_payload(REPORT)), now=SENT_AT + 61)
    assert info.value.code == "TIMESTAMP_STALE"


def test_verify_over_raw_bytes() -> None:
    req = request(status_payload(REPORT))
    reencoded = json.dumps(json.loads(req.body), separators=(",", ":")).encode()
    assert reencoded != req.body
    tampered = dataclasses.replace(req, body=reencoded)
    with pytest.raises(SignatureError) as info:
        provider().verify(tampered, now=SENT_AT)
    assert info.value.code == "SIGNATURE_INVALID"


# --- parse: valid payloads ------------------------------------------------------------------


def test_parse_single_report() -> None:
    reports = provider().parse(request(status_payload(REPORT)))
    assert reports == [
        Report(
            event_id=WEBHOOK_ID,
            provider_message_id="prov-123",
            status=Status.DELIVERED,
            provider_status="delivered",
            occurred_at=datetime(2026, 11, 23, 9, 59, 58, tzinfo=UTC),
            to="+639171234567",
            error_code=None,
            error_message=None,
        )
    ]


def test_parse_failure_with_error_fields() -> None:
    data = {
        "message_id": "prov-456",
        "status": "undelivered",
        "occurred_at": "2026-11-23T09:58:12.250Z",
        "to": "+447700900123",
        "error_code": "30003",
        "error_message": "Unreachable destination handset",
    }
    (report,) = provider().parse(request(status_payload(data)))
    assert report.status is Status.UNDELIVERED
    assert report.error_code == "30003"
    assert report.error_message == "Unreachable destination handset"
    assert report.occurred_at == datetime(2026, 11, 23, 9, 58, 12, 250_000, tzinfo=UTC)


def test_parse_minimal_report() -> None:
    (report,) = provider().parse(
        request(status_payload({"message_id": "prov-1", "status": "sent"}))
    )
    assert report == Report(
        event_id=WEBHOOK_ID,
        provider_message_id="prov-1",
        status=Status.SENT,
        provider_status="sent",
        occurred_at=SENT_AT_DT,
    )


def test_parse_batch_event_ids() -> None:
    data = [
        {**REPORT, "message_id": "prov-1", "status": "queued", "to": None},
        {**REPORT, "message_id": "prov-2", "status": "sent", "to": "+14155550100"},
        {
            "message_id": "prov-3",
            "status": "failed",
            "error_code": "21610",
            "error_message": "Unsubscribed recipient",
        },
    ]
    reports = provider().parse(request(status_payload(data), webhook_id="msg_batch_77"))
    assert [r.event_id for r in reports] == ["msg_batch_77:0", "msg_batch_77:1", "msg_batch_77:2"]
    assert [r.provider_message_id for r in reports] == ["prov-1", "prov-2", "prov-3"]
    assert [r.status for r in reports] == [Status.QUEUED, Status.SENT, Status.FAILED]
    assert [r.to for r in reports] == [None, "+14155550100", None]
    assert reports[2].error_code == "21610"
    assert reports[2].occurred_at == SENT_AT_DT
    assert reports[0].occurred_at == datetime(2026, 11, 23, 9, 59, 58, tzinfo=UTC)


def test_parse_batch_of_one_still_suffixes_the_event_id() -> None:
    reports = provider().parse(request(status_payload([REPORT])))
    assert [r.event_id for r in reports] == [f"{WEBHOOK_ID}:0"]


def test_parse_batch_of_1000() -> None:
    data = [{"message_id": f"prov-{i}", "status": "delivered"} for i in range(1000)]
    reports = provider().parse(request(status_payload(data)))
    assert len(reports) == 1000
    assert reports[999].event_id == f"{WEBHOOK_ID}:999"
    assert len({r.event_id for r in reports}) == 1000


def test_occurred_at_defaults_to_webhook_timestamp() -> None:
    data = {"message_id": "prov-1", "status": "delivered", "occurred_at": None}
    (report,) = provider().parse(request(status_payload(data), timestamp=1614265330))
    assert report.occurred_at == datetime(2021, 2, 25, 15, 2, 10, tzinfo=UTC)
    assert report.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-11-23T17:59:58+08:00",
        "2026-11-23T04:59:58-05:00",
        "2026-11-23T09:59:58+00:00",
        "2026-11-23T09:59:58Z",
    ],
)
def test_occurred_at_converted_to_utc(stamp: str) -> None:
    (report,) = provider().parse(request(status_payload({**REPORT, "occurred_at": stamp})))
    assert report.occurred_at == datetime(2026, 11, 23, 9, 59, 58, tzinfo=UTC)
    assert report.occurred_at.tzinfo is UTC


@pytest.mark.parametrize("word", ["DELIVRD", "Delivered", "read", "delivery_unconfirmed"])
def test_unknown_status_word_kept_with_status_none(word: str) -> None:
    (report,) = provider().parse(request(status_payload({**REPORT, "status": word})))
    assert report.status is None
    assert report.provider_status == word
    assert report.provider_message_id == "prov-123"


@pytest.mark.parametrize("status", list(Status))
def test_each_of_our_status_names_parses(status: Status) -> None:
    (report,) = provider().parse(request(status_payload({**REPORT, "status": status.value})))
    assert report.status is status


def test_extra_keys_are_ignored() -> None:
    payload = {
        "type": "message.status",
        "api_version": "2026-11-01",
        "data": {**REPORT, "segments": 2, "price": {"amount": "0.0075", "currency": "USD"}},
    }
    (report,) = provider().parse(request(payload))
    assert report.status is Status.DELIVERED


def test_parse_does_not_need_the_signature_header() -> None:
    req = request(status_payload(REPORT))
    headers = {k: v for k, v in req.headers.items() if k != "webhook-signature"}
    unsigned = dataclasses.replace(req, headers=headers)
    assert provider().parse(unsigned)[0].event_id == WEBHOOK_ID


# --- parse: invalid payloads ----------------------------------------------------------------


def invalid(payload: Any, **kwargs: Any) -> PayloadInvalid:
    with pytest.raises(PayloadInvalid) as info:
        provider().parse(request(payload, **kwargs))
    exc = info.value
    assert type(exc) is PayloadInvalid
    assert exc.status == 400
    assert exc.code == "PAYLOAD_INVALID"
    assert exc.detail.startswith(f"{exc.field}: ")
    return exc


INVALID = [
    # the body as a whole
    pytest.param(b"{not json", "body", "not valid JSON", id="invalid-json"),
    pytest.param(b"", "body", "not valid JSON", id="empty-body"),
    pytest.param(b"\xff\xfe{}", "body", "not valid JSON", id="not-utf8"),
    pytest.param(b'{"type": "message.status", "data": ', "body", "not valid JSON", id="truncated"),
    pytest.param([REPORT], "body", "object", id="top-level-array"),
    pytest.param("delivered", "body", "object", id="top-level-string"),
    # type
    pytest.param({"data": REPORT}, "type", "required", id="type-missing"),
    pytest.param(
        {"type": "message.created", "data": REPORT}, "type", "message.status", id="type-wrong"
    ),
    pytest.param({"type": None, "data": REPORT}, "type", "message.status", id="type-null"),
    # data
    pytest.param({"type": "message.status"}, "data", "required", id="data-missing"),
    pytest.param(status_payload("delivered"), "data", None, id="data-string"),
    pytest.param(status_payload(None), "data", None, id="data-null"),
    # single report fields
    pytest.param(
        status_payload({"status": "delivered"}), "data.message_id", "required", id="no-message-id"
    ),
    pytest.param(
        status_payload({**REPORT, "message_id": ""}),
        "data.message_id",
        "at least 1",
        id="empty-message-id",
    ),
    pytest.param(
        status_payload({**REPORT, "message_id": "x" * 256}),
        "data.message_id",
        "at most 255",
        id="long-message-id",
    ),
    pytest.param(
        status_payload({**REPORT, "message_id": 123}),
        "data.message_id",
        "string",
        id="numeric-message-id",
    ),
    pytest.param(
        status_payload({"message_id": "prov-1"}), "data.status", "required", id="no-status"
    ),
    pytest.param(
        status_payload({**REPORT, "status": ""}), "data.status", "at least 1", id="empty-status"
    ),
    pytest.param(
        status_payload({**REPORT, "status": 3}), "data.status", "string", id="numeric-status"
    ),
    pytest.param(
        status_payload({**REPORT, "to": "09171234567"}), "data.to", "pattern", id="to-national"
    ),
    pytest.param(
        status_payload({**REPORT, "to": "+63 917 123 4567"}), "data.to", "pattern", id="to-spaces"
    ),
    pytest.param(
        status_payload({**REPORT, "to": "+0639171234567"}), "data.to", "pattern", id="to-plus-zero"
    ),
    pytest.param(
        status_payload({**REPORT, "to": "+6391712345678901"}), "data.to", "pattern", id="to-long"
    ),
    pytest.param(
        status_payload({**REPORT, "occurred_at": "2026-11-23T09:59:58"}),
        "data.occurred_at",
        "timezone",
        id="naive-occurred-at",
    ),
    pytest.param(
        status_payload({**REPORT, "occurred_at": "yesterday"}),
        "data.occurred_at",
        "datetime",
        id="garbage-occurred-at",
    ),
    pytest.param(
        status_payload({**REPORT, "error_code": "E" * 65}),
        "data.error_code",
        "at most 64",
        id="long-error-code",
    ),
    pytest.param(
        status_payload({**REPORT, "error_message": "e" * 1001}),
        "data.error_message",
        "at most 1000",
        id="long-error-message",
    ),
]


@pytest.mark.parametrize(("payload", "field", "says"), INVALID)
def test_invalid_payload_names_the_field(payload: Any, field: str, says: str | None) -> None:
    exc = invalid(payload)
    assert exc.field == field
    if says is not None:
        assert says in exc.detail


# The batch cases. Each asserts the field a sender needs to find its mistake; see the
# report: today every batch error is reported as field "data", "Input should be an object".
INVALID_BATCH = [
    pytest.param(status_payload([]), "data", "at least 1", id="empty-batch"),
    pytest.param(
        status_payload([{"message_id": f"p{i}", "status": "sent"} for i in range(1001)]),
        "data",
        "at most 1000",
        id="batch-over-1000",
    ),
    pytest.param(
        status_payload([REPORT, {"message_id": "prov-2"}]),
        "data[1].status",
        "required",
        id="item-1-no-status",
    ),
    pytest.param(
        status_payload([{"status": "sent"}]),
        "data[0].message_id",
        "required",
        id="item-0-no-message-id",
    ),
    pytest.param(
        status_payload([REPORT, REPORT, {**REPORT, "to": "0917"}]),
        "data[2].to",
        "pattern",
        id="item-2-bad-to",
    ),
    pytest.param(
        status_payload([REPORT, {**REPORT, "occurred_at": "2026-11-23T09:59:58"}]),
        "data[1].occurred_at",
        "timezone",
        id="item-1-naive-occurred-at",
    ),
    pytest.param(status_payload([REPORT, "delivered"]), "data[1]", None, id="item-1-not-object"),
]


@pytest.mark.parametrize(("payload", "field", "says"), INVALID_BATCH)
def test_invalid_batch_names_the_item_and_field(payload: Any, field: str, says: str | None) -> None:
    exc = invalid(payload)
    assert exc.field == field
    if says is not None:
        assert says in exc.detail


def test_missing_webhook_id_header() -> None:
    req = request(status_payload(REPORT))
    headers = {k: v for k, v in req.headers.items() if k != "webhook-id"}
    with pytest.raises(PayloadInvalid) as info:
        provider().parse(dataclasses.replace(req, headers=headers, media_type="x"))
    assert info.value.field == "webhook-id"


@pytest.mark.parametrize("timestamp", ["", "soon", "1614265330.5", "9" * 30])
def test_bad_webhook_timestamp_header(timestamp: str) -> None:
    req = request(status_payload(REPORT))
    headers = {**req.headers, "webhook-timestamp": timestamp}
    with pytest.raises(PayloadInvalid) as info:
        provider().parse(dataclasses.replace(req, headers=headers, media_type="x"))
    assert info.value.field == "webhook-timestamp"
    assert "integer Unix seconds" in info.value.detail


# --- answer -----------------------------------------------------------------------------------


def test_answer_is_the_json_counts() -> None:
    answer = provider().answer(Outcome(received=5, applied=2, duplicates=1, superseded=2))
    assert isinstance(answer, Answer)
    assert answer.status == 200
    assert answer.media_type == "application/json"
    assert json.loads(answer.body) == {
        "received": 5,
        "applied": 2,
        "duplicates": 1,
        "superseded": 2,
    }


def test_answer_for_empty_outcome() -> None:
    answer = provider().answer(Outcome())
    assert answer.status == 200
    assert json.loads(answer.body) == {
        "received": 0,
        "applied": 0,
        "duplicates": 0,
        "superseded": 0,
    }


# --- sending (README "Sending") -----------------------------------------------------------

API = "https://api.acme.example/v2/"
API_KEY = "sk_live_4f1c9a"
ITEM = OutboxItem(
    message_id="msg_01M83W4W6P5BT4957GZMXWPSSY",
    provider="acme",
    to="+639171234567",
    body="Your code is 482913",
    sender=None,
    attempts=1,
    in_doubt=False,
    created_at=SENT_AT_DT,
)


def sender(**config: Any) -> Sender:
    made = provider(api_base_url=API, api_key=API_KEY, **config).sender()
    assert made is not None
    return made


def answer(
    status: int, payload: Any = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return httpx.Response(status, content=content, headers=headers)


def test_a_provider_sends_only_with_api_base_url_and_api_key() -> None:
    assert provider().sender() is None
    assert provider(api_base_url=API, api_key=API_KEY).config.sends
    for partial in ({"api_key": API_KEY}, {"api_base_url": API}, {"sender": "ACME"}):
        with pytest.raises(ValidationError, match="is required to send"):
            provider(**partial)


def test_the_send_request_is_the_contracts() -> None:
    sent = sender(sender="ACME").send_request(ITEM)
    assert (sent.method, str(sent.url)) == ("POST", "https://api.acme.example/v2/messages")
    assert json.loads(sent.content) == {
        "to": "+639171234567",
        "body": "Your code is 482913",
        "sender": "ACME",
        "reference": ITEM.message_id,
    }
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["idempotency-key"] == ITEM.message_id
    assert sent.headers["content-type"] == "application/json"
    own_sender = dataclasses.replace(ITEM, sender="SHOP")
    assert json.loads(sender(sender="ACME").send_request(own_sender).content)["sender"] == "SHOP"


def test_the_lookup_request_asks_by_reference() -> None:
    looked = sender().lookup_request(ITEM)
    assert looked.method == "GET"
    assert str(looked.url) == f"https://api.acme.example/v2/messages?reference={ITEM.message_id}"
    assert looked.headers["authorization"] == f"Bearer {API_KEY}"


@pytest.mark.parametrize(
    ("response", "result"),
    [
        (answer(201, {"id": "prov-9", "status": "queued"}), Accepted("prov-9", "queued")),
        (answer(200, {"id": 12345}), Accepted("12345", "accepted")),
        (answer(200, b"<html>ok</html>"), Unknown),
        (answer(200, {"status": "queued"}), Unknown),
        (
            answer(400, {"code": "INVALID_NUMBER", "message": "unreachable"}),
            Rejected("INVALID_NUMBER", "unreachable"),
        ),
        (
            answer(422, {"code": 21211, "detail": "bad number"}),  # problem+json
            Rejected("21211", "bad number"),
        ),
        (answer(400, b"nope"), Rejected(None, "HTTP 400 Bad Request")),
        (answer(401, {"code": "UNAUTHORIZED"}), Deferred("HTTP 401 Unauthorized")),
        (answer(404), Deferred("HTTP 404 Not Found")),
        (answer(429, {}, {"retry-after": "7"}), Deferred("HTTP 429 Too Many Requests", "7")),
        (answer(409), Unknown("HTTP 409 Conflict")),  # the same key's first try is in flight
        (answer(500), Unknown("HTTP 500 Internal Server Error")),
        (answer(503, {}, {"retry-after": "3"}), Unknown("HTTP 503 Service Unavailable")),
    ],
    ids=lambda value: str(getattr(value, "status_code", "")) or None,
)
def test_reading_the_send_answer(response: httpx.Response, result: Any) -> None:
    read = sender().read_send(response)
    if isinstance(result, type):
        assert isinstance(read, result)
    else:
        assert read == result


@pytest.mark.parametrize(
    ("response", "result"),
    [
        (
            answer(200, {"items": [{"id": "p1", "reference": ITEM.message_id, "status": "sent"}]}),
            Accepted("p1", "sent"),
        ),
        (answer(200, {"items": [{"id": "p2"}]}), Accepted("p2", "accepted")),
        (answer(200, {"items": [{"id": "p3", "reference": "msg_other"}]}), NoSuchMessage()),
        (answer(200, {"items": []}), NoSuchMessage()),
        (answer(200, {"data": []}), Deferred),
        (answer(500), Deferred("the lookup answered HTTP 500 Internal Server Error")),
        (answer(429, {}, {"retry-after": "2"}), Deferred),
    ],
)
def test_reading_the_lookup_answer(response: httpx.Response, result: Any) -> None:
    read = sender().read_lookup(ITEM, response)
    if isinstance(result, type):
        assert isinstance(read, result)
    else:
        assert read == result
