"""Provider type ``txtly``: config, the ``txtly-signature`` scheme, verify, parse, the
sender's requests and answer reading, re-signing and the builders (sans-IO).

The signature vector below was computed with ``openssl dgst -sha256 -mac HMAC``, not
with our code. Txtly documents no SMS event and does not spell out its signature
scheme (docs/providers/txtly.md): these tests pin the choices we made.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import write_config
from pydantic import ValidationError

from receiver.config import load
from receiver.core.signatures import txtly as scheme
from receiver.core.status import Status
from receiver.errors import ConfigError, PayloadInvalid, SignatureError
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
from receiver.providers.txtly import (
    IDEMPOTENCY_LIFETIME,
    STATUS_MAP,
    TxtlyConfig,
    TxtlyProvider,
    TxtlySender,
    read_timestamp,
)
from receiver.records import OutboxItem
from receiver.testing import txtly_event, txtly_request

SECRET = "whsec_a1b2c3d4e5f6a7b8c9d0e1f2"
RETIRED_SECRET = "whsec_0f1e2d3c4b5a69788796a5b4"
API_KEY = "tx_live_abc123xyz789def456ghi789jkl012mno345"
SENDER = "d290f1ee-6c54-4b01-90e6-d701748f0851"
SMS_ID = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
TOKEN = "tok_" + "Q3x9" * 7
RECEIVED_AT = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)

# The documented envelope (webhooks-guide) with an sms.* type; the signature of exactly
# these bytes with SECRET, by openssl.
VECTOR_BODY = (
    b'{"id":"evt_abc123","type":"sms.delivered","created_at":"2026-03-21T14:30:00Z",'
    b'"data":{"sms_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","to":"+61412345678"}}'
)
VECTOR_SIGNATURE = "5d54297ebb0dc769b6b8e778512bf18bb49c496d06ce1ad8ad76d8208450b674"


def provider(**config: Any) -> TxtlyProvider:
    table = {"type": "txtly", "secrets": [SECRET], **config}
    return TxtlyProvider("txtly", TxtlyConfig.model_validate(table))


def inbound(request: WebhookRequest) -> InboundRequest:
    headers = {k.lower(): v for k, v in request.headers.items()}
    return InboundRequest(
        method=request.method,
        url="https://dlr.example.com" + request.path,
        headers=headers,
        query_string=request.path.partition("?")[2].encode(),
        body=request.body,
        media_type=headers.get("content-type", "").partition(";")[0],
        received_at=RECEIVED_AT,
    )


def signed(body: bytes, signature: str | None = None) -> InboundRequest:
    headers = {"content-type": JSON}
    headers[scheme.HEADER] = scheme.signature(SECRET, body) if signature is None else signature
    return inbound(WebhookRequest("/webhooks/txtly", body, headers))


def event_body(**changes: Any) -> bytes:
    event = {
        "id": "evt_abc123",
        "type": "sms.delivered",
        "created_at": "2026-03-21T14:30:00Z",
        "data": {"sms_id": SMS_ID, "to": "+61412345678"},
    }
    event.update(changes)
    return json.dumps(event).encode()


# --- config -----------------------------------------------------------------------------


def test_registered_and_class_attributes() -> None:
    assert PROVIDER_TYPES["txtly"] is TxtlyProvider
    assert TxtlyProvider.config_model is TxtlyConfig
    assert frozenset({JSON}) == TxtlyProvider.media_types
    assert TxtlyConfig.signed_reports is False  # the signature is optional


def test_api_key_and_sender_are_enough_to_send() -> None:
    config = TxtlyConfig.model_validate({"type": "txtly", "api_key": API_KEY, "sender": SENDER})
    assert config.sends and config.secrets == [] and config.url_token is None
    assert isinstance(TxtlyProvider("txtly", config).sender(), TxtlySender)


@pytest.mark.parametrize(
    "table",
    [
        {"secrets": [SECRET]},
        {"secrets": [SECRET, RETIRED_SECRET]},
        {"url_token": TOKEN},
        {"allowed_ips": ["203.0.113.0/24"]},
        {"insecure_no_signature": True},
    ],
    ids=["secret", "rotation", "url_token", "allowed_ips", "insecure"],
)
def test_reports_alone_need_a_secret_a_token_or_addresses(table: dict[str, Any]) -> None:
    config = TxtlyConfig.model_validate({"type": "txtly", **table})
    assert not config.sends
    assert TxtlyProvider("txtly", config).sender() is None


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({}, "secrets: set the webhook's signing secret"),
        ({"secrets": ["a1b2c3d4e5f6a7b8c9d0"]}, r"secrets\[0\]: must be the webhook's signing"),
        ({"secrets": ["whsec_a1b2c3d4e5f6..."]}, r"secrets\[0\]: must have at least 16"),
        ({"secrets": ["whsec_short"]}, r"secrets\[0\]: must have at least 16"),
        ({"secrets": [SECRET, f"{RETIRED_SECRET}\n"]}, r"secrets\[1\]"),
        ({"api_key": SECRET, "sender": SENDER}, r"(?s)api_key.*must be a Txtly API key"),
        ({"api_key": API_KEY, "sender": "AcmeAlerts"}, r"(?s)sender.*must be the id \(a UUID\)"),
        ({"api_key": API_KEY}, "sender: is required to send"),
        ({"sender": SENDER, "secrets": [SECRET]}, "api_key: is required to send"),
        (
            {"api_key": API_KEY, "sender": SENDER, "api_base_url": "https://api.txtly.com.au/v1"},
            r"(?s)api_base_url.*is the host without /v1",
        ),
        ({"secrets": [SECRET], "signing_secret": SECRET}, "signing_secret"),
    ],
    ids=[
        "nothing",
        "no-prefix",
        "truncated-copy",
        "short",
        "newline",
        "secret-as-key",
        "sender-name",
        "key-without-sender",
        "sender-without-key",
        "versioned-base-url",
        "unknown-key",
    ],
)
def test_bad_config_refused(table: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        TxtlyConfig.model_validate({"type": "txtly", **table})


def test_start_up_names_the_file_and_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, providers={"au": {"type": "txtly"}})
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.key == "providers.au.secrets"
    assert "api_key and sender to send" in caught.value.problem


# --- the signature scheme ----------------------------------------------------------------


def test_the_openssl_vector() -> None:
    assert scheme.signature(SECRET, VECTOR_BODY) == VECTOR_SIGNATURE
    scheme.verify(VECTOR_BODY, {scheme.HEADER: VECTOR_SIGNATURE}, [SECRET])


@pytest.mark.parametrize(
    "header",
    [
        VECTOR_SIGNATURE,
        VECTOR_SIGNATURE.upper(),
        f"sha256={VECTOR_SIGNATURE}",
        f" {VECTOR_SIGNATURE} ",
    ],
    ids=["hex", "upper-hex", "sha256-prefix", "padded"],
)
def test_accepted_header_forms(header: str) -> None:
    scheme.verify(VECTOR_BODY, {scheme.HEADER: header}, [SECRET])


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "SIGNATURE_MISSING"),
        ("", "SIGNATURE_MISSING"),
        ("v1," + VECTOR_SIGNATURE, "SIGNATURE_MALFORMED"),
        (f"t=1774103400,v1={VECTOR_SIGNATURE}", "SIGNATURE_MALFORMED"),
        (VECTOR_SIGNATURE[:-1], "SIGNATURE_MALFORMED"),
        ("XdQpfrsNx2m2uOd4USvxi7SclG0GzhrYrXbYIIRQtnQ=", "SIGNATURE_MALFORMED"),  # base64
        ("0" * 64, "SIGNATURE_INVALID"),
    ],
    ids=["absent", "empty", "v1-prefix", "stripe-style", "short", "base64", "zeros"],
)
def test_refused_header_forms(header: str | None, code: str) -> None:
    headers = {} if header is None else {scheme.HEADER: header}
    with pytest.raises(SignatureError) as caught:
        scheme.verify(VECTOR_BODY, headers, [SECRET])
    assert caught.value.code == code
    assert VECTOR_SIGNATURE not in caught.value.detail  # never the expected signature


def test_every_secret_of_a_rotation_is_tried_and_others_refused() -> None:
    header = {scheme.HEADER: scheme.signature(RETIRED_SECRET, VECTOR_BODY)}
    scheme.verify(VECTOR_BODY, header, [SECRET, RETIRED_SECRET])
    with pytest.raises(SignatureError, match="matches no configured secret"):
        scheme.verify(VECTOR_BODY, header, [SECRET])


def test_the_body_is_signed_byte_for_byte() -> None:
    reformatted = json.dumps(json.loads(VECTOR_BODY)).encode()  # same JSON, other bytes
    with pytest.raises(SignatureError):
        scheme.verify(reformatted, {scheme.HEADER: VECTOR_SIGNATURE}, [SECRET])


# --- verify --------------------------------------------------------------------------------


def test_verify_checks_the_signature_when_secrets_are_set() -> None:
    provider().verify(signed(VECTOR_BODY), 0.0)
    with pytest.raises(SignatureError):
        provider().verify(signed(VECTOR_BODY, "0" * 64), 0.0)
    with pytest.raises(SignatureError) as caught:
        provider(url_token=TOKEN).verify(signed(VECTOR_BODY, ""), 0.0)  # both are checked
    assert caught.value.code == "SIGNATURE_MISSING"


def test_no_timestamp_is_signed_so_a_late_redelivery_verifies() -> None:
    # Txtly retries for 17.5 h (5 s ... 10 h); a redelivery is a duplicate event id.
    provider().verify(signed(VECTOR_BODY), now=2_000_000_000.0)


@pytest.mark.parametrize(
    "config", [{"url_token": TOKEN}, {"allowed_ips": ["203.0.113.0/24"]}], ids=["token", "ips"]
)
def test_without_secrets_the_edges_checks_guard_the_reports(config: dict[str, Any]) -> None:
    unsigned = inbound(txtly_request(None, txtly_event(SMS_ID, "delivered"), provider="txtly"))
    provider(secrets=[], **config).verify(unsigned, 0.0)  # the edge checked token / address


def test_a_provider_that_only_sends_refuses_every_report() -> None:
    only_sends = provider(secrets=[], api_key=API_KEY, sender=SENDER)
    with pytest.raises(SignatureError) as caught:
        only_sends.verify(signed(VECTOR_BODY), 0.0)
    assert caught.value.code == "SIGNATURE_MISSING"
    assert "takes none" in caught.value.detail


def test_insecure_turns_verification_off() -> None:
    assert provider(secrets=[], insecure_no_signature=True).verifies is False
    assert provider().verifies is True


# --- parse ---------------------------------------------------------------------------------


def test_parse_an_sms_event() -> None:
    [report] = provider().parse(signed(VECTOR_BODY))
    assert report.event_id == "evt_abc123"
    assert report.provider_message_id == SMS_ID
    assert (report.status, report.provider_status) == (Status.DELIVERED, "delivered")
    assert report.occurred_at == datetime(2026, 3, 21, 14, 30, tzinfo=UTC)
    assert report.to == "+61412345678"
    assert (report.error_code, report.error_message, report.message_reference) == (None,) * 3


def test_data_status_wins_over_the_type_and_id_names_the_sms_too() -> None:
    data = {"id": SMS_ID, "status": "failed", "error_code": "E42", "error_message": "Blocked"}
    [report] = provider().parse(signed(event_body(type="sms.updated", data=data)))
    assert (report.provider_message_id, report.status) == (SMS_ID, Status.FAILED)
    assert (report.provider_status, report.error_code, report.error_message) == (
        "failed",
        "E42",
        "Blocked",
    )


@pytest.mark.parametrize(
    "event_type", ["email.delivered", "email.bounced", "contact.created", "broadcast.sent"]
)
def test_other_events_are_acknowledged_without_a_report(event_type: str) -> None:
    data = {"email_id": "em_xyz789", "to": "user@example.com"}
    assert provider().parse(signed(event_body(type=event_type, data=data))) == []


@pytest.mark.parametrize(("word", "status"), list(STATUS_MAP.items()))
def test_status_mapping_row(word: str, status: Status) -> None:
    [report] = provider().parse(signed(event_body(type=f"sms.{word}")))
    assert (report.status, report.provider_status) == (status, word)


@pytest.mark.parametrize("word", ["received", "opened", "SUCCESS"])
def test_unmapped_word_kept_with_status_none(word: str) -> None:
    [report] = provider().parse(signed(event_body(type=f"sms.{word}")))
    assert (report.status, report.provider_status) == (None, word)


def test_a_redelivery_has_the_same_event_id() -> None:
    first = provider().parse(signed(VECTOR_BODY))
    assert provider().parse(signed(VECTOR_BODY)) == first


@pytest.mark.parametrize(
    ("created_at", "expected"),
    [
        ("2026-03-21T14:30:00Z", datetime(2026, 3, 21, 14, 30, tzinfo=UTC)),
        ("2026-03-21T14:30:00.250Z", datetime(2026, 3, 21, 14, 30, 0, 250000, tzinfo=UTC)),
        ("2026-03-22T01:30:00+11:00", datetime(2026, 3, 21, 14, 30, tzinfo=UTC)),
        ("2026-03-21T14:30:00", datetime(2026, 3, 21, 14, 30, tzinfo=UTC)),  # no zone: UTC
    ],
)
def test_timestamps(created_at: str, expected: datetime) -> None:
    assert read_timestamp(created_at) == expected
    [report] = provider().parse(signed(event_body(created_at=created_at)))
    assert report.occurred_at == expected


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[]", "body"),
        (event_body(id=""), "id"),
        (event_body(created_at="21/03/2026"), "created_at"),
        (event_body(data="evt"), "data"),
        (event_body(data={"to": "+61412345678"}), "data.sms_id"),
        (event_body(data={"sms_id": "x" * 256}), "data.sms_id"),
        (event_body(data={"sms_id": SMS_ID, "status": ""}), "data.status"),
    ],
    ids=[
        "not-json",
        "array",
        "empty-id",
        "bad-time",
        "data-string",
        "no-sms-id",
        "long-id",
        "blank",
    ],
)
def test_invalid_payload_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadInvalid) as caught:
        provider().parse(signed(body))
    assert caught.value.field == field


def test_a_long_error_message_is_cut_not_refused() -> None:
    data = {"sms_id": SMS_ID, "error_message": "x" * 5000}
    [report] = provider().parse(signed(event_body(type="sms.failed", data=data)))
    assert report.error_message == "x" * 1000


def test_error_names_are_explained_for_the_console() -> None:
    assert error_label("txtly") == "Txtly"
    for name in ("validation_error", "unprocessable_entity", "internal_error"):
        assert explain_error("txtly", name), name
    assert explain_error("txtly", "E42") is None


# --- sending -------------------------------------------------------------------------------

ITEM = OutboxItem(
    message_id="msg_01JDX3M6Y0Z5S4W9B8C7D6E5F4",
    provider="txtly",
    to="+61412345678",
    body="Your verification code is 123456",
    sender=None,
    attempts=1,
    in_doubt=False,
    created_at=RECEIVED_AT,
)


def sender(**config: Any) -> TxtlySender:
    table = {"type": "txtly", "api_key": API_KEY, "sender": SENDER, **config}
    built = TxtlyProvider("txtly", TxtlyConfig.model_validate(table)).sender()
    assert isinstance(built, TxtlySender)
    return built


def test_the_send_request_is_the_documented_one() -> None:
    request = sender().send_request(ITEM)
    assert (request.method, str(request.url)) == ("POST", "https://api.txtly.com.au/v1/sms")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == JSON
    assert request.headers["idempotency-key"] == ITEM.message_id
    assert json.loads(request.content) == {
        "to": "+61412345678",
        "body": "Your verification code is 123456",
        "senderId": SENDER,
    }


def test_every_attempt_carries_the_same_key_within_txtlys_limit() -> None:
    retry = replace(ITEM, attempts=5, in_doubt=True)
    keys = {sender().send_request(item).headers["idempotency-key"] for item in (ITEM, retry)}
    assert keys == {ITEM.message_id} and len(ITEM.message_id) <= 256


def test_the_host_is_configurable_and_a_messages_own_sender_wins() -> None:
    other = "0b8e5d1c-2f3a-4b5c-8d9e-0f1a2b3c4d5e"
    request = sender(api_base_url="http://127.0.0.1:9/").send_request(replace(ITEM, sender=other))
    assert str(request.url) == "http://127.0.0.1:9/v1/sms"
    assert json.loads(request.content)["senderId"] == other


def test_no_lookup_but_a_24_hour_key() -> None:
    assert sender().lookup_request(ITEM) is None
    assert TxtlySender.idempotency_lifetime == IDEMPOTENCY_LIFETIME == timedelta(hours=24)


SENT = {
    "id": SMS_ID,
    "to": "+61412345678",
    "body": "Your verification code is 123456",
    "messageType": "transactional",
    "status": "sent",
    "segments": 1,
    "zone": "Zone2",
    "bundleCovered": True,
    "billableCents": 0,
    "providerMessageId": "sns-msg-abc123",
    "senderId": SENDER,
    "senderName": "Acme Alerts",
    "createdAt": "2026-04-12T10:30:00Z",
    "sentAt": "2026-04-12T10:30:01Z",
}


def error(status: int, name: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"status_code": status, "name": name, "message": message, **extra}


RATE = "You have exceeded the rate limit. Please try again later."


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (200, SENT, {}, Accepted(SMS_ID, "sent")),
        (201, SENT, {}, Accepted(SMS_ID, "sent")),
        (200, {"status": "sent"}, {}, Unknown("HTTP 200 OK without a readable message id")),
        (
            400,
            error(400, "validation_error", "Validation failed", errors={"to": ["Invalid"]}),
            {},
            Rejected("validation_error", "Validation failed - to: Invalid"),
        ),
        (
            422,
            error(422, "unprocessable_entity", "Sender is not active"),
            {},
            Rejected("unprocessable_entity", "Sender is not active"),
        ),
        (400, "<html>bad</html>", {}, Rejected(None, "HTTP 400 Bad Request")),
        (401, error(401, "authentication_error", "x"), {}, Deferred("HTTP 401 Unauthorized")),
        (403, error(403, "authorization_error", "x"), {}, Deferred("HTTP 403 Forbidden")),
        (404, error(404, "not_found", "x"), {}, Deferred("HTTP 404 Not Found")),
        (
            429,
            error(429, "rate_limit_exceeded", RATE),
            {"retry-after": "2", "x-ratelimit-remaining": "0"},
            Deferred("HTTP 429 Too Many Requests", "2"),
        ),
        (409, error(409, "conflict", "x"), {}, Unknown("HTTP 409 Conflict")),
        (500, error(500, "internal_error", "x"), {}, Unknown("HTTP 500 Internal Server Error")),
    ],
    ids=[
        "200",
        "201",
        "2xx-without-id",
        "validation",
        "unprocessable",
        "not-json",
        "401",
        "403",
        "404",
        "429",
        "409-conflict",
        "500",
    ],
)
def test_reading_the_answer(
    status: int, body: Any, headers: dict[str, str], expected: object
) -> None:
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    response = httpx.Response(status, content=content, headers=headers)
    assert sender().read_send(response) == expected


# --- re-signing and the builders -------------------------------------------------------------


def test_resign_after_a_secret_rotation() -> None:
    new_only = provider(secrets=[SECRET])
    old = txtly_request(RETIRED_SECRET, txtly_event(SMS_ID, "delivered"), provider="txtly")
    capture = replace(old, headers={**old.headers, "host": "old.example", "x-note": "kept"})
    with pytest.raises(SignatureError):
        new_only.verify(inbound(capture), 0.0)

    resigned = new_only.resign(capture, public_base_url="https://dlr.example.com", now=0.0)

    new_only.verify(inbound(resigned), 0.0)
    assert resigned.body == capture.body and resigned.path == capture.path
    assert resigned.headers["x-note"] == "kept" and "host" not in resigned.headers
    assert new_only.parse(inbound(resigned)) == new_only.parse(inbound(capture))


@pytest.mark.parametrize(
    "config",
    [{"secrets": [], "url_token": TOKEN}, {"secrets": [], "insecure_no_signature": True}],
    ids=["token-only", "insecure"],
)
def test_resign_without_a_secret_replays_the_request(config: dict[str, Any]) -> None:
    request = txtly_request(None, txtly_event(SMS_ID, "delivered"), url_token=TOKEN)
    assert provider(**config).resign(request, public_base_url="https://x", now=0.0) is request


def test_the_builders() -> None:
    at = datetime(2026, 3, 21, 14, 30, tzinfo=UTC)
    event = txtly_event(SMS_ID, "bounced", event_id="evt_1", created_at=at, error_code="E1")
    assert event == {
        "id": "evt_1",
        "type": "sms.bounced",
        "created_at": "2026-03-21T14:30:00Z",
        "data": {"sms_id": SMS_ID, "error_code": "E1"},
    }
    request = txtly_request(SECRET, event, provider="au", url_token=TOKEN)
    assert request.path == f"/webhooks/au?token={TOKEN}"
    assert request.headers[scheme.HEADER] == scheme.signature(SECRET, request.body)
    unsigned = txtly_request(None, event)
    assert (unsigned.path, scheme.HEADER in unsigned.headers) == ("/webhooks/default", False)
    [report] = provider().parse(inbound(request))
    assert (report.event_id, report.status, report.error_code) == (
        "evt_1",
        Status.UNDELIVERED,
        "E1",
    )
