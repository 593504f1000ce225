"""Provider type ``sinch``: config, HMAC and Basic verification, parsing, end to end.

Signatures are made with the official ``sinch`` SDK 2.3 (``compute_signed_data``,
``calculate_sinch_event_signature``) and the builder's requests are checked with the
SDK's own validator (``SmsSinchEvent.validate_authentication_header``). Payloads are the
ones the SDK's end-to-end tests and the SMS API docs show.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import write_config
from pydantic import ValidationError
from sinch.domains.authentication.sinch_events.v1.authentication_validation import (
    calculate_sinch_event_signature,
    compute_signed_data,
)
from sinch.domains.sms.sinch_events.v1.sms_sinch_event import SmsSinchEvent

from receiver.config import load
from receiver.core.reports import Outcome, Report, derived_event_id
from receiver.core.signatures import sinch as sinch_signature
from receiver.core.signatures.basic_auth import header as basic_header
from receiver.core.status import Status
from receiver.errors import ConfigError, PayloadInvalid, SignatureError
from receiver.providers import PROVIDER_TYPES
from receiver.providers.base import InboundRequest
from receiver.providers.sinch import (
    STATUS_MAP,
    SinchConfig,
    SinchProvider,
    provider_message_id,
)
from receiver.providers.standard import StandardConfig
from receiver.testing.sinch import (
    sinch_batch_report,
    sinch_recipient_report,
    sinch_request,
    sinch_status,
)

SECRET = "KayakingTheSwell"  # the SDK's own e2e test secret
NEW_SECRET = "rotated-0c9e4f7a1b2d"
CREDENTIALS = "sinch-dlr:7Rk2pQv9ZmW4"
NONCE = "01JHFFHWYY7HSS4FWTMDTQEK8V"
SIGNED_AT = 1795428000  # 2026-11-23T10:00:00Z, the timestamp header
RECEIVED_AT = datetime(2026, 11, 23, 10, 0, 1, tzinfo=UTC)

# The SDK's e2e fixtures (tests/e2e/sms/features/steps/webhooks.steps.py).
DELIVERED = {
    "at": "2024-06-06T08:17:19.210Z",
    "batch_id": "01W4FFL35P4NC4K35SMSBATCH9",
    "client_reference": "client-ref",
    "code": 0,
    "operator_status_at": "2024-06-06T08:17:00Z",
    "recipient": "12017777777",
    "status": "Delivered",
    "type": "recipient_delivery_report_sms",
}
ABORTED = {
    "at": "2024-06-06T08:17:15.603Z",
    "batch_id": "01W4FFL35P4NC4K35SMSBATCH9",
    "client_reference": "client-ref",
    "code": 412,
    "recipient": "12010000000",
    "status": "Aborted",
    "type": "recipient_delivery_report_sms",
}
FULL_BATCH = {
    "batch_id": "01W4FFL35P4NC4K35SMSBATCH8",
    "client_reference": "client-ref",
    "statuses": [
        {"code": 0, "count": 2, "recipients": ["12017777777", "33612345678"], "status": "Delivered"}
    ],
    "total_message_count": 2,
    "type": "delivery_report_sms",
}
# The SMS API tutorials' recipient report (Node SDK "get for number").
DISPATCHED = {
    "at": "2024-06-07T14:03:26.536Z",
    "batch_id": "01J06CY78GZ2F74YZNNH2VBWR6",
    "code": 401,
    "recipient": "447700900123",
    "status": "Dispatched",
    "type": "recipient_delivery_report_sms",
    "applied_originator": "SINCH",
    "encoding": "GSM",
    "number_of_message_parts": 1,
    "operator": "23410",
}


def sdk_signature(secret: str, body: bytes, nonce: str, timestamp: str) -> str:
    """The official SDK's signature (it signs the body as text); for a body that is not
    UTF-8, which the SDK cannot decode, ours over the raw bytes."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return sinch_signature.signature(secret, body, nonce, timestamp)
    return calculate_sinch_event_signature(compute_signed_data(text, nonce, timestamp), secret)


def provider(auth: str = "hmac", **config: Any) -> SinchProvider:
    config.setdefault("secrets", [SECRET] if auth == "hmac" else [CREDENTIALS])
    return SinchProvider("sinch", SinchConfig(type="sinch", auth=auth, **config))


def request(
    payload: Any,
    *,
    secret: str = SECRET,
    nonce: str = NONCE,
    timestamp: int | str = SIGNED_AT,
    headers: dict[str, str] | None = None,
    received_at: datetime = RECEIVED_AT,
) -> InboundRequest:
    """A callback signed by the SDK's functions, as the HTTP edge hands it over."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signed = {
        "content-type": "application/json",
        "x-sinch-webhook-signature": sdk_signature(secret, body, nonce, str(timestamp)),
        "x-sinch-webhook-signature-nonce": nonce,
        "x-sinch-webhook-signature-timestamp": str(timestamp),
        "x-sinch-webhook-signature-algorithm": "HmacSHA256",
    }
    return InboundRequest(
        method="POST",
        url="https://dlr.example.com/webhooks/sinch",
        headers={**signed, **(headers or {})},
        query_string=b"",
        body=body,
        media_type="application/json",
        received_at=received_at,
    )


def without(req: InboundRequest, *names: str) -> InboundRequest:
    return dataclasses.replace(
        req, headers={k: v for k, v in req.headers.items() if k not in names}
    )


def with_headers(req: InboundRequest, **headers: str) -> InboundRequest:
    extra = {k.replace("_", "-"): v for k, v in headers.items()}
    return dataclasses.replace(req, headers={**req.headers, **extra})


def rejected(p: SinchProvider, req: InboundRequest, now: float = SIGNED_AT) -> str:
    with pytest.raises(SignatureError) as info:
        p.verify(req, now)
    assert info.value.status == 401
    return info.value.code


# --- the class and its config ---------------------------------------------------------------


def test_registered_by_discovery() -> None:
    assert PROVIDER_TYPES["sinch"] is SinchProvider
    assert SinchProvider.config_model is SinchConfig
    assert frozenset({"application/json"}) == SinchProvider.media_types
    assert frozenset({"POST"}) == SinchProvider.methods


@pytest.mark.parametrize(
    ("auth", "secrets"),
    [("hmac", [SECRET]), ("hmac", [SECRET, NEW_SECRET]), ("basic", [CREDENTIALS])],
)
def test_config_accepts(auth: str, secrets: list[str]) -> None:
    config = SinchConfig.model_validate({"type": "sinch", "auth": auth, "secrets": secrets})
    assert config.auth == auth
    assert config.secrets == secrets
    assert config.tolerance_seconds == 300


def test_config_auth_is_required() -> None:
    with pytest.raises(ValidationError) as info:
        SinchConfig.model_validate({"type": "sinch", "secrets": [SECRET]})
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("auth",), "missing")]


@pytest.mark.parametrize("auth", ["HMAC", "oauth", "none", ""])
def test_config_auth_values(auth: str) -> None:
    with pytest.raises(ValidationError) as info:
        SinchConfig.model_validate({"type": "sinch", "auth": auth, "secrets": [SECRET]})
    assert info.value.errors()[0]["loc"] == ("auth",)


@pytest.mark.parametrize(
    ("auth", "secrets", "match"),
    [
        pytest.param("basic", ["no-colon"], r"secrets\[0\]: must be 'user:password'", id="bare"),
        pytest.param("basic", [CREDENTIALS, ":pw"], r"secrets\[1\]", id="empty-user"),
        pytest.param("basic", ["user:"], r"secrets\[0\]", id="empty-password"),
        pytest.param("hmac", [SECRET, ""], r"secrets\[1\]: must not be empty", id="hmac-empty"),
        pytest.param("hmac", ["   "], r"secrets\[0\]", id="hmac-blank"),
        pytest.param("hmac", [], "at least one secret", id="no-secrets"),
    ],
)
def test_config_secrets_must_fit_auth(auth: str, secrets: list[str], match: str) -> None:
    with pytest.raises(ValidationError, match=match) as info:
        SinchConfig.model_validate({"type": "sinch", "auth": auth, "secrets": secrets})
    assert "7Rk2pQv9ZmW4" not in str(info.value)  # never echo a secret


@pytest.mark.parametrize(
    "extra",
    [{"secret": SECRET}, {"signing_secret": SECRET}, {"project_id": "abc"}],
    ids=["secret-singular", "signing-secret", "unknown"],
)
def test_config_unknown_key(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        SinchConfig.model_validate({"type": "sinch", "auth": "hmac", "secrets": [SECRET], **extra})
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [
        ((next(iter(extra)),), "extra_forbidden")
    ]


@pytest.mark.parametrize("type_", ["standard", "Sinch", ""])
def test_config_wrong_type(type_: str) -> None:
    with pytest.raises(ValidationError):
        SinchConfig.model_validate({"type": type_, "auth": "hmac", "secrets": [SECRET]})


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        pytest.param(
            {"secrets": [CREDENTIALS, "bare"]}, "secrets[1]", "'user:password'", id="basic"
        ),
        pytest.param(
            {"auth": "hmac", "secrets": [SECRET, ""]}, "secrets[1]", "must not be empty", id="hmac"
        ),
        pytest.param({"auth": None, "secrets": [SECRET]}, "auth", "is required", id="no-auth"),
        pytest.param({"auth": "digest"}, "auth", "'hmac' or 'basic'", id="bad-auth"),
    ],
)
def test_config_file_errors_name_the_key(
    tmp_path: Path, table: dict[str, Any], key: str, problem: str
) -> None:
    provider_table = {"type": "sinch", "auth": "basic", "secrets": [CREDENTIALS], **table}
    provider_table = {k: v for k, v in provider_table.items() if v is not None}
    path = write_config(tmp_path, providers={"sinch": provider_table})
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.key == f"providers.sinch.{key}"
    assert problem in info.value.problem
    assert "7Rk2pQv9ZmW4" not in str(info.value)


def test_config_file_builds_the_provider(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, providers={"sms": {"type": "sinch", "auth": "hmac", "secrets": [SECRET]}}
    )
    built = load(path).providers["sms"]
    assert isinstance(built, SinchProvider)
    assert built.name == "sms"


def test_insecure_needs_no_secret_but_still_an_auth() -> None:
    p = provider(secrets=[], insecure_no_signature=True)
    assert p.verifies is False
    assert p.parse(request(DELIVERED))[0].status is Status.DELIVERED


def test_provider_refuses_another_config_type() -> None:
    with pytest.raises(TypeError, match="SinchConfig"):
        SinchProvider("sinch", StandardConfig(type="standard", secrets=["whsec_" + "A" * 32]))


# --- HMAC: signatures made by the official SDK ---------------------------------------------------


def test_sdk_signed_callback_verifies() -> None:
    provider().verify(request(DELIVERED), SIGNED_AT)


def test_our_signature_equals_the_sdk_signature() -> None:
    body = json.dumps(FULL_BATCH).encode()
    ours = sinch_signature.signature(SECRET, body, NONCE, SIGNED_AT)
    assert ours == sdk_signature(SECRET, body, NONCE, str(SIGNED_AT))


def test_non_ascii_body_verifies_over_raw_utf8_bytes() -> None:
    raw = json.dumps({**DELIVERED, "client_reference": "Bestätigung-🚀"}, ensure_ascii=False)
    assert not raw.isascii()
    provider().verify(request(raw.encode()), SIGNED_AT)


def test_every_secret_of_a_rotation_verifies() -> None:
    p = provider(secrets=[SECRET, NEW_SECRET])
    p.verify(request(DELIVERED, secret=NEW_SECRET), SIGNED_AT)
    p.verify(request(DELIVERED, secret=SECRET), SIGNED_AT)


def test_wrong_secret() -> None:
    assert rejected(provider(), request(DELIVERED, secret=NEW_SECRET)) == "SIGNATURE_INVALID"


def test_tampered_body() -> None:
    req = request(DELIVERED)
    tampered = dataclasses.replace(req, body=req.body.replace(b"Delivered", b"Failed"))
    assert rejected(provider(), tampered) == "SIGNATURE_INVALID"


def test_reencoded_body_does_not_verify() -> None:
    req = request(DELIVERED)
    compact = json.dumps(json.loads(req.body), separators=(",", ":")).encode()
    assert rejected(provider(), dataclasses.replace(req, body=compact)) == "SIGNATURE_INVALID"


@pytest.mark.parametrize(
    "header",
    ["x-sinch-webhook-signature-nonce", "x-sinch-webhook-signature-timestamp"],
)
def test_tampered_signed_header(header: str) -> None:
    req = request(DELIVERED)
    changed = str(SIGNED_AT + 1) if header.endswith("timestamp") else NONCE[:-1] + "W"
    assert rejected(provider(), with_headers(req, **{header: changed})) == "SIGNATURE_INVALID"


def test_url_is_not_signed() -> None:
    # The scheme covers body, nonce and timestamp only: the URL cannot be tampered with
    # in a way the signature would notice, so verification does not depend on it.
    req = dataclasses.replace(request(DELIVERED), url="https://elsewhere.example/x?y=1")
    provider().verify(req, SIGNED_AT)


def test_tolerance_is_the_configured_window_either_way() -> None:
    p = provider(tolerance_seconds=60)
    p.verify(request(DELIVERED), SIGNED_AT + 60)
    p.verify(request(DELIVERED), SIGNED_AT - 60)
    assert rejected(p, request(DELIVERED), SIGNED_AT + 61) == "TIMESTAMP_STALE"
    assert rejected(p, request(DELIVERED), SIGNED_AT - 61) == "TIMESTAMP_FUTURE"


def test_stale_timestamp_is_refused_even_with_a_valid_signature() -> None:
    assert rejected(provider(), request(DELIVERED), SIGNED_AT + 301) == "TIMESTAMP_STALE"


def test_future_timestamp() -> None:
    assert rejected(provider(), request(DELIVERED), SIGNED_AT - 301) == "TIMESTAMP_FUTURE"


@pytest.mark.parametrize(
    "header",
    [
        "x-sinch-webhook-signature",
        "x-sinch-webhook-signature-nonce",
        "x-sinch-webhook-signature-timestamp",
    ],
)
def test_missing_header(header: str) -> None:
    assert rejected(provider(), without(request(DELIVERED), header)) == "SIGNATURE_MISSING"


def test_empty_signature_header_counts_as_missing() -> None:
    req = with_headers(request(DELIVERED), **{"x-sinch-webhook-signature": ""})
    assert rejected(provider(), req) == "SIGNATURE_MISSING"


def test_basic_credentials_do_not_satisfy_hmac() -> None:
    req = without(
        request(DELIVERED),
        "x-sinch-webhook-signature",
        "x-sinch-webhook-signature-nonce",
        "x-sinch-webhook-signature-timestamp",
    )
    req = with_headers(req, authorization=basic_header(CREDENTIALS))
    assert rejected(provider(), req) == "SIGNATURE_MISSING"


def test_algorithm_header_is_optional() -> None:
    # The Python SDK ignores it; Sinch sends HmacSHA256, which is all we accept.
    provider().verify(without(request(DELIVERED), "x-sinch-webhook-signature-algorithm"), SIGNED_AT)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"x-sinch-webhook-signature-algorithm": "HmacSHA512"}, id="sha512"),
        pytest.param({"x-sinch-webhook-signature-algorithm": "hmacsha256"}, id="algo-case"),
        pytest.param({"x-sinch-webhook-signature": "not base64!"}, id="sig-not-b64"),
        pytest.param({"x-sinch-webhook-signature": "c2hvcnQ="}, id="sig-short"),
        pytest.param({"x-sinch-webhook-signature": "Ünïcode=="}, id="sig-non-ascii"),
        pytest.param({"x-sinch-webhook-signature-timestamp": "2026-11-23T09:20:00Z"}, id="ts-iso"),
        pytest.param({"x-sinch-webhook-signature-timestamp": "1795428000.5"}, id="ts-float"),
        pytest.param({"x-sinch-webhook-signature-timestamp": "-1795428000"}, id="ts-negative"),
        pytest.param({"x-sinch-webhook-signature-timestamp": "9" * 30}, id="ts-huge"),
        pytest.param({"x-sinch-webhook-signature-nonce": "a\x00b"}, id="nonce-control"),
        pytest.param({"x-sinch-webhook-signature-nonce": "n" * 256}, id="nonce-long"),
    ],
)
def test_malformed_header(headers: dict[str, str]) -> None:
    req = dataclasses.replace(request(DELIVERED), headers={**request(DELIVERED).headers, **headers})
    assert rejected(provider(), req) == "SIGNATURE_MALFORMED"


def test_error_never_contains_the_expected_signature() -> None:
    req = request(DELIVERED, secret=NEW_SECRET)
    expected = sinch_signature.signature(SECRET, req.body, NONCE, SIGNED_AT)
    with pytest.raises(SignatureError) as info:
        provider().verify(req, SIGNED_AT)
    assert expected not in info.value.detail
    assert SECRET not in info.value.detail


def test_signature_module_returns_the_verified_headers() -> None:
    req = request(DELIVERED)
    signed = sinch_signature.verify(
        req.body, req.headers, [SECRET], now=SIGNED_AT, tolerance_seconds=300
    )
    assert signed == sinch_signature.SignedHeaders(nonce=NONCE, timestamp=SIGNED_AT)


# --- Basic auth ------------------------------------------------------------------------------


def basic_request(credentials: str | None = CREDENTIALS) -> InboundRequest:
    req = without(
        request(DELIVERED),
        "x-sinch-webhook-signature",
        "x-sinch-webhook-signature-nonce",
        "x-sinch-webhook-signature-timestamp",
        "x-sinch-webhook-signature-algorithm",
    )
    return (
        req if credentials is None else with_headers(req, authorization=basic_header(credentials))
    )


def test_basic_accepts_configured_credentials() -> None:
    provider("basic").verify(basic_request(), SIGNED_AT)
    # no timestamp is signed: any clock is fine
    provider("basic").verify(basic_request(), SIGNED_AT + 10**6)


def test_basic_rotation() -> None:
    p = provider("basic", secrets=["old:pw-1", CREDENTIALS])
    p.verify(basic_request("old:pw-1"), SIGNED_AT)
    p.verify(basic_request(), SIGNED_AT)


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        ("sinch-dlr:wrong", "SIGNATURE_INVALID"),
        ("other:7Rk2pQv9ZmW4", "SIGNATURE_INVALID"),
        (None, "SIGNATURE_MISSING"),
    ],
)
def test_basic_refuses(credentials: str | None, code: str) -> None:
    assert rejected(provider("basic"), basic_request(credentials)) == code


def test_hmac_signature_does_not_satisfy_basic() -> None:
    assert rejected(provider("basic"), request(DELIVERED)) == "SIGNATURE_MISSING"


# --- the testing builder, checked by the SDK's validator --------------------------------------


def test_builder_signature_verifies_with_the_sdk_validator() -> None:
    built = sinch_request(sinch_recipient_report(**_fields(DELIVERED)), secret=SECRET)
    assert SmsSinchEvent(SECRET).validate_authentication_header(built.headers, built.body)
    assert not SmsSinchEvent(NEW_SECRET).validate_authentication_header(built.headers, built.body)
    assert built.path == "/webhooks/sinch"
    assert built.method == "POST"
    assert built.headers["x-sinch-webhook-signature-algorithm"] == "HmacSHA256"


def test_builder_request_verifies_and_parses_like_the_sdk() -> None:
    built = sinch_request(
        sinch_recipient_report(**_fields(DELIVERED)), secret=SECRET, provider="dlr", nonce=NONCE
    )
    assert built.path == "/webhooks/dlr"
    event = SmsSinchEvent(SECRET).parse_event(built.body, built.headers)
    assert event.batch_id == DELIVERED["batch_id"]
    assert event.at == datetime(2024, 6, 6, 8, 17, 19, 210000, tzinfo=UTC)
    req = dataclasses.replace(request(DELIVERED), headers=built.headers, body=built.body)
    now = int(built.headers["x-sinch-webhook-signature-timestamp"])
    provider().verify(req, now)
    assert provider().parse(req) == provider().parse(request(DELIVERED))


def test_builder_basic_credentials() -> None:
    built = sinch_request(FULL_BATCH, credentials=CREDENTIALS)
    assert built.headers["authorization"] == basic_header(CREDENTIALS)
    assert "x-sinch-webhook-signature" not in built.headers
    req = dataclasses.replace(basic_request(None), headers=built.headers, body=built.body)
    provider("basic").verify(req, SIGNED_AT)


def test_builder_batch_report_matches_the_sdk_model() -> None:
    payload = sinch_batch_report(
        batch_id="01W4FFL35P4NC4K35SMSBATCH8",
        statuses=[sinch_status(status="Delivered", code=0, recipients=["12017777777"])],
        client_reference="client-ref",
    )
    assert payload["total_message_count"] == 1
    event = SmsSinchEvent(SECRET).parse_event(json.dumps(payload))
    assert event.statuses[0].recipients == ["12017777777"]


@pytest.mark.parametrize("kwargs", [{}, {"secret": SECRET, "credentials": CREDENTIALS}])
def test_builder_needs_exactly_one_way_to_authenticate(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        sinch_request(DELIVERED, **kwargs)


def _fields(payload: dict[str, Any]) -> dict[str, Any]:
    def parse(stamp: str) -> datetime:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    fields = {
        k: payload[k] for k in ("batch_id", "recipient", "status", "code", "client_reference")
    }
    fields["at"] = parse(payload["at"])
    if "operator_status_at" in payload:
        fields["operator_status_at"] = parse(payload["operator_status_at"])
    return fields


# --- parse -----------------------------------------------------------------------------------


def test_documented_payloads_are_valid_for_the_sdk() -> None:
    for payload in (DELIVERED, ABORTED, FULL_BATCH, DISPATCHED):
        assert SmsSinchEvent(SECRET).parse_event(json.dumps(payload)) is not None


def test_parse_recipient_report() -> None:
    assert provider().parse(request(DELIVERED)) == [
        Report(
            event_id=derived_event_id(
                "01W4FFL35P4NC4K35SMSBATCH9",
                "+12017777777",
                "Delivered",
                "0",
                "2024-06-06T08:17:19.210000+00:00",
            ),
            provider_message_id="01W4FFL35P4NC4K35SMSBATCH9:+12017777777",
            status=Status.DELIVERED,
            provider_status="Delivered",
            occurred_at=datetime(2024, 6, 6, 8, 17, 19, 210000, tzinfo=UTC),
            to="+12017777777",
            error_code="0",
            error_message=None,
            client_reference="client-ref",
        )
    ]


def test_parse_failure_keeps_code_and_names_it() -> None:
    (report,) = provider().parse(request(ABORTED))
    assert report.status is Status.FAILED
    assert report.provider_status == "Aborted"
    assert report.error_code == "412"
    assert report.error_message == "Unprovisioned region"
    assert report.provider_message_id == "01W4FFL35P4NC4K35SMSBATCH9:+12010000000"


def test_parse_ignores_fields_it_does_not_use() -> None:
    (report,) = provider().parse(request(DISPATCHED))
    assert report.status is Status.SENT
    assert report.error_code == "401"
    assert report.error_message is None
    assert report.to == "+447700900123"


def test_an_undocumented_smpp_code_is_kept_without_a_message() -> None:
    (report,) = provider().parse(request({**ABORTED, "status": "Failed", "code": 11}))
    assert (report.status, report.error_code, report.error_message) == (
        Status.UNDELIVERED,
        "11",
        None,
    )


def test_recipient_with_plus_is_the_same_message_and_event() -> None:
    bare = provider().parse(request(DELIVERED))
    plus = provider().parse(request({**DELIVERED, "recipient": "+12017777777"}))
    assert plus == bare


def test_provider_message_id_helper() -> None:
    assert provider_message_id("B1", "12017777777") == "B1:+12017777777"
    assert provider_message_id("B1", "+12017777777") == "B1:+12017777777"
    assert provider_message_id("B1", "SHORT") == "B1:SHORT"


@pytest.mark.parametrize("recipient", ["SINCH", "0123", "+0612345678", "12345"])
def test_non_e164_recipient_is_kept_without_to(recipient: str) -> None:
    (report,) = provider().parse(request({**DELIVERED, "recipient": recipient}))
    assert report.to is None
    assert report.provider_message_id == f"01W4FFL35P4NC4K35SMSBATCH9:{recipient}"


def test_parse_full_batch_report_gives_one_report_per_recipient() -> None:
    reports = provider().parse(request(FULL_BATCH))
    assert [(r.provider_message_id, r.to, r.status, r.error_code) for r in reports] == [
        ("01W4FFL35P4NC4K35SMSBATCH8:+12017777777", "+12017777777", Status.DELIVERED, "0"),
        ("01W4FFL35P4NC4K35SMSBATCH8:+33612345678", "+33612345678", Status.DELIVERED, "0"),
    ]
    assert {r.occurred_at for r in reports} == {RECEIVED_AT}
    assert len({r.event_id for r in reports}) == 2


def test_batch_report_with_several_status_groups() -> None:
    payload = sinch_batch_report(
        batch_id="01HZX4M0Q1ZP2K3N4R5S6T7V8W",
        statuses=[
            sinch_status(status="Delivered", code=0, recipients=["46701234567"]),
            sinch_status(status="Failed", code=404, recipients=["46709876543", "46700000001"]),
            sinch_status(status="Queued", code=400, count=3),  # no recipients listed
        ],
    )
    reports = provider().parse(request(payload))
    assert [(r.to, r.status, r.error_message) for r in reports] == [
        ("+46701234567", Status.DELIVERED, None),
        ("+46709876543", Status.UNDELIVERED, "Temporary delivery failure"),
        ("+46700000001", Status.UNDELIVERED, "Temporary delivery failure"),
    ]


def test_summary_without_recipients_gives_no_report() -> None:
    summary = {
        "type": "delivery_report_sms",
        "batch_id": "01FC66621XXXXX119Z8PMV1QPQ",
        "statuses": [{"code": 0, "status": "Delivered", "count": 1}],
        "total_message_count": 1,
    }
    assert provider().parse(request(summary)) == []
    assert provider().parse(request({**summary, "statuses": []})) == []


@pytest.mark.parametrize("kind", ["recipient_delivery_report_mms", "delivery_report_mms"])
def test_mms_variants_are_accepted(kind: str) -> None:
    payload = {**(DELIVERED if kind.startswith("recipient") else FULL_BATCH), "type": kind}
    assert provider().parse(request(payload))[0].status is Status.DELIVERED


# --- event ids and redelivery --------------------------------------------------------------


def test_redelivery_gets_the_same_event_ids() -> None:
    later = RECEIVED_AT + timedelta(hours=3)
    for payload in (DELIVERED, ABORTED, FULL_BATCH):
        first = provider().parse(request(payload))
        again = provider().parse(request(payload, nonce="other-nonce", received_at=later))
        assert [r.event_id for r in again] == [r.event_id for r in first]


def test_equal_instants_written_differently_are_one_event() -> None:
    first = provider().parse(request(DELIVERED))[0].event_id
    for stamp in ("2024-06-06T08:17:19.21Z", "2024-06-06T10:17:19.210+02:00"):
        assert provider().parse(request({**DELIVERED, "at": stamp}))[0].event_id == first


@pytest.mark.parametrize(
    "change",
    [
        {"status": "Failed"},
        {"code": 404},
        {"at": "2024-06-06T08:17:19.211Z"},
        {"recipient": "12017777778"},
        {"batch_id": "01W4FFL35P4NC4K35SMSBATCHA"},
    ],
    ids=["status", "code", "at", "recipient", "batch"],
)
def test_each_identifying_field_changes_the_event_id(change: dict[str, Any]) -> None:
    first = provider().parse(request(DELIVERED))[0].event_id
    assert provider().parse(request({**DELIVERED, **change}))[0].event_id != first


def test_summary_report_and_recipient_report_are_different_events() -> None:
    summary = {
        **FULL_BATCH,
        "batch_id": DELIVERED["batch_id"],
        "statuses": [{"code": 0, "count": 1, "recipients": ["12017777777"], "status": "Delivered"}],
    }
    (from_summary,) = provider().parse(request(summary))
    (from_recipient,) = provider().parse(request(DELIVERED))
    assert from_summary.provider_message_id == from_recipient.provider_message_id
    assert from_summary.event_id != from_recipient.event_id


# --- status mapping --------------------------------------------------------------------------

MAPPING = [
    ("Queued", Status.QUEUED),
    ("Dispatched", Status.SENT),
    ("Delivered", Status.DELIVERED),
    ("Failed", Status.UNDELIVERED),
    ("Expired", Status.EXPIRED),
    ("Rejected", Status.REJECTED),
    ("Aborted", Status.FAILED),
    ("Cancelled", Status.FAILED),
    ("Deleted", Status.FAILED),
    ("Unknown", Status.UNKNOWN),
]


def test_mapping_table_is_exactly_the_documented_words() -> None:
    assert dict(MAPPING) == STATUS_MAP


@pytest.mark.parametrize(("word", "status"), MAPPING)
def test_status_mapping_row(word: str, status: Status) -> None:
    (report,) = provider().parse(request({**DELIVERED, "status": word}))
    assert report.status is status
    assert report.provider_status == word
    group = {"code": 0, "count": 1, "recipients": ["12017777777"], "status": word}
    (from_batch,) = provider().parse(request({**FULL_BATCH, "statuses": [group]}))
    assert from_batch.status is status


@pytest.mark.parametrize(("word", "status"), MAPPING)
def test_python_sdk_upper_case_words_map_too(word: str, status: Status) -> None:
    (report,) = provider().parse(request({**DELIVERED, "status": word.upper()}))
    assert report.status is status
    assert report.provider_status == word.upper()  # kept as sent


@pytest.mark.parametrize("word", ["Pending", "DELIVRD", "Canceled", "delivered_to_handset", "?"])
def test_unmapped_word_is_kept_with_status_none(word: str) -> None:
    (report,) = provider().parse(request({**DELIVERED, "status": word}))
    assert report.status is None
    assert report.provider_status == word
    assert report.provider_message_id == "01W4FFL35P4NC4K35SMSBATCH9:+12017777777"


# --- timestamps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-06-06T08:17:19.210Z",
        "2024-06-06T08:17:19.210+00:00",
        "2024-06-06T10:17:19.210+02:00",
        "2024-06-06T03:17:19.210-05:00",
        "2024-06-06T08:17:19.210",  # no offset: UTC, as the SDK reads it
    ],
)
def test_at_becomes_utc_occurred_at(stamp: str) -> None:
    (report,) = provider().parse(request({**DELIVERED, "at": stamp}))
    assert report.occurred_at == datetime(2024, 6, 6, 8, 17, 19, 210000, tzinfo=UTC)
    assert report.occurred_at.utcoffset() == timedelta(0)


def test_operator_status_at_is_not_the_occurrence_time() -> None:
    (report,) = provider().parse(request(DELIVERED))
    assert report.occurred_at == datetime(2024, 6, 6, 8, 17, 19, 210000, tzinfo=UTC)


# --- invalid payloads ------------------------------------------------------------------------

INVALID = [
    pytest.param(b"{not json", "body", "not valid JSON", id="invalid-json"),
    pytest.param(b"", "body", "not valid JSON", id="empty"),
    pytest.param(b"\xff\xfe{}", "body", "not valid JSON", id="not-utf8"),
    pytest.param([DELIVERED], "body", "JSON object", id="array"),
    pytest.param("Delivered", "body", "JSON object", id="string"),
    pytest.param(
        {k: v for k, v in DELIVERED.items() if k != "type"}, "type", "required", id="no-type"
    ),
    pytest.param(
        {**DELIVERED, "type": "mo_text"}, "type", "delivery report type", id="inbound-sms"
    ),
    pytest.param({**DELIVERED, "type": 3}, "type", "delivery report type", id="type-number"),
    pytest.param({**DELIVERED, "batch_id": None}, "batch_id", "string", id="batch-null"),
    pytest.param({**DELIVERED, "batch_id": ""}, "batch_id", "at least 1", id="batch-empty"),
    pytest.param({**DELIVERED, "batch_id": "x" * 129}, "batch_id", "at most 128", id="batch-long"),
    pytest.param(
        {k: v for k, v in DELIVERED.items() if k != "recipient"},
        "recipient",
        "required",
        id="no-rcpt",
    ),
    pytest.param({**DELIVERED, "recipient": 12017777777}, "recipient", "string", id="rcpt-number"),
    pytest.param(
        {k: v for k, v in DELIVERED.items() if k != "code"}, "code", "required", id="no-code"
    ),
    pytest.param({**DELIVERED, "code": "0"}, "code", "integer", id="code-string"),
    pytest.param({**DELIVERED, "code": True}, "code", "integer", id="code-bool"),
    pytest.param({**DELIVERED, "code": 4.5}, "code", "integer", id="code-float"),
    pytest.param(
        {k: v for k, v in DELIVERED.items() if k != "status"}, "status", "required", id="no-status"
    ),
    pytest.param({**DELIVERED, "status": ""}, "status", "at least 1", id="status-empty"),
    pytest.param({**DELIVERED, "status": 2}, "status", "string", id="status-number"),
    pytest.param({k: v for k, v in DELIVERED.items() if k != "at"}, "at", "required", id="no-at"),
    pytest.param({**DELIVERED, "at": 1717661839}, "at", "ISO-8601", id="at-number"),
    pytest.param({**DELIVERED, "at": "yesterday"}, "at", "datetime", id="at-garbage"),
    pytest.param(
        {**DELIVERED, "operator_status_at": "soon"}, "operator_status_at", "datetime", id="op-at"
    ),
    pytest.param(
        {k: v for k, v in FULL_BATCH.items() if k != "statuses"}, "statuses", "required", id="no-st"
    ),
    pytest.param({**FULL_BATCH, "statuses": {}}, "statuses", "list", id="statuses-object"),
    pytest.param(
        {**FULL_BATCH, "statuses": [{"status": "Delivered", "recipients": []}]},
        "statuses[0].code",
        "required",
        id="group-no-code",
    ),
    pytest.param(
        {
            **FULL_BATCH,
            "statuses": [
                FULL_BATCH["statuses"][0],
                {"code": 0, "status": "Delivered", "recipients": ["4670", 4670]},
            ],
        },
        "statuses[1].recipients[1]",
        "string",
        id="group-bad-recipient",
    ),
    pytest.param(
        {**FULL_BATCH, "statuses": [{"code": 0, "status": "Delivered", "recipients": "4670"}]},
        "statuses[0].recipients",
        "list",
        id="recipients-string",
    ),
]


@pytest.mark.parametrize(("payload", "field", "says"), INVALID)
def test_invalid_payload_names_the_field(payload: Any, field: str, says: str) -> None:
    with pytest.raises(PayloadInvalid) as info:
        provider().parse(request(payload))
    assert info.value.status == 400
    assert info.value.field == field
    assert says in info.value.detail
    assert info.value.detail.startswith(f"{field}: ")


# --- answer ----------------------------------------------------------------------------------


def test_answer_is_the_json_counts() -> None:
    answer = provider().answer(Outcome(received=2, applied=1, duplicates=1))
    assert (answer.status, answer.media_type) == (200, "application/json")
    assert json.loads(answer.body) == {
        "received": 2,
        "applied": 1,
        "duplicates": 1,
        "superseded": 0,
    }


# --- end to end through `receiver serve` -----------------------------------------------------


def test_end_to_end_hmac(server_factory: Any) -> None:
    server = server_factory(
        providers={"sinch": {"type": "sinch", "auth": "hmac", "secrets": [NEW_SECRET, SECRET]}}
    )
    sent_at = datetime.now(UTC) - timedelta(seconds=5)
    fields = {"batch_id": "01JDZ7Q8B0C1D2E3F4G5H6J7K8", "recipient": "639171234567"}
    dispatched = sinch_recipient_report(**fields, status="Dispatched", code=401, at=sent_at)
    delivered = sinch_recipient_report(
        **fields, status="Delivered", code=0, at=sent_at + timedelta(seconds=3)
    )
    first = server.post(sinch_request(delivered, secret=SECRET))
    assert first.status_code == 200
    assert first.json() == {"received": 1, "applied": 1, "duplicates": 0, "superseded": 0}
    # Sinch retries with a fresh signature: the report is recognised.
    again = server.post(sinch_request(delivered, secret=NEW_SECRET))
    assert again.json() == {"received": 1, "applied": 0, "duplicates": 1, "superseded": 0}
    late = server.post(sinch_request(dispatched, secret=SECRET))
    assert late.json() == {"received": 1, "applied": 0, "duplicates": 0, "superseded": 1}

    forged = server.post(sinch_request(delivered, secret="not-the-secret"))
    assert forged.status_code == 401
    assert forged.headers["content-type"].startswith("application/problem+json")
    assert forged.json()["code"] == "SIGNATURE_INVALID"
    stale = server.post(sinch_request(delivered, secret=SECRET, timestamp=int(time.time()) - 3600))
    assert (stale.status_code, stale.json()["code"]) == (401, "TIMESTAMP_STALE")
    inbound = server.post(sinch_request({"type": "mo_text", "id": "x"}, secret=SECRET))
    assert (inbound.status_code, inbound.json()["code"]) == (400, "PAYLOAD_INVALID")

    with server.api(server.staff_token("ops", "sender")) as api:
        (message,) = api.get(
            "/v1/messages",
            params={
                "provider": "sinch",
                "provider_message_id": "01JDZ7Q8B0C1D2E3F4G5H6J7K8:+639171234567",
            },
        ).json()["items"]
        events = api.get(f"/v1/messages/{message['id']}/events").json()["items"]
    assert (message["status"], message["final"], message["to"], message["error_code"]) == (
        "delivered",
        True,
        "+639171234567",
        "0",
    )
    assert [(e["provider_status"], e["outcome"], e["deliveries"]) for e in events] == [
        ("Dispatched", "superseded", 1),
        ("Delivered", "applied", 2),
    ]


def test_end_to_end_basic_batch_report(server_factory: Any) -> None:
    server = server_factory(
        providers={"acme-sinch": {"type": "sinch", "auth": "basic", "secrets": [CREDENTIALS]}}
    )
    built = sinch_request(FULL_BATCH, credentials=CREDENTIALS, provider="acme-sinch")
    answer = server.post(built)
    assert answer.status_code == 200
    assert answer.json() == {"received": 2, "applied": 2, "duplicates": 0, "superseded": 0}
    assert server.post(built).json()["duplicates"] == 2
    wrong = sinch_request(FULL_BATCH, credentials="sinch-dlr:guess", provider="acme-sinch")
    assert server.post(wrong).status_code == 401
    summary = sinch_request(
        {**FULL_BATCH, "statuses": [{"code": 0, "status": "Delivered", "count": 2}]},
        credentials=CREDENTIALS,
        provider="acme-sinch",
    )
    assert server.post(summary).json() == {
        "received": 0,
        "applied": 0,
        "duplicates": 0,
        "superseded": 0,
    }
    with server.api(server.staff_token("ops")) as api:
        items = api.get("/v1/messages", params={"provider": "acme-sinch"}).json()["items"]
    assert sorted((m["provider_message_id"], m["status"]) for m in items) == [
        ("01W4FFL35P4NC4K35SMSBATCH8:+12017777777", "delivered"),
        ("01W4FFL35P4NC4K35SMSBATCH8:+33612345678", "delivered"),
    ]


def test_the_client_reference_is_kept_on_every_report() -> None:
    [report] = provider().parse(request(DELIVERED))
    assert report.client_reference == "client-ref"
    summary = {
        "type": "delivery_report_sms",
        "batch_id": "01W4FFL35P4NC4K35SMSBATCH9",
        "client_reference": "order-77",
        "statuses": [{"code": 0, "status": "Delivered", "recipients": ["12017777777"]}],
    }
    assert [r.client_reference for r in provider().parse(request(summary))] == ["order-77"]


def test_the_network_comes_from_the_operator_of_a_recipient_report() -> None:
    (report,) = provider().parse(request({**DELIVERED, "operator": "51502"}))
    assert report.network == "515-02"
    (report,) = provider().parse(request(DELIVERED))
    assert report.network is None
