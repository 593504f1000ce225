"""Provider type ``sendcomms``: config, signature, parsing, status map, event ids, the
builder, and the sender's requests and how it reads every documented answer.

The signed vectors were made outside Python: ``openssl dgst -sha256 -hmac SECRET`` and
Node's ``crypto.createHmac('sha256', secret).update(body).digest('hex')``, as SendComms'
``sendWebhook`` signs; the body shapes are what Node's ``JSON.stringify`` made of the
send route's payload (``{...payload, transaction_id, timestamp}``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from receiver.core.reports import derived_event_id
from receiver.core.status import Status
from receiver.errors import PayloadInvalid, SignatureError
from receiver.providers import PROVIDER_TYPES, error_label, explain_error
from receiver.providers.base import Accepted, Deferred, InboundRequest, Rejected, Unknown
from receiver.providers.sendcomms import (
    STATUS_MAP,
    SendCommsConfig,
    SendCommsProvider,
    SendCommsSender,
    parse_sendcomms_time,
)
from receiver.records import OutboxItem
from receiver.testing import sendcomms_event, sendcomms_request
from receiver.testing.sendcomms import sendcomms_body, sendcomms_transaction_id

SECRET = "whsec_21be983f359112f9e07658ed2bddcee3a1b2c3d4e5f6a7b8"  # generated-style
OLD_SECRET = "my-own-webhook-secret-2025"  # a customer-chosen one
TXN = "sms_mjhw8xkw_6f97ab63ff91"
RECEIVED_AT = datetime(2025, 12, 28, 10, 15, 43, tzinfo=UTC)

# What the send route posted for a successful send (Node, JSON.stringify), and its
# signature with SECRET (openssl and Node agree).
SENT_BODY = (
    b'{"event":"sms.sent","data":{"transaction_id":"sms_mjhw8xkw_6f97ab63ff91","type":"sms",'
    b'"status":"sent","to":"+233540800994","segments":1,'
    b'"message_id":"SMf9c2ebdffd58b516f6895b02051c4b21","country":"Ghana","region":"africa",'
    b'"cost":0.035},"transaction_id":"sms_mjhw8xkw_6f97ab63ff91",'
    b'"timestamp":"2025-12-28T10:15:42.318Z"}'
)
SENT_SIGNATURE = "sha256=04ffacd3a980728c4afc69aeeb98919e172fb41fadb9802790c6bf154c78b714"
# A failed send: message_id was undefined, so JSON.stringify left it out.
FAILED_BODY = (
    b'{"event":"sms.failed","data":{"transaction_id":"sms_x","type":"sms","status":"failed",'
    b'"to":"+233540800994","segments":1,"country":"Ghana","region":"africa","cost":0.035,'
    b'"error":"Africa SMS server unavailable"},"transaction_id":"sms_x",'
    b'"timestamp":"2025-12-28T10:15:42.318Z"}'
)


def provider(**keys: Any) -> SendCommsProvider:
    config = SendCommsConfig(type="sendcomms", **{"secrets": [SECRET], **keys})
    return SendCommsProvider("sendcomms", config)


def inbound(body: bytes, headers: dict[str, str] | None = None) -> InboundRequest:
    return InboundRequest(
        method="POST",
        url="https://dlr.example.com/webhooks/sendcomms",
        headers={"content-type": "application/json", **(headers or {})},
        query_string=b"",
        body=body,
        media_type="application/json",
        received_at=RECEIVED_AT,
    )


def signed(body: bytes, secret: str = SECRET) -> InboundRequest:
    request = sendcomms_request(secret, body)
    return inbound(body, request.headers)


# --------------------------------------------------------------------------- config


def test_the_type_is_registered():
    assert PROVIDER_TYPES["sendcomms"] is SendCommsProvider


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({"secrets": []}, "secrets: at least one secret is required"),
        ({"secrets": ["short"]}, "secrets[0]: must be the webhook secret (at least 16"),
        ({"secrets": [SECRET + "\n"]}, "secrets[0]: must not start or end with whitespace"),
        ({"api_base_url": "https://api.sendcomms.com"}, "api_key: is required to send"),
        (
            {"api_base_url": "https://api.sendcomms.com/api/v1", "api_key": "sc_live_x"},
            "is the host without /api/v1",
        ),
        ({"sender": "ACME"}, "api_key: is required to send (sender is set)"),
        ({"tolerance": 5}, "Extra inputs are not permitted"),
    ],
)
def test_config_refusals(keys: dict[str, Any], problem: str):
    with pytest.raises(ValidationError) as caught:
        SendCommsConfig(type="sendcomms", **{"secrets": [SECRET], **keys})
    assert problem in str(caught.value)


def test_a_provider_without_an_api_key_does_not_send_and_one_with_it_does():
    assert provider().sender() is None
    sender = provider(api_key="sc_live_abc").sender()
    assert isinstance(sender, SendCommsSender)
    assert sender.idempotency_lifetime == timedelta(hours=24)
    assert sender.lookup_request(outbox_item()) is None  # no SMS lookup with an API key


def test_insecure_no_signature_needs_no_secret():
    config = SendCommsConfig(type="sendcomms", insecure_no_signature=True)
    assert config.secrets == []


# --------------------------------------------------------------------------- signature


def test_the_servers_own_signature_verifies():
    provider().verify(inbound(SENT_BODY, {"x-sendcomms-signature": SENT_SIGNATURE}), 0.0)


def test_the_builder_signs_as_sendcomms_does():
    assert sendcomms_request(SECRET, SENT_BODY).headers["x-sendcomms-signature"] == SENT_SIGNATURE


def test_the_builder_writes_the_body_as_json_stringify_does():
    sent = sendcomms_event(
        "sms.sent",
        TXN,
        timestamp=datetime(2025, 12, 28, 10, 15, 42, 318_000, tzinfo=UTC),
        message_id="SMf9c2ebdffd58b516f6895b02051c4b21",
    )
    failed = sendcomms_event(
        "sms.failed",
        "sms_x",
        timestamp=datetime(2025, 12, 28, 10, 15, 42, 318_000, tzinfo=UTC),
        error="Africa SMS server unavailable",
    )
    assert sendcomms_body(sent) == SENT_BODY
    assert sendcomms_body(failed) == FAILED_BODY


def test_every_secret_of_a_rotation_is_tried():
    rotating = provider(secrets=[SECRET, OLD_SECRET])
    rotating.verify(signed(SENT_BODY, OLD_SECRET), 0.0)
    rotating.verify(signed(SENT_BODY, SECRET), 0.0)


def test_the_key_is_the_secret_string_as_written():
    # Unlike Standard Webhooks, a whsec_ secret is not base64-decoded: its text is the key.
    whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    as_written = hmac.new(whsec.encode(), SENT_BODY, hashlib.sha256).hexdigest()
    decoded_key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    decoded = hmac.new(decoded_key, SENT_BODY, hashlib.sha256).hexdigest()
    whsec_provider = provider(secrets=[whsec])
    whsec_provider.verify(inbound(SENT_BODY, {"x-sendcomms-signature": "sha256=" + as_written}), 0)
    with pytest.raises(SignatureError):
        whsec_provider.verify(inbound(SENT_BODY, {"x-sendcomms-signature": "sha256=" + decoded}), 0)


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "SIGNATURE_MISSING"),
        ("", "SIGNATURE_MISSING"),
        ("04ffacd3a980728c4afc69aeeb98919e172fb41fadb9802790c6bf154c78b714", "SIGNATURE_MALFORMED"),
        ("sha1=04ffacd3a980728c4afc69aeeb98919e172fb41f", "SIGNATURE_MALFORMED"),
        ("sha256=04ffacd3", "SIGNATURE_MALFORMED"),
        ("sha256=" + "zz" * 32, "SIGNATURE_MALFORMED"),
        ("sha256=" + "0" * 64, "SIGNATURE_INVALID"),
        (SENT_SIGNATURE.upper().replace("SHA256=", "sha256="), None),  # hex case is free
    ],
)
def test_signature_header_table(header: str | None, code: str | None):
    headers = {} if header is None else {"x-sendcomms-signature": header}
    request = inbound(SENT_BODY, headers)
    if code is None:
        provider().verify(request, 0.0)
        return
    with pytest.raises(SignatureError) as caught:
        provider().verify(request, 0.0)
    assert caught.value.code == code
    assert SENT_SIGNATURE[7:] not in caught.value.detail  # never the expected signature


def test_a_body_changed_after_signing_is_refused():
    tampered = SENT_BODY.replace(b'"sent"}', b'"delivered"}').replace(b"sms.sent", b"sms.delivered")
    with pytest.raises(SignatureError) as caught:
        provider().verify(inbound(tampered, {"x-sendcomms-signature": SENT_SIGNATURE}), 0.0)
    assert caught.value.code == "SIGNATURE_INVALID"


# --------------------------------------------------------------------------- parsing


def test_a_sent_event_as_the_server_posts_it():
    [report] = provider().parse(signed(SENT_BODY))
    assert report.provider_message_id == TXN
    assert report.provider_status == "sms.sent"
    assert report.status is Status.SENT
    assert report.occurred_at == datetime(2025, 12, 28, 10, 15, 42, 318_000, tzinfo=UTC)
    assert report.to == "+233540800994"
    assert (report.error_code, report.error_message) == (None, None)
    assert report.event_id == derived_event_id(TXN, "sms.sent")
    assert report.message_reference is None  # the server echoes no reference today


def test_a_failed_event_keeps_the_error_text():
    [report] = provider().parse(signed(FAILED_BODY))
    assert (report.status, report.provider_status) == (Status.FAILED, "sms.failed")
    assert report.error_code is None  # SendComms sends text, no code
    assert report.error_message == "Africa SMS server unavailable"


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ("sms.sent", Status.SENT),
        ("sms.delivered", Status.DELIVERED),
        ("sms.failed", Status.FAILED),
        ("SMS.Delivered", Status.DELIVERED),  # matched case-insensitively, kept as sent
        ("sms.queued", None),  # an sms.* word we do not know: kept, changes nothing
    ],
)
def test_status_map(event: str, status: Status | None):
    [report] = provider().parse(signed(sendcomms_body(sendcomms_event(event, TXN))))
    assert (report.status, report.provider_status) == (status, event)


def test_the_status_map_covers_every_documented_sms_event():
    assert set(STATUS_MAP) == {"sms.sent", "sms.delivered", "sms.failed"}


@pytest.mark.parametrize("event", ["email.delivered", "data.success", "airtime.failed"])
def test_other_services_events_are_acknowledged_without_reports(event: str):
    # One webhook URL per account gets every service's events.
    assert provider().parse(signed(sendcomms_body(sendcomms_event(event, "txn_1")))) == []


def test_event_ids_are_one_per_transaction_and_event_whatever_the_timestamp():
    first = sendcomms_event("sms.delivered", TXN, timestamp=RECEIVED_AT)
    later = sendcomms_event("sms.delivered", TXN, timestamp=RECEIVED_AT + timedelta(minutes=5))
    sent = sendcomms_event("sms.sent", TXN, timestamp=RECEIVED_AT)
    other = sendcomms_event("sms.delivered", "sms_mjhw8xkw_000000000000")
    ids = [provider().parse(signed(sendcomms_body(p)))[0].event_id for p in (first, later)]
    assert ids[0] == ids[1]  # a redelivery built afresh is still the same event
    others = {provider().parse(signed(sendcomms_body(p)))[0].event_id for p in (sent, other)}
    assert ids[0] not in others and len(others) == 2


def test_an_echoed_reference_files_the_report_under_our_message():
    in_data = sendcomms_event("sms.delivered", TXN, reference="msg_01JF3Q5Z9X2K8M4N6P7R1S3T5V")
    [report] = provider().parse(signed(sendcomms_body(in_data)))
    assert report.message_reference == "msg_01JF3Q5Z9X2K8M4N6P7R1S3T5V"
    top_level = {**sendcomms_event("sms.sent", TXN), "reference": "msg_01JF3Q5Z9X2K8M4N6P7R1S3T5W"}
    [report] = provider().parse(signed(sendcomms_body(top_level)))
    assert report.message_reference == "msg_01JF3Q5Z9X2K8M4N6P7R1S3T5W"


def test_without_a_timestamp_the_arrival_time_is_used():
    payload = sendcomms_event("sms.sent", TXN)
    del payload["timestamp"]
    [report] = provider().parse(signed(sendcomms_body(payload)))
    assert report.occurred_at == RECEIVED_AT


def test_an_unknown_to_is_none_and_a_long_error_is_cut():
    payload = sendcomms_event("sms.failed", TXN, to="Sendcomms", error="x" * 3000)
    [report] = provider().parse(signed(sendcomms_body(payload)))
    assert report.to is None
    assert report.error_message == "x" * 1000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[]", "body"),
        (b'{"transaction_id": "sms_1"}', "event"),
        (b'{"event": "sms.sent"}', "transaction_id"),
        (b'{"event": "sms.sent", "transaction_id": "sms 1"}', "transaction_id"),
        (
            b'{"event": "sms.sent", "transaction_id": "sms_1", "timestamp": "yesterday"}',
            "timestamp",
        ),
        (b'{"event": "sms.sent", "transaction_id": "sms_1", "data": []}', "data"),
        (b'{"event": "", "transaction_id": "sms_1"}', "event"),
    ],
)
def test_invalid_payloads_name_the_field(body: bytes, field: str):
    with pytest.raises(PayloadInvalid) as caught:
        provider().parse(signed(body))
    assert caught.value.extensions()["field"] == field


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-12-28T10:15:42.318Z", datetime(2025, 12, 28, 10, 15, 42, 318_000, tzinfo=UTC)),
        ("2025-12-21T10:30:00Z", datetime(2025, 12, 21, 10, 30, tzinfo=UTC)),  # the docs'
        ("2025-12-21T10:30:00", datetime(2025, 12, 21, 10, 30, tzinfo=UTC)),
        ("2025-12-21T11:30:00.5+01:00", datetime(2025, 12, 21, 10, 30, 0, 500_000, tzinfo=UTC)),
    ],
)
def test_timestamps(raw: str, expected: datetime):
    assert parse_sendcomms_time(raw) == expected


@pytest.mark.parametrize("raw", ["", "2025-12-28", "2025-13-28T10:15:42Z", "1766917000"])
def test_bad_timestamps(raw: str):
    with pytest.raises(ValueError):
        parse_sendcomms_time(raw)


def test_resign_signs_the_same_body_with_the_first_secret():
    rotating = provider(secrets=[SECRET, OLD_SECRET])
    capture = sendcomms_request(OLD_SECRET, SENT_BODY)
    resigned = rotating.resign(capture, public_base_url="https://x.example", now=0.0)
    assert resigned.body == SENT_BODY
    assert resigned.headers["x-sendcomms-signature"] == SENT_SIGNATURE


def test_transaction_ids_look_like_sendcomms_ones():
    moment = datetime(2025, 12, 28, 10, 15, 42, 318_000, tzinfo=UTC)
    # Node: Date.UTC(2025, 11, 28, 10, 15, 42, 318).toString(36) is "mjpkq67i".
    assert sendcomms_transaction_id(moment, "6f97ab63ff91") == "sms_mjpkq67i_6f97ab63ff91"


# --------------------------------------------------------------------------- sending


def outbox_item(sender: str | None = None) -> OutboxItem:
    return OutboxItem(
        message_id="msg_01JF3Q5Z9X2K8M4N6P7R1S3T5V",
        provider="sendcomms",
        to="+233540800994",
        body="Your OTP is 123456",
        sender=sender,
        attempts=1,
        in_doubt=False,
        created_at=RECEIVED_AT,
    )


def test_the_send_request():
    sender = provider(api_key="sc_live_abc", api_base_url="https://api.sendcomms.com/").sender()
    assert sender is not None
    request = sender.send_request(outbox_item())
    assert (request.method, str(request.url)) == (
        "POST",
        "https://api.sendcomms.com/api/v1/sms/send",
    )
    assert request.headers["authorization"] == "Bearer sc_live_abc"
    assert json.loads(request.content) == {
        "to": "+233540800994",
        "message": "Your OTP is 123456",
        "reference": "msg_01JF3Q5Z9X2K8M4N6P7R1S3T5V",
        "idempotency_key": "msg_01JF3Q5Z9X2K8M4N6P7R1S3T5V",
    }  # no "from": SendComms' default sender


def test_the_default_host_and_the_sender_id():
    sender = provider(api_key="sc_live_abc", sender="ACME").sender()
    assert sender is not None
    first = sender.send_request(outbox_item())
    own = sender.send_request(outbox_item(sender="Shop"))
    assert str(first.url) == "https://api.sendcomms.com/api/v1/sms/send"
    assert json.loads(first.content)["from"] == "ACME"
    assert json.loads(own.content)["from"] == "Shop"  # the message's own sender wins
    # Every attempt carries the same key: a repeat is answered with the original send.
    assert first.content.replace(b'"ACME"', b'"Shop"') == own.content


SUCCESS = {
    "success": True,
    "data": {
        "transaction_id": "sms_mjhw8xkw_6f97ab63ff91",
        "message_id": "SMf9c2ebdffd58b516f6895b02051c4b21",
        "status": "sent",
        "to": "+233540800994",
        "message_length": 18,
        "segments": 1,
        "country": {"code": "233", "name": "Ghana"},
        "region": "africa",
        "remaining": 49,
        "quota": {"used": 1, "remaining": 49},
        "created_at": "2025-12-28T10:15:42.318Z",
    },
}
REPLAY = {
    **SUCCESS,
    "_idempotent": {"replayed": True, "message": "Duplicate request - returning cached response"},
}
WINDOW = {"x-ratelimit-limit": "5", "x-ratelimit-remaining": "3", "x-ratelimit-reset": "1766452500"}


def error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": message, **extra}}


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (200, WINDOW, SUCCESS, Accepted(TXN, "sent")),
        (200, {**WINDOW, "x-idempotent-replay": "true"}, REPLAY, Accepted(TXN, "sent")),
        (200, {}, {"success": False}, Unknown("HTTP 200 OK without a readable message id")),
        (
            409,
            WINDOW,
            error("REQUEST_IN_PROGRESS", "Request is being processed. Please wait."),
            Unknown(
                "HTTP 409 Conflict REQUEST_IN_PROGRESS: Request is being processed. Please wait."
            ),
        ),
        (
            409,
            {"retry-after": "3"},
            error("REQUEST_IN_PROGRESS", "Request is being processed. Please wait."),
            Unknown(
                "HTTP 409 Conflict REQUEST_IN_PROGRESS: Request is being processed. Please wait.",
                "3",
            ),
        ),
        (
            429,
            {"retry-after": "39", "x-ratelimit-remaining": "0"},
            error("RATE_LIMIT_EXCEEDED", "Rate limit exceeded.", retryAfter=39, reset=1766452500),
            Deferred("HTTP 429 Too Many Requests RATE_LIMIT_EXCEEDED: Rate limit exceeded.", "39"),
        ),
        (
            429,
            {},  # a proxy dropped Retry-After: the body's retryAfter says the same
            error("RATE_LIMIT_EXCEEDED", "Rate limit exceeded.", retryAfter=12),
            Deferred("HTTP 429 Too Many Requests RATE_LIMIT_EXCEEDED: Rate limit exceeded.", "12"),
        ),
        (
            402,
            WINDOW,
            error("INSUFFICIENT_BALANCE", "Insufficient balance.", details={"required": 0.035}),
            Deferred("HTTP 402 Payment Required INSUFFICIENT_BALANCE: Insufficient balance."),
        ),
        (
            400,
            WINDOW,
            error("INVALID_PHONE_NUMBER", "Invalid phone number."),
            Rejected("INVALID_PHONE_NUMBER", "Invalid phone number."),
        ),
        (
            400,
            WINDOW,
            error("SMS_SEND_FAILED", "This recipient has opted out.", transaction_id="sms_1"),
            Rejected("SMS_SEND_FAILED", "This recipient has opted out."),
        ),
        (400, {}, "<html>", Rejected(None, "HTTP 400 Bad Request")),
        (
            401,
            {},
            error("UNAUTHORIZED", "Invalid or missing API key"),
            Deferred("HTTP 401 Unauthorized"),
        ),
        (
            403,
            {},
            error("ACCOUNT_SUSPENDED", "Account suspended."),
            Deferred("HTTP 403 Forbidden"),
        ),
        (
            503,
            WINDOW,
            error("SMS_SEND_FAILED", "Failed to send SMS.", transaction_id="sms_2"),
            Unknown("HTTP 503 Service Unavailable"),
        ),
        (500, {}, error("INTERNAL_ERROR", "oops"), Unknown("HTTP 500 Internal Server Error")),
    ],
    ids=[
        "ok",
        "replay",
        "2xx-unreadable",
        "409-in-progress",
        "409-retry-after",
        "429",
        "429-body-only",
        "402",
        "400-invalid-number",
        "400-send-failed",
        "400-not-json",
        "401",
        "403",
        "503",
        "500",
    ],
)
def test_reading_the_send_answer(status: int, headers: dict[str, str], body: Any, expected: object):
    sender = provider(api_key="sc_live_abc").sender()
    assert sender is not None
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    response = httpx.Response(status, headers=headers, content=content)
    assert sender.read_send(response) == expected


# --------------------------------------------------------------------------- error codes


def test_refusal_codes_are_explained_from_the_errors_page():
    assert error_label("sendcomms") == "SendComms"
    assert explain_error("sendcomms", "SMS_SEND_FAILED") == (
        "the sender id is not verified for the account, or the recipient opted out"
    )
    assert (
        explain_error("sendcomms", "INVALID_PHONE_NUMBER") == "the 'to' number is not in E.164 form"
    )
    assert explain_error("sendcomms", "REQUEST_IN_PROGRESS") is None  # never a message's error
