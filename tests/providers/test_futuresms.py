"""Provider type ``futuresms``: config, DLR parsing, status map, event ids, the answer,
templates, and the sender's requests, session and answer reading (sans-IO), and its
order lookup against ``FakeFutureSms``.

Payloads are those of FutureSMS's pages (www.futuresms.net: Delivery Reports, Send SMS,
Idempotency, Track Messages, Response Envelope); FutureSMS publishes no SDK.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from conftest import write_config

from receiver.config import load
from receiver.core.status import Status
from receiver.errors import ConfigError, PayloadInvalid
from receiver.providers import PROVIDER_TYPES, explain_error
from receiver.providers.base import (
    PERMANENT,
    Accepted,
    Deferred,
    InboundRequest,
    Rejected,
    Unknown,
    WebhookRequest,
)
from receiver.providers.futuresms import (
    STATUS_MAP,
    FutureSmsConfig,
    FutureSmsProvider,
    FutureSmsSender,
    read_time,
)
from receiver.records import OutboxItem, Template
from receiver.testing.fake_futuresms import FakeFutureSms
from receiver.testing.futuresms import futuresms_report, futuresms_request

TOKEN = "tok_" + "F7u2" * 7
API = "https://api.futuresms.example"
PUBLIC = "https://dlr.example.com"
NOW = datetime(2026, 3, 25, 10, 30, tzinfo=UTC)
MESSAGE_ID = "msg_01JQ3V7Z8K9M2N4P6R8T0V2X4Z"
ORDER_ID = "SDPS260325103012A1B2C3D"

# The Delivery Reports page's fields, with the values of its examples.
DOC_DLR = {
    "order_id": ORDER_ID,
    "client_order_id": "client-ord-20260325-0001",
    "message_status": "DELIVRD",
    "phone_number": "+639171234567",
    "sender_value": "testsms",
    "reported_at": "2026-03-25T10:31:48Z",
}
# The Idempotency page's conflict response, verbatim.
DOC_CONFLICT = {
    "error_code": "CONFLICT",
    "reason": None,
    "message": "Conflict",
    "details": "client_order_id already exists for this merchant",
    "path": "/api/v1/sms/sends",
    "timestamp": "2026-03-25T10:30:05Z",
    "request_id": "req_20260325_demo_0002",
}
SEND_KEYS = {
    "api_base_url": API,
    "username": "api-user",
    "password": "s3cret-pass",
    "sender": "SID-1",
}


def config(**keys: Any) -> FutureSmsConfig:
    keys.setdefault("url_token", TOKEN)
    return FutureSmsConfig(type="futuresms", **keys)


def provider(**keys: Any) -> FutureSmsProvider:
    return FutureSmsProvider("fs", config(**keys))


def sender(**keys: Any) -> FutureSmsSender:
    made = provider(**{**SEND_KEYS, **keys}).sender(PUBLIC)
    assert isinstance(made, FutureSmsSender)
    return made


def inbound(body: dict[str, Any] | bytes) -> InboundRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return InboundRequest(
        method="POST",
        url=f"{PUBLIC}/webhooks/fs?token={TOKEN}",
        headers={"content-type": "application/json"},
        query_string=f"token={TOKEN}".encode(),
        body=raw,
        media_type="application/json",
        received_at=NOW,
    )


def item(**changes: Any) -> OutboxItem:
    fields: dict[str, Any] = {
        "message_id": MESSAGE_ID,
        "provider": "fs",
        "to": "+639171234567",
        "body": None,
        "sender": None,
        "attempts": 1,
        "in_doubt": False,
        "created_at": NOW,
        "template": Template("TPL1001", None, {"var": "Alice"}),
    }
    return OutboxItem(**{**fields, **changes})


def answer(status: int, payload: Any, *, path: str = "/api/v1/sms/sends", **headers: str):
    request = httpx.Request("POST", API + path)
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return httpx.Response(status, content=content, headers=headers, request=request)


def tokens(**data: Any) -> dict[str, Any]:
    return {"message": "OK", "details": None, "data": data, "meta": None}


# --------------------------------------------------------------------------- config


def test_registered_as_a_template_type_without_signatures() -> None:
    assert PROVIDER_TYPES["futuresms"] is FutureSmsProvider
    assert FutureSmsProvider.send_content == frozenset({"template"})
    assert FutureSmsConfig.signed_reports is False
    assert provider().config.sends is False  # no sending keys: receives only
    assert provider(**SEND_KEYS).config.sends is True


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({}, "providers.fs.url_token", "reports of this type are not signed"),
        ({"secrets": ["x" * 32], "url_token": TOKEN}, "providers.fs.secrets", "signs no reports"),
        ({"url_token": "short"}, "providers.fs.url_token", "pattern"),
        (
            {"url_token": TOKEN, **SEND_KEYS, "api_key": "k"},
            "providers.fs.api_key",
            "username and password",
        ),
        ({"url_token": TOKEN, "username": "u"}, "providers.fs.api_base_url", "is required"),
        (
            {"url_token": TOKEN, **SEND_KEYS, "sender": None},
            "providers.fs.sender",
            "is required to send",
        ),
        (
            {"url_token": TOKEN, **SEND_KEYS, "api_base_url": API + "/api/v1"},
            "providers.fs.api_base_url",
            "without its version prefix",
        ),
        ({"url_token": TOKEN, "pasword": "x"}, "providers.fs.pasword", "not a known key"),
    ],
)
def test_config_refusals_name_the_key(tmp_path, table, key, words) -> None:
    table = {k: v for k, v in table.items() if v is not None}
    path = write_config(tmp_path, providers={"fs": {"type": "futuresms", **table}})
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.key == key
    assert words in caught.value.detail


@pytest.mark.parametrize(
    "guard",
    [{"url_token": TOKEN}, {"allowed_ips": ["203.0.113.0/24"]}, {"insecure_no_signature": True}],
)
def test_a_token_or_an_allow_list_is_enough(tmp_path, guard) -> None:
    path = write_config(tmp_path, providers={"fs": {"type": "futuresms", **guard, **SEND_KEYS}})
    assert load(path).providers["fs"].kind == "futuresms"


# --------------------------------------------------------------------------- reports


def test_parse_the_documented_callback() -> None:
    [report] = provider().parse(inbound(DOC_DLR))
    assert report.provider_message_id == ORDER_ID
    assert report.status is Status.DELIVERED
    assert report.provider_status == "DELIVRD"
    assert report.occurred_at == datetime(2026, 3, 25, 10, 31, 48, tzinfo=UTC)
    assert report.to == "+639171234567"
    assert report.message_reference == "client-ord-20260325-0001"  # our message id, when ours
    assert report.error_code is None and report.client_reference is None
    assert report.event_id.startswith("d_")


def test_a_callback_without_client_order_id_names_no_message_of_ours() -> None:
    for value in (None, "", "   "):
        [report] = provider().parse(inbound({**DOC_DLR, "client_order_id": value}))
        assert report.message_reference is None
    [report] = provider().parse(
        inbound({k: v for k, v in DOC_DLR.items() if k != "client_order_id"})
    )
    assert report.message_reference is None


def test_a_redelivery_gets_the_same_event_id_and_another_report_another() -> None:
    first = provider().parse(inbound(DOC_DLR))[0].event_id
    again = provider().parse(inbound(dict(reversed(DOC_DLR.items()))))[0].event_id
    assert first == again
    for change in (
        {"order_id": "SDPS260325103012A1B2C3E"},
        {"message_status": "UNDELIV"},
        {"reported_at": "2026-03-25T10:31:49Z"},
    ):
        assert provider().parse(inbound({**DOC_DLR, **change}))[0].event_id != first


def test_the_same_instant_written_otherwise_is_the_same_event() -> None:
    first = provider().parse(inbound(DOC_DLR))[0].event_id
    offset = provider().parse(inbound({**DOC_DLR, "reported_at": "2026-03-25T18:31:48+08:00"}))
    assert offset[0].event_id == first


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("DELIVRD", Status.DELIVERED),
        ("ACCEPTD", Status.SENT),
        ("ENROUTE", Status.BUFFERED),
        ("UNKNOWN", Status.UNKNOWN),
        ("UNDELIV", Status.UNDELIVERED),
        ("EXPIRED", Status.EXPIRED),
        ("REJECTD", Status.REJECTED),
        ("DELETED", Status.FAILED),
        ("delivrd", Status.DELIVERED),  # the word is kept as sent, mapped whatever its case
    ],
)
def test_status_map(word: str, status: Status) -> None:
    [report] = provider().parse(inbound({**DOC_DLR, "message_status": word}))
    assert (report.status, report.provider_status) == (status, word)


def test_the_status_map_is_the_smpp_receipt_states() -> None:
    assert set(STATUS_MAP) == {
        *("DELIVRD", "ACCEPTD", "ENROUTE", "UNKNOWN"),
        *("UNDELIV", "EXPIRED", "REJECTD", "DELETED"),
    }


@pytest.mark.parametrize("word", ["pending", "SUBMITTED", "charged"])
def test_an_unmapped_word_is_kept_with_status_none(word: str) -> None:
    [report] = provider().parse(inbound({**DOC_DLR, "message_status": word}))
    assert report.status is None and report.provider_status == word


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        ({**DOC_DLR, "order_id": None}, "order_id"),
        ({k: v for k, v in DOC_DLR.items() if k != "order_id"}, "order_id"),
        ({k: v for k, v in DOC_DLR.items() if k != "message_status"}, "message_status"),
        ({**DOC_DLR, "message_status": ""}, "message_status"),
        ({k: v for k, v in DOC_DLR.items() if k != "reported_at"}, "reported_at"),
        ({**DOC_DLR, "reported_at": "yesterday"}, "reported_at"),
        ({**DOC_DLR, "reported_at": 1774434708}, "reported_at"),
        ({**DOC_DLR, "order_id": "has space"}, "order_id"),
    ],
)
def test_an_invalid_callback_names_the_field(body, field: str) -> None:
    with pytest.raises(PayloadInvalid) as caught:
        provider().parse(inbound(body))
    assert caught.value.field == field


def test_read_time() -> None:
    assert read_time("2026-03-25T10:30:00Z") == datetime(2026, 3, 25, 10, 30, tzinfo=UTC)
    assert read_time("2026-03-25T10:30:00") == datetime(2026, 3, 25, 10, 30, tzinfo=UTC)
    assert read_time("2026-03-25T12:30:00+02:00") == datetime(2026, 3, 25, 10, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        read_time("25/03/2026")


def test_verify_and_resign_leave_the_token_to_the_edge() -> None:
    fs = provider()
    fs.verify(inbound(DOC_DLR), NOW.timestamp())  # nothing to check: no signature
    request = WebhookRequest("/webhooks/fs?token=REDACTED", b"{}", {"content-type": "x"})
    assert fs.resign(request, public_base_url=PUBLIC, now=0) is request


def test_the_builder_makes_what_the_parser_reads() -> None:
    report = futuresms_report(ORDER_ID, "UNDELIV", client_order_id=MESSAGE_ID, reported_at=NOW)
    assert list(report) == list(DOC_DLR)
    assert report["reported_at"] == "2026-03-25T10:30:00Z"
    request = futuresms_request(report, provider="fs", token=TOKEN)
    assert request.path == f"/webhooks/fs?token={TOKEN}"
    assert request.headers == {"content-type": "application/json"}
    [parsed] = provider().parse(inbound(request.body))
    assert (parsed.status, parsed.message_reference) == (Status.UNDELIVERED, MESSAGE_ID)
    assert futuresms_request(report).path == "/webhooks/default"


# --------------------------------------------------------------------------- templates


@pytest.mark.parametrize(
    ("template", "part"),
    [
        (Template("TPL", None, {}), "id"),
        (Template("T" * 17, None, {}), "id"),
        (Template("TPL1001", "pt_BR", {}), "language"),
        (Template("TPL1001", None, {"1": "a", "2": "b"}), "variables"),
        (Template("TPL1001", None, {"var": "x" * 25}), "variables"),
    ],
)
def test_templates_that_do_not_fit_are_refused_naming_the_part(template, part) -> None:
    with pytest.raises(ValueError, match=f"^{part}: "):
        provider().check_template(template)


@pytest.mark.parametrize(
    "template",
    [
        Template("TPL1", None, {}),
        Template("T" * 16, None, {"var": "x" * 24}),
        Template("TPL1001", None, {"1": "Alice"}),
    ],
)
def test_templates_that_fit(template) -> None:
    provider().check_template(template)


# --------------------------------------------------------------------------- sending


def test_the_send_request() -> None:
    fs = sender()
    fs.read_auth(answer(200, tokens(access_token="at-1", refresh_token="rt-1")), NOW)
    request = fs.send_request(item())
    assert (request.method, str(request.url)) == ("POST", API + "/api/v1/sms/sends")
    assert request.headers["authorization"] == "Bearer at-1"
    assert json.loads(request.content) == {
        "phone_number": "+639171234567",
        "template_id": "TPL1001",
        "sender_id": "SID-1",
        "client_order_id": MESSAGE_ID,
        "var": "Alice",
        "dlr_address": f"{PUBLIC}/webhooks/fs?token={TOKEN}",
    }


def test_every_attempt_carries_the_same_client_order_id() -> None:
    fs = sender()
    first = json.loads(fs.send_request(item()).content)
    retry = json.loads(fs.send_request(item(attempts=3, in_doubt=True)).content)
    assert first["client_order_id"] == retry["client_order_id"] == MESSAGE_ID
    assert fs.idempotency_lifetime is PERMANENT


def test_a_message_sender_wins_and_no_var_is_sent_without_a_value() -> None:
    payload = json.loads(
        sender().send_request(item(sender="AUTO", template=Template("TPL2", None, {}))).content
    )
    assert payload["sender_id"] == "AUTO"
    assert "var" not in payload


def test_no_dlr_address_without_a_public_base_url_or_when_too_long() -> None:
    fs = provider(**SEND_KEYS)
    for base in (None, "https://dlr.example.com/" + "x" * 230):
        made = fs.sender(base)
        assert isinstance(made, FutureSmsSender)
        assert "dlr_address" not in json.loads(made.send_request(item()).content)


def test_a_body_message_cannot_be_sent() -> None:
    with pytest.raises(ValueError, match="only templates"):
        sender().send_request(item(body="hello", template=None))


def test_there_is_no_lookup_by_our_reference_only_by_order_id() -> None:
    fs = sender()
    assert fs.lookup_request(item(in_doubt=True)) is None
    request = fs.order_request("SDPS/1 2")
    assert request.method == "GET"
    assert str(request.url) == API + "/api/v1/sms/orders/SDPS%2F1%202"


def test_read_send_accepted() -> None:
    data = {"order_id": ORDER_ID, "order_status": "pending", "message_status": None}
    accepted = sender().read_send(answer(202, {"message": "Accepted", "data": data, "meta": {}}))
    assert accepted == Accepted(ORDER_ID, "pending")


@pytest.mark.parametrize("status", [409, 400, 422])
def test_conflict_is_the_original_send_whatever_its_http_status(status: int) -> None:
    assert sender().read_send(answer(status, DOC_CONFLICT)) == Accepted(None, "CONFLICT")


@pytest.mark.parametrize(
    ("status", "payload", "expected"),
    [
        (202, {"message": "Accepted", "data": {}}, Unknown),  # no order_id
        (202, b"<html>", Unknown),
        (409, b"", Unknown),  # a 409 that does not say CONFLICT: in doubt
        (500, {**DOC_CONFLICT, "error_code": "INTERNAL_SERVER_ERROR"}, Unknown),
        (502, b"bad gateway", Unknown),
        (401, {**DOC_CONFLICT, "error_code": "UNAUTHORIZED", "reason": "TOKEN_EXPIRED"}, Deferred),
        (403, {**DOC_CONFLICT, "error_code": "FORBIDDEN"}, Deferred),
        (429, {**DOC_CONFLICT, "error_code": "TOO_MANY_REQUESTS"}, Deferred),
    ],
)
def test_read_send_outcomes(status: int, payload: Any, expected: type) -> None:
    assert isinstance(sender().read_send(answer(status, payload)), expected)


def test_a_429_carries_its_retry_after() -> None:
    throttled = {**DOC_CONFLICT, "error_code": "TOO_MANY_REQUESTS"}
    result = sender().read_send(answer(429, throttled, **{"retry-after": "7"}))
    assert isinstance(result, Deferred) and result.retry_after == "7"


def test_a_validation_error_rejects_the_message_with_reason_and_details() -> None:
    error = {
        **DOC_CONFLICT,
        "error_code": "VALIDATION_ERROR",
        "reason": "TEMPLATE_NOT_APPROVED",
        "message": "Validation failed",
        "details": "template_id is not approved for this merchant",
    }
    result = sender().read_send(answer(422, error))
    assert result == Rejected(
        "VALIDATION_ERROR", "TEMPLATE_NOT_APPROVED: template_id is not approved for this merchant"
    )
    assert explain_error("futuresms", "VALIDATION_ERROR") is not None
    assert sender().read_send(answer(400, b"")) == Rejected(None, "HTTP 400 Bad Request")


def test_read_found_for_an_order_lookup() -> None:
    data = {"order_id": ORDER_ID, "client_order_id": MESSAGE_ID, "message_status": "DELIVRD"}
    fs = sender()
    found = fs.read_lookup(item(), answer(200, {"message": "OK", "data": data}, path="/o"))
    assert found == Accepted(ORDER_ID, "DELIVRD")
    other = {**data, "client_order_id": "client-ord-20260325-0001"}
    assert fs.read_found(item(), answer(200, {"message": "OK", "data": other})) is None


# --------------------------------------------------------------------------- the session


def test_the_first_call_logs_in_with_the_credentials() -> None:
    request = sender().auth_request(NOW)
    assert request is not None
    assert str(request.url) == API + "/api/v1/auth/login"
    assert json.loads(request.content) == {"username": "api-user", "password": "s3cret-pass"}


def test_tokens_are_renewed_before_the_stated_expiry_and_the_refresh_token_rotates() -> None:
    fs = sender()
    fs.read_auth(
        answer(
            200,
            tokens(
                access_token="at-1",
                refresh_token="rt-1",
                access_token_expires_at="2026-03-25T10:45:00Z",
                refresh_token_expires_at="2026-03-26T10:30:00Z",
            ),
        ),
        NOW,
    )
    assert fs.auth_request(NOW + timedelta(minutes=13)) is None
    refresh = fs.auth_request(NOW + timedelta(minutes=14, seconds=1))  # within a minute
    assert refresh is not None and str(refresh.url) == API + "/api/v1/auth/refresh"
    assert json.loads(refresh.content) == {"refresh_token": "rt-1"}
    # Spent: asked again before an answer, it logs in rather than reuse the refresh token.
    again = fs.auth_request(NOW + timedelta(minutes=14, seconds=1))
    assert again is not None and again.url.path == "/api/v1/auth/login"
    fs.read_auth(answer(200, tokens(access_token="at-2", refresh_token="rt-2"), path="/x"), NOW)
    assert fs.send_request(item()).headers["authorization"] == "Bearer at-2"


def test_an_expired_refresh_token_means_a_login() -> None:
    fs = sender()
    expiries = {"expires_in": 60, "refresh_expires_in": 120}
    fs.read_auth(answer(200, tokens(access_token="a", refresh_token="r", **expiries)), NOW)
    later = fs.auth_request(NOW + timedelta(seconds=61))
    assert later is not None and later.url.path == "/api/v1/auth/login"


def test_a_refused_refresh_is_followed_by_a_login() -> None:
    fs = sender()
    fs.read_auth(answer(200, tokens(access_token="a", refresh_token="r")), NOW)
    assert fs.unauthorized(fs.send_request(item())) is True
    refresh = fs.auth_request(NOW)
    assert refresh is not None and refresh.url.path == "/api/v1/auth/refresh"
    refused = {**DOC_CONFLICT, "error_code": "UNAUTHORIZED", "reason": "TOKEN_EXPIRED"}
    fs.read_auth(answer(401, refused, path="/api/v1/auth/refresh"), NOW)  # no error: log in
    login = fs.auth_request(NOW)
    assert login is not None and login.url.path == "/api/v1/auth/login"


def test_a_refused_login_says_why_without_the_password() -> None:
    refused = {**DOC_CONFLICT, "error_code": "UNAUTHORIZED", "reason": "INVALID_CREDENTIALS"}
    with pytest.raises(ValueError) as caught:
        sender().read_auth(answer(401, refused, path="/api/v1/auth/login"), NOW)
    assert "INVALID_CREDENTIALS" in str(caught.value)
    assert "s3cret-pass" not in str(caught.value)


@pytest.mark.parametrize(
    "payload", [b"nope", tokens(refresh_token="r"), tokens(access_token=""), {"data": []}]
)
def test_a_token_answer_without_an_access_token_is_an_error(payload: Any) -> None:
    with pytest.raises(ValueError):
        sender().read_auth(answer(200, payload, path="/api/v1/auth/login"), NOW)


def expiry_after_login(data: dict[str, Any]) -> datetime | None:
    """When the access token is renewed, probed minute by minute (None: never)."""
    fs = sender()
    fs.read_auth(answer(200, tokens(refresh_token="r", **data)), NOW)
    for minute in range(0, 120):
        if fs.auth_request(NOW + timedelta(minutes=minute)) is not None:
            return NOW + timedelta(minutes=minute + 1)  # renewed a minute before expiry
    return None


def jwt_with_exp(exp: datetime) -> str:
    return jwt.encode({"sub": "api-user", "exp": int(exp.timestamp())}, "k" * 32)


@pytest.mark.parametrize(
    ("data", "expires"),
    [
        ({"access_token": "a", "access_token_expires_at": "2026-03-25T11:00:00Z"}, 30),
        ({"access_token": "a", "expires_at": "2026-03-25T11:00:00Z"}, 30),
        ({"access_token": "a", "access_expires_at": NOW.timestamp() + 1800}, 30),
        ({"access_token": "a", "expires_in": 1800}, 30),
        ({"access_token": "a", "access_token_expires_in": 2700}, 45),
        ({"access_token": jwt_with_exp(NOW + timedelta(minutes=20))}, 20),
        ({"access_token": "a", "expires_at": "soon", "expires_in": 600}, 10),
        ({"access_token": "opaque-token"}, None),  # renewed only when refused (401)
    ],
)
def test_the_expiry_is_read_liberally(data: dict[str, Any], expires: int | None) -> None:
    renewed = expiry_after_login(data)
    assert renewed == (None if expires is None else NOW + timedelta(minutes=expires))


def test_top_level_token_fields_are_read_too() -> None:
    fs = sender()
    fs.read_auth(answer(200, {"access_token": "a", "refresh_token": "r"}), NOW)
    assert fs.auth_request(NOW) is None


def test_unauthorized_forgets_only_the_token_it_was_refused() -> None:
    fs = sender()
    fs.read_auth(answer(200, tokens(access_token="old", refresh_token="r")), NOW)
    stale = fs.send_request(item())
    fs.read_auth(answer(200, tokens(access_token="new", refresh_token="r2")), NOW)
    assert fs.unauthorized(stale) is True  # repeat: with the new one
    assert fs.auth_request(NOW) is None
    assert fs.unauthorized(fs.send_request(item())) is True
    refresh = fs.auth_request(NOW)
    assert refresh is not None and json.loads(refresh.content) == {"refresh_token": "r2"}


def test_the_sender_finds_an_order_by_its_order_id() -> None:
    with FakeFutureSms() as fake, httpx.Client() as http:
        fs = FutureSmsProvider("fs", config(**fake.config_keys())).sender()
        assert isinstance(fs, FutureSmsSender)
        login = fs.auth_request(datetime.now(UTC))
        assert login is not None
        fs.read_auth(http.send(login), datetime.now(UTC))
        sent = fs.read_send(http.send(fs.send_request(item())))
        assert isinstance(sent, Accepted) and sent.provider_message_id is not None
        found = fs.read_lookup(item(), http.send(fs.order_request(sent.provider_message_id)))
        missing = fs.read_lookup(item(), http.send(fs.order_request("SDPS0000")))
        [order] = fake.orders

    assert found == Accepted(sent.provider_message_id, "pending")
    assert isinstance(missing, Deferred)  # a 404: the base reading of a failed lookup
    assert (order.client_order_id, order.var, order.dlr_address) == (MESSAGE_ID, "Alice", None)
