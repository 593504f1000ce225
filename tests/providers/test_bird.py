"""Provider type ``bird`` (MessageBird SMS status reports, ``MessageBird-Signature-JWT``).

Signatures are checked three ways: tokens our builder makes are accepted by the official
``messagebird`` SDK's ``RequestValidator`` (which reads the real clock, so those tokens
are made "now"); tokens minted with PyJWT exercise every negative case at a fixed clock;
and the same bad tokens are shown to be refused by the SDK too, so we agree with it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from messagebird.error import ValidationError as SdkValidationError
from messagebird.request_validator import RequestValidator
from pydantic import ValidationError

from receiver.core.reports import Report, derived_event_id
from receiver.core.signatures import messagebird_jwt
from receiver.core.status import Status
from receiver.errors import PayloadInvalid, SignatureError
from receiver.providers import PROVIDER_TYPES
from receiver.providers.base import FORM, InboundRequest
from receiver.providers.bird import STATUS_MAP, BirdConfig, BirdProvider, e164
from receiver.testing.base import SignedRequest
from receiver.testing.bird import bird_report, bird_request

# The signing key from the messagebird SDK's own tests (32 characters), and a 64-character
# one for HS384/HS512 (PyJWT, inside the SDK, warns about HMAC keys shorter than the digest).
KEY = "PlLrKaqvZNRR5zAjm42ZT6q1SQxgbbGd"
LONG_KEY = "36efdd1aace2e26cd490f0d951138253bef2f7c6d34d18981da781555cc4cebb"
OTHER_KEY = "q8ZtW3nB7vLk2RmX9cYp4JhS6dFg1AeU"
BASE = "https://dlr.example.com"
NOW = 1795428000  # 2026-11-23T10:00:00Z
RECEIVED_AT = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)

# The documented example report (Bird "I am missing my delivery reports").
DOC_REPORT = {
    "id": "e8077d803532c0b5937c639b60216938",
    "reference": "YouReference123",
    "recipient": "31612345678",
    "status": "delivered",
    "statusDatetime": "2016-05-03T08:58:10+00:00",
}
# A failed report with the metadata current accounts receive.
FAILED_REPORT = {
    "id": "eef0ab57a9e049be946f3821568c2b2e",
    "reference": "order-8821",
    "recipient": "447700900123",
    "status": "delivery_failed",
    "statusDatetime": "2026-11-23T09:58:12+01:00",
    "statusReason": "unknown subscriber",
    "statusErrorCode": "1",
    "price[amount]": "0.0700",
    "price[currency]": "EUR",
    "mccmnc": "23410",
    "ported": "0",
    "messageLength": "41",
    "messagePartCount": "1",
}


def provider(**config: Any) -> BirdProvider:
    config.setdefault("secrets", [KEY])
    return BirdProvider("bird", BirdConfig(type="bird", **config))


def inbound(signed: SignedRequest, *, base: str = BASE) -> InboundRequest:
    """What the HTTP edge hands the provider for a builder-made request."""
    query = signed.path.partition("?")[2]
    headers = {k.lower(): v for k, v in signed.headers.items()}
    return InboundRequest(
        method=signed.method,
        url=base + signed.path,
        headers=headers,
        query_string=query.encode(),
        body=signed.body,
        media_type=headers.get("content-type", ""),
        received_at=RECEIVED_AT,
    )


def signed(
    report: dict[str, str] | None = None, *, key: str = KEY, now: float = NOW, **kwargs: Any
) -> InboundRequest:
    request = bird_request(
        signing_key=key,
        report=DOC_REPORT if report is None else report,
        public_base_url=BASE,
        provider="bird",
        now=now,
        **kwargs,
    )
    return inbound(request)


def with_token(request: InboundRequest, token: str) -> InboundRequest:
    return dataclasses.replace(
        request, headers={**request.headers, "messagebird-signature-jwt": token}
    )


def mint(
    request: InboundRequest,
    *,
    key: str | None = KEY,
    algorithm: str = "HS256",
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    """A token made with PyJWT alone (not our signer), claims overridable."""
    payload: dict[str, Any] = {
        "iss": "MessageBird",
        "nbf": NOW,
        "exp": NOW + 60,
        "jti": "5f02f522-6030-46c8-b5a3-01246478d8bc",
        "url_hash": hashlib.sha256(request.url.encode()).hexdigest(),
    }
    if request.body:
        payload["payload_hash"] = hashlib.sha256(request.body).hexdigest()
    payload.update(claims)
    for name in drop:
        payload.pop(name, None)
    return jwt.encode(payload, key, algorithm=algorithm)


def refused(request: InboundRequest, *, now: float = NOW, **config: Any) -> SignatureError:
    with pytest.raises(SignatureError) as info:
        provider(**config).verify(request, now)
    assert info.value.status == 401
    return info.value


# --- the class and its config ---------------------------------------------------------------


def test_registered_as_bird() -> None:
    assert PROVIDER_TYPES["bird"] is BirdProvider
    assert BirdProvider.config_model is BirdConfig
    assert frozenset({"GET", "POST"}) == BirdProvider.methods
    assert frozenset({FORM}) == BirdProvider.media_types


def test_config_defaults() -> None:
    config = BirdConfig(type="bird", secrets=[KEY])
    assert config.tolerance_seconds == 300
    assert config.insecure_no_signature is False
    assert provider().verifies is True


def test_config_from_toml_like_mapping_with_rotation() -> None:
    config = BirdConfig.model_validate(
        {"type": "bird", "secrets": [KEY, OTHER_KEY], "tolerance_seconds": 30}
    )
    assert config.secrets == [KEY, OTHER_KEY]
    assert config.tolerance_seconds == 30


def test_secrets_required_unless_insecure() -> None:
    with pytest.raises(ValidationError, match="at least one secret"):
        BirdConfig(type="bird")
    p = provider(secrets=[], insecure_no_signature=True)
    assert p.verifies is False
    assert p.parse(signed())[0].provider_message_id == DOC_REPORT["id"]


def _public_key_pem() -> str:
    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.mark.parametrize(
    ("secrets", "match"),
    [
        pytest.param([""], r"secrets\[0\]: must not be empty", id="empty"),
        pytest.param([KEY, " " + KEY], r"secrets\[1\]: must not start or end", id="whitespace"),
        pytest.param([KEY, KEY + "\n"], r"secrets\[1\]: must not start or end", id="newline"),
        pytest.param([_public_key_pem().strip()], r"secrets\[0\]: .*asymmetric", id="pem-key"),
    ],
)
def test_bad_signing_key_rejected(secrets: list[str], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        BirdConfig(type="bird", secrets=secrets)


@pytest.mark.parametrize(
    "extra",
    [{"signing_key": KEY}, {"secret": KEY}, {"tolerance": 60}, {"account_sid": "AC1"}],
    ids=["signing_key", "secret-singular", "tolerance-typo", "other-providers-key"],
)
def test_unknown_key_rejected(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        BirdConfig(type="bird", secrets=[KEY], **extra)
    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]
    assert info.value.errors()[0]["loc"] == (next(iter(extra)),)


@pytest.mark.parametrize("type_", ["messagebird", "Bird", "standard", ""])
def test_wrong_type_rejected(type_: str) -> None:
    with pytest.raises(ValidationError):
        BirdConfig(type=type_, secrets=[KEY])  # type: ignore[arg-type]


# --- interoperability with the official SDK -------------------------------------------------


@pytest.mark.parametrize(
    ("method", "algorithm", "key"),
    [
        ("GET", "HS256", KEY),
        ("POST", "HS256", KEY),
        ("GET", "HS384", LONG_KEY),
        ("GET", "HS512", LONG_KEY),
        ("POST", "HS512", LONG_KEY),
    ],
)
def test_builder_requests_pass_the_official_sdk_validator(
    method: str, algorithm: str, key: str
) -> None:
    request = bird_request(
        signing_key=key,
        report=FAILED_REPORT,
        public_base_url=BASE,
        provider="bird",
        method=method,
        algorithm=algorithm,
    )
    url = BASE + request.path
    claims = RequestValidator(key).validate_signature(
        request.headers["MessageBird-Signature-JWT"], url, request.body
    )
    assert claims["iss"] == "MessageBird"
    assert claims["exp"] - claims["nbf"] == 60
    assert claims["url_hash"] == hashlib.sha256(url.encode()).hexdigest()
    assert ("payload_hash" in claims) is (method == "POST")
    # ...and by ours, at the same real clock.
    provider(secrets=[key]).verify(inbound(request), time.time())


def test_sdk_and_we_refuse_the_builder_token_for_another_url() -> None:
    request = bird_request(signing_key=KEY, report=DOC_REPORT, public_base_url=BASE)
    other = "https://attacker.example.com" + request.path
    with pytest.raises(SdkValidationError, match="url_hash"):
        RequestValidator(KEY).validate_signature(
            request.headers["MessageBird-Signature-JWT"], other, b""
        )
    assert refused(inbound(request, base="https://attacker.example.com"), now=time.time()).code == (
        "SIGNATURE_INVALID"
    )


SDK_AGREES = [
    pytest.param({"url_hash": hashlib.sha256(b"https://dlr.example.com/").hexdigest()},
                 "url_hash is invalid", "SIGNATURE_INVALID", id="wrong-url-hash"),
    pytest.param({"payload_hash": hashlib.sha256(b"other").hexdigest()},
                 "payload_hash is invalid", "SIGNATURE_INVALID", id="wrong-payload-hash"),
    pytest.param({"nbf": 1, "exp": 61}, "expired", "TIMESTAMP_STALE", id="expired"),
    pytest.param({"nbf": 4102444800, "exp": 4102444860}, "not yet valid", "TIMESTAMP_FUTURE",
                 id="not-yet-valid"),
    pytest.param({"key": OTHER_KEY}, "Signature verification failed", "SIGNATURE_INVALID",
                 id="wrong-key"),
    pytest.param({"iss": "NotMessageBird"}, "issuer", "SIGNATURE_INVALID", id="wrong-issuer"),
]  # fmt: skip


@pytest.mark.parametrize(("override", "sdk_says", "code"), SDK_AGREES)
def test_sdk_and_we_refuse_the_same_bad_tokens(
    override: dict[str, Any], sdk_says: str, code: str
) -> None:
    request = signed(FAILED_REPORT, method="POST")
    claims = {k: v for k, v in override.items() if k != "key"}
    key = override.get("key", KEY)
    now = int(time.time())
    claims = {"nbf": now, "exp": now + 60, **claims}
    bad = with_token(request, mint(request, key=key, **claims))
    with pytest.raises(SdkValidationError, match=sdk_says):
        RequestValidator(KEY).validate_signature(
            bad.headers["messagebird-signature-jwt"], bad.url, bad.body
        )
    assert refused(bad, now=time.time()).code == code


def test_sdk_and_we_refuse_alg_none() -> None:
    request = signed()
    now = int(time.time())
    token = mint(request, key=None, algorithm="none", nbf=now, exp=now + 60)
    assert token.endswith(".")
    with pytest.raises(SdkValidationError, match="alg value is not allowed"):
        RequestValidator(KEY).validate_signature(token, request.url, b"")
    exc = refused(with_token(request, token), now=time.time())
    assert exc.code == "SIGNATURE_INVALID"
    assert "algorithm" in exc.detail


def test_a_pyjwt_minted_token_is_accepted() -> None:
    request = signed()
    provider().verify(with_token(request, mint(request)), NOW)
    post = signed(FAILED_REPORT, method="POST", key=LONG_KEY)
    token = mint(post, key=LONG_KEY, algorithm="HS384")
    provider(secrets=[LONG_KEY]).verify(with_token(post, token), NOW)


# --- verify: each check ---------------------------------------------------------------------


def test_verify_accepts_the_builder_request_get_and_post() -> None:
    provider().verify(signed(), NOW)
    provider().verify(signed(FAILED_REPORT, method="POST"), NOW + 30)


def test_verify_tries_every_key_of_a_rotation() -> None:
    p = provider(secrets=[OTHER_KEY, KEY])
    p.verify(signed(key=KEY), NOW)
    p.verify(signed(key=OTHER_KEY), NOW)


def test_wrong_key_refused() -> None:
    exc = refused(signed(key=OTHER_KEY))
    assert exc.code == "SIGNATURE_INVALID"
    assert KEY not in exc.detail and OTHER_KEY not in exc.detail


@pytest.mark.parametrize(
    ("name", "value"),
    [("status", "delivery_failed"), ("recipient", "31612345679"), ("id", "f" * 32)],
)
def test_tampered_query_refused(name: str, value: str) -> None:
    request = signed()
    query = urlencode({**DOC_REPORT, name: value})
    tampered = dataclasses.replace(
        request,
        url=f"{BASE}/webhooks/bird?{query}",
        query_string=query.encode(),
    )
    exc = refused(tampered)
    assert exc.code == "SIGNATURE_INVALID"
    assert "url_hash" in exc.detail


@pytest.mark.parametrize(
    "url",
    [
        "http://dlr.example.com/webhooks/bird",  # scheme
        "https://dlr.example.com:8443/webhooks/bird",  # port
        "https://dlr.example.com/webhooks/other",  # path (another provider's slug)
    ],
)
def test_tampered_url_refused(url: str) -> None:
    request = signed()
    query = request.url.partition("?")[2]
    assert refused(dataclasses.replace(request, url=f"{url}?{query}")).code == "SIGNATURE_INVALID"


def test_reordered_query_refused() -> None:
    # MessageBird signs the URL as sent: the same parameters re-sorted are another URL.
    request = signed()
    reordered = urlencode(sorted(DOC_REPORT.items()))
    tampered = dataclasses.replace(request, url=f"{BASE}/webhooks/bird?{reordered}")
    assert refused(tampered).code == "SIGNATURE_INVALID"


def test_tampered_body_refused() -> None:
    request = signed(FAILED_REPORT, method="POST")
    body = request.body.replace(b"delivery_failed", b"delivered")
    exc = refused(dataclasses.replace(request, body=body))
    assert exc.code == "SIGNATURE_INVALID"
    assert "payload_hash" in exc.detail


def test_body_removed_or_added_refused() -> None:
    post = signed(FAILED_REPORT, method="POST")
    exc = refused(dataclasses.replace(post, body=b""))
    assert "no body" in exc.detail
    get = signed()
    exc = refused(dataclasses.replace(get, body=b"status=delivered"))
    assert "no payload_hash" in exc.detail


@pytest.mark.parametrize(
    ("now", "tolerance", "code"),
    [
        (NOW + 60 + 300, 300, "TIMESTAMP_STALE"),  # exp + tolerance: expired
        (NOW + 60 + 299, 300, None),  # one second inside
        (NOW + 60 + 10, 10, "TIMESTAMP_STALE"),
        (NOW - 301, 300, "TIMESTAMP_FUTURE"),  # nbf ahead of our clock beyond tolerance
        (NOW - 300, 300, None),
        (NOW - 2, 1, "TIMESTAMP_FUTURE"),
        (NOW + 59, 1, None),
    ],
)
def test_validity_window_widened_by_tolerance(now: int, tolerance: int, code: str | None) -> None:
    p = provider(tolerance_seconds=tolerance)
    if code is None:
        p.verify(signed(), now)
    else:
        assert refused(signed(), now=now, tolerance_seconds=tolerance).code == code


def test_missing_token() -> None:
    request = signed()
    headers = {k: v for k, v in request.headers.items() if k != "messagebird-signature-jwt"}
    assert refused(dataclasses.replace(request, headers=headers)).code == "SIGNATURE_MISSING"
    assert refused(with_token(request, "  ")).code == "SIGNATURE_MISSING"


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b",
        "a.b.c",
        "eyJhbGciOiJIUzI1NiJ9.!!!.sig",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
        "eyJhbGciOiJIUzI1NiJ9.é.x",
        "x" * 9000,
        jwt.encode({"x": 1}, KEY, algorithm="HS256").replace("eyJ", "eyK", 1),
    ],
)
def test_malformed_token(token: str) -> None:
    exc = refused(with_token(signed(), token))
    assert exc.code == "SIGNATURE_MALFORMED"


def _signed_payload(payload: bytes) -> str:
    return jwt.api_jws.encode(payload, KEY, algorithm="HS256")


@pytest.mark.parametrize(
    ("token", "code", "says"),
    [
        (_signed_payload(b"[1, 2]"), "SIGNATURE_MALFORMED", "not a JSON object"),
        (_signed_payload(b"not json"), "SIGNATURE_MALFORMED", "not a JSON object"),
    ],
)
def test_signed_but_malformed_payload(token: str, code: str, says: str) -> None:
    exc = refused(with_token(signed(), token))
    assert exc.code == code
    assert says in exc.detail


@pytest.mark.parametrize(
    ("claims", "drop", "code", "says"),
    [
        ({}, ("nbf",), "SIGNATURE_MALFORMED", "nbf"),
        ({}, ("exp",), "SIGNATURE_MALFORMED", "exp"),
        ({"nbf": "1795428000"}, (), "SIGNATURE_MALFORMED", "nbf"),
        ({"exp": True}, (), "SIGNATURE_MALFORMED", "exp"),
        ({}, ("url_hash",), "SIGNATURE_MALFORMED", "url_hash"),
        ({}, ("iss",), "SIGNATURE_INVALID", "issuer"),
        ({"iss": "messagebird"}, (), "SIGNATURE_INVALID", "issuer"),
        ({"url_hash": "é" * 64}, (), "SIGNATURE_INVALID", "url_hash"),
        ({"url_hash": 42}, (), "SIGNATURE_INVALID", "url_hash"),
    ],
)
def test_claims_checked(
    claims: dict[str, Any], drop: tuple[str, ...], code: str, says: str
) -> None:
    request = signed()
    exc = refused(with_token(request, mint(request, drop=drop, **claims)))
    assert exc.code == code
    assert says in exc.detail


def test_payload_hash_claim_checked() -> None:
    post = signed(FAILED_REPORT, method="POST")
    exc = refused(with_token(post, mint(post, payload_hash=["x"])))
    assert "payload_hash" in exc.detail
    exc = refused(with_token(post, mint(post, drop=("payload_hash",))))
    assert "no payload_hash" in exc.detail


def test_uppercase_hex_hashes_accepted() -> None:
    post = signed(FAILED_REPORT, method="POST")
    token = mint(
        post,
        url_hash=hashlib.sha256(post.url.encode()).hexdigest().upper(),
        payload_hash=hashlib.sha256(post.body).hexdigest().upper(),
    )
    provider().verify(with_token(post, token), NOW)


def test_asymmetric_algorithm_refused() -> None:
    request = signed()
    token = mint(request, key=Ed25519PrivateKey.generate(), algorithm="EdDSA")  # type: ignore[arg-type]
    exc = refused(with_token(request, token))
    assert exc.code == "SIGNATURE_INVALID"
    assert "algorithm" in exc.detail


def test_short_keys_do_not_warn() -> None:
    # A 32-character key is below PyJWT's recommendation for HS512; MessageBird chooses
    # the key, so verifying must not warn (warnings are errors in this suite).
    request = signed(algorithm="HS512")
    provider().verify(request, NOW)
    assert messagebird_jwt.verify(
        request.headers["messagebird-signature-jwt"],
        url=request.url,
        body=b"",
        keys=[KEY],
        now=NOW,
        tolerance_seconds=1,
    ).token_id


def test_sign_refuses_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="HS256"):
        messagebird_jwt.sign(KEY, url=BASE, body=b"", now=NOW, algorithm="none")


# --- parse ------------------------------------------------------------------------------------


def test_parse_documented_example() -> None:
    (report,) = provider().parse(signed())
    assert report == Report(
        event_id=derived_event_id(
            "e8077d803532c0b5937c639b60216938", "31612345678", "delivered",
            "2016-05-03T08:58:10+00:00",
        ),
        provider_message_id="e8077d803532c0b5937c639b60216938",
        status=Status.DELIVERED,
        provider_status="delivered",
        occurred_at=datetime(2016, 5, 3, 8, 58, 10, tzinfo=UTC),
        to="+31612345678",
        error_code=None,
        error_message=None,
        client_reference="YouReference123",
    )  # fmt: skip


def test_parse_failure_with_reason_and_code_in_utc() -> None:
    (report,) = provider().parse(signed(FAILED_REPORT))
    assert report.status is Status.UNDELIVERED
    assert report.provider_status == "delivery_failed"
    assert report.error_code == "1"
    assert report.error_message == "unknown subscriber"
    assert report.occurred_at == datetime(2026, 11, 23, 8, 58, 12, tzinfo=UTC)
    assert report.occurred_at.tzinfo is UTC
    assert report.to == "+447700900123"


def test_parse_post_form_body_like_get() -> None:
    (from_get,) = provider().parse(signed(FAILED_REPORT))
    (from_post,) = provider().parse(signed(FAILED_REPORT, method="POST"))
    assert from_post == from_get


def test_reason_on_progress_reports_is_not_an_error() -> None:
    report = {**DOC_REPORT, "statusReason": "successfully delivered", "statusErrorCode": "0"}
    (parsed,) = provider().parse(signed(report))
    assert parsed.status is Status.DELIVERED
    assert (parsed.error_code, parsed.error_message) == (None, None)


def test_blank_error_fields_are_absent() -> None:
    report = {**FAILED_REPORT, "statusReason": "", "statusErrorCode": " "}
    (parsed,) = provider().parse(signed(report))
    assert (parsed.error_code, parsed.error_message) == (None, None)


def test_redelivery_gets_the_same_event_id() -> None:
    first = provider().parse(signed(FAILED_REPORT, now=NOW))[0]
    # A retry is signed anew (new jti, nbf) and may drop metadata: same report, same id.
    trimmed = {k: v for k, v in FAILED_REPORT.items() if k not in ("price[amount]", "mccmnc")}
    again = provider().parse(signed(trimmed, now=NOW + 3600, method="POST"))[0]
    assert again.event_id == first.event_id
    # The same instant written with another offset is the same report.
    shifted = {**FAILED_REPORT, "statusDatetime": "2026-11-23T08:58:12Z"}
    assert provider().parse(signed(shifted))[0].event_id == first.event_id


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("status", "expired"),
        ("recipient", "447700900124"),
        ("id", "eef0ab57a9e049be946f3821568c2b2f"),
        ("statusDatetime", "2026-11-23T09:58:13+01:00"),
    ],
)
def test_each_identifying_field_changes_the_event_id(name: str, value: str) -> None:
    first = provider().parse(signed(FAILED_REPORT))[0]
    other = provider().parse(signed({**FAILED_REPORT, name: value}))[0]
    assert other.event_id != first.event_id


def test_event_id_ignores_the_plus_on_the_recipient() -> None:
    plain = provider().parse(signed(DOC_REPORT))[0]
    plus = provider().parse(signed({**DOC_REPORT, "recipient": "+31612345678"}))[0]
    assert plus.event_id == plain.event_id
    assert plus.to == "+31612345678"


STATUS_ROWS = [
    ("scheduled", Status.QUEUED),
    ("sent", Status.SENT),
    ("buffered", Status.BUFFERED),
    ("delivered", Status.DELIVERED),
    ("expired", Status.EXPIRED),
    ("delivery_failed", Status.UNDELIVERED),
]


def test_status_table_is_exactly_the_documented_rows() -> None:
    assert dict(STATUS_ROWS) == STATUS_MAP


@pytest.mark.parametrize(("word", "status"), STATUS_ROWS)
def test_status_mapping_row(word: str, status: Status) -> None:
    (report,) = provider().parse(signed({**DOC_REPORT, "status": word}))
    assert report.status is status
    assert report.provider_status == word


@pytest.mark.parametrize(
    "word", ["Delivered", "DELIVERED", "failed", "accepted", "delivery_unconfirmed", "read"]
)
def test_unmapped_word_kept_with_status_none(word: str) -> None:
    report = {**DOC_REPORT, "status": word, "statusErrorCode": "9", "statusReason": "odd"}
    (parsed,) = provider().parse(signed(report))
    assert parsed.status is None
    assert parsed.provider_status == word
    assert (parsed.error_code, parsed.error_message) == ("9", "odd")


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-11-23T17:59:58+08:00", datetime(2026, 11, 23, 9, 59, 58, tzinfo=UTC)),
        ("2026-11-23T04:59:58-05:00", datetime(2026, 11, 23, 9, 59, 58, tzinfo=UTC)),
        ("2026-11-23T09:59:58Z", datetime(2026, 11, 23, 9, 59, 58, tzinfo=UTC)),
        ("2026-11-23T09:59:58.250+00:00", datetime(2026, 11, 23, 9, 59, 58, 250000, tzinfo=UTC)),
    ],
)
def test_status_datetime_to_utc(stamp: str, expected: datetime) -> None:
    (report,) = provider().parse(signed({**DOC_REPORT, "statusDatetime": stamp}))
    assert report.occurred_at == expected
    assert report.occurred_at.utcoffset() == timedelta(0)


def test_unencoded_plus_in_the_offset_is_repaired() -> None:
    # "+00:00" sent without %2B decodes to " 00:00".
    query = urlencode({**DOC_REPORT}).replace("%2B", "+")
    request = dataclasses.replace(signed(), query_string=query.encode())
    (report,) = provider().parse(request)
    assert report.occurred_at == datetime(2016, 5, 3, 8, 58, 10, tzinfo=UTC)
    assert report.event_id == provider().parse(signed())[0].event_id


def test_missing_status_datetime_uses_arrival_time() -> None:
    report = {k: v for k, v in DOC_REPORT.items() if k != "statusDatetime"}
    (parsed,) = provider().parse(signed(report))
    assert parsed.occurred_at == RECEIVED_AT
    assert parsed.event_id == derived_event_id(DOC_REPORT["id"], "31612345678", "delivered", "")


def test_query_of_the_configured_url_is_ignored() -> None:
    # A status report URL with its own query: MessageBird appends its parameters.
    query = "tenant=acme&" + urlencode(DOC_REPORT)
    request = dataclasses.replace(signed(), query_string=query.encode())
    assert provider().parse(request)[0].provider_message_id == DOC_REPORT["id"]


@pytest.mark.parametrize(
    ("recipient", "to"),
    [
        ("31612345678", "+31612345678"),
        ("+31612345678", "+31612345678"),
        ("639171234567", "+639171234567"),
        ("0612345678", None),  # national form: no country code to add
        ("12345", None),  # too short to be international
        ("1234567890123456", None),  # longer than E.164 allows
    ],
)
def test_recipient_to_e164(recipient: str, to: str | None) -> None:
    assert e164(recipient) == to
    (report,) = provider().parse(signed({**DOC_REPORT, "recipient": recipient}))
    assert report.to == to


def invalid(request: InboundRequest) -> PayloadInvalid:
    with pytest.raises(PayloadInvalid) as info:
        provider().parse(request)
    exc = info.value
    assert exc.status == 400
    assert exc.code == "PAYLOAD_INVALID"
    assert exc.detail.startswith(f"{exc.field}: ")
    return exc


def _without(name: str) -> dict[str, str]:
    return {k: v for k, v in DOC_REPORT.items() if k != name}


INVALID = [
    pytest.param(_without("id"), "id", "required", id="no-id"),
    pytest.param(_without("recipient"), "recipient", "required", id="no-recipient"),
    pytest.param(_without("status"), "status", "required", id="no-status"),
    pytest.param({**DOC_REPORT, "id": ""}, "id", "at least 1", id="empty-id"),
    pytest.param({**DOC_REPORT, "id": "x" * 256}, "id", "at most 255", id="long-id"),
    pytest.param({**DOC_REPORT, "status": ""}, "status", "at least 1", id="empty-status"),
    pytest.param({**DOC_REPORT, "status": "s" * 65}, "status", "at most 64", id="long-status"),
    pytest.param({**DOC_REPORT, "recipient": "MessageBird"}, "recipient", "pattern",
                 id="alpha-recipient"),
    pytest.param({**DOC_REPORT, "recipient": "+31 6 1234"}, "recipient", "pattern",
                 id="spaced-recipient"),
    pytest.param({**DOC_REPORT, "statusDatetime": "2016-05-03T08:58:10"}, "statusDatetime",
                 "RFC 3339", id="naive-datetime"),
    pytest.param({**DOC_REPORT, "statusDatetime": "1462265890"}, "statusDatetime", "RFC 3339",
                 id="unix-datetime"),
    pytest.param({**DOC_REPORT, "statusDatetime": "yesterday"}, "statusDatetime", "RFC 3339",
                 id="garbage-datetime"),
    pytest.param({**DOC_REPORT, "statusDatetime": "2016-13-03T08:58:10+00:00"},
                 "statusDatetime", None, id="impossible-date"),
    pytest.param({**FAILED_REPORT, "statusErrorCode": "9" * 65}, "statusErrorCode",
                 "at most 64", id="long-error-code"),
    pytest.param({**FAILED_REPORT, "statusReason": "r" * 1001}, "statusReason",
                 "at most 1000", id="long-reason"),
]  # fmt: skip


@pytest.mark.parametrize(("report", "field", "says"), INVALID)
def test_invalid_report_names_the_field(
    report: dict[str, str], field: str, says: str | None
) -> None:
    exc = invalid(signed(report))
    assert exc.field == field
    if says is not None:
        assert says in exc.detail


def test_empty_request_names_a_field() -> None:
    request = dataclasses.replace(signed(), query_string=b"")
    assert invalid(request).field == "id"


@pytest.mark.parametrize("name", ["id", "status", "recipient", "statusDatetime"])
def test_repeated_parameter_refused(name: str) -> None:
    other = {"id": "0000", "status": "expired", "recipient": "31600000000",
             "statusDatetime": "2016-05-03T09:00:00+00:00"}[name]  # fmt: skip
    query = urlencode(DOC_REPORT) + "&" + urlencode({name: other})
    exc = invalid(dataclasses.replace(signed(), query_string=query.encode()))
    assert exc.field == name
    assert "more than once" in exc.detail
    # The same value twice is not ambiguous: accepted.
    same = urlencode(DOC_REPORT) + "&" + urlencode({name: DOC_REPORT[name]})
    assert provider().parse(dataclasses.replace(signed(), query_string=same.encode()))


def test_repeated_unknown_parameter_is_fine() -> None:
    query = urlencode(DOC_REPORT) + "&mccmnc=20408&mccmnc=20416"
    request = dataclasses.replace(signed(), query_string=query.encode())
    assert provider().parse(request)[0].status is Status.DELIVERED


# --- answer and builder -------------------------------------------------------------------------


def test_builder_shapes() -> None:
    report = bird_report(
        message_id="m-1",
        status="delivered",
        status_datetime=datetime(2026, 11, 23, 10, 0, tzinfo=timezone(timedelta(hours=1))),
        extra={"mccmnc": "20408"},
    )
    assert list(report) == ["id", "reference", "recipient", "status", "statusDatetime", "mccmnc"]
    assert report["statusDatetime"] == "2026-11-23T10:00:00+01:00"
    get = bird_request(signing_key=KEY, report=report, provider="bird")
    assert get.method == "GET"
    assert get.body == b""
    assert get.path.startswith("/webhooks/bird?id=m-1&reference=order-8821&")
    assert "statusDatetime=2026-11-23T10%3A00%3A00%2B01%3A00" in get.path
    post = bird_request(signing_key=KEY, report=report, method="post")
    assert (post.method, post.path) == ("POST", "/webhooks/default")
    assert post.headers["content-type"] == FORM
    assert post.body == urlencode(report).encode()
    with pytest.raises(ValueError, match="GET or POST"):
        bird_request(signing_key=KEY, report=report, method="PUT")


def test_builder_default_report_is_recent_and_parses() -> None:
    report = bird_report(message_id="m-2", status="sent", reference=None)
    assert "reference" not in report
    request = bird_request(signing_key=KEY, report=report, public_base_url=BASE, provider="bird")
    now = time.time()
    provider().verify(inbound(request), now)
    (parsed,) = provider().parse(inbound(request))
    assert abs(parsed.occurred_at.timestamp() - now) < 5


# --- end to end through `receiver serve` ------------------------------------------------------


def test_end_to_end(server_factory: Any) -> None:
    server = server_factory(
        settings={"public_base_url": BASE},
        providers={"bird": {"type": "bird", "secrets": [OTHER_KEY, KEY]}},
    )

    def report_request(report: dict[str, str], **kwargs: Any) -> SignedRequest:
        return bird_request(
            signing_key=KEY, report=report, public_base_url=BASE, provider="bird", **kwargs
        )

    sent = bird_report(
        message_id="f0e1d2c3b4a5968778695a4b3c2d1e0f",
        status="sent",
        recipient="447700900123",
        status_datetime=datetime(2026, 11, 23, 9, 58, 0, tzinfo=UTC),
    )
    failed = {
        **sent,
        "status": "delivery_failed",
        "statusDatetime": "2026-11-23T10:58:12+01:00",
        "statusReason": "unknown subscriber",
        "statusErrorCode": "1",
        "mccmnc": "23410",
    }
    answer = server.post(report_request(sent))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 1, "applied": 1, "duplicates": 0, "superseded": 0}
    answer = server.post(report_request(failed, method="POST"))
    assert answer.json() == {"received": 1, "applied": 1, "duplicates": 0, "superseded": 0}
    # MessageBird retries with a freshly signed token: recognised as the same report.
    again = server.post(report_request(failed))
    assert again.status_code == 200
    assert again.json() == {"received": 1, "applied": 0, "duplicates": 1, "superseded": 0}

    wrong = bird_request(signing_key="z" * 32, report=failed, public_base_url=BASE, provider="bird")
    refused_answer = server.post(wrong)
    assert refused_answer.status_code == 401
    assert refused_answer.headers["content-type"].startswith("application/problem+json")
    assert refused_answer.json()["code"] == "SIGNATURE_INVALID"
    elsewhere = bird_request(
        signing_key=KEY, report=failed, public_base_url="https://other.example", provider="bird"
    )
    assert server.post(elsewhere).json()["code"] == "SIGNATURE_INVALID"
    unsigned = SignedRequest(path=report_request(failed).path, body=b"", method="GET")
    assert server.post(unsigned).json()["code"] == "SIGNATURE_MISSING"
    bad = report_request({**failed, "statusDatetime": "yesterday"})
    problem = server.post(bad)
    assert problem.status_code == 400
    assert problem.json()["code"] == "PAYLOAD_INVALID"
    assert problem.json()["detail"] == (
        "statusDatetime: must be an RFC 3339 date-time with an offset"
    )

    with server.api(server.staff_token("alice", "sender")) as api:
        items = api.get(
            "/v1/messages", params={"provider": "bird", "provider_message_id": sent["id"]}
        ).json()["items"]
        assert [(m["status"], m["final"], m["to"]) for m in items] == [
            ("undelivered", True, "+447700900123")
        ]
        (message,) = items
        assert (message["error_code"], message["error_message"]) == ("1", "unknown subscriber")
        assert message["report_count"] == 2
        events = api.get(f"/v1/messages/{message['id']}/events").json()["items"]
    assert [(e["provider_status"], e["status"], e["deliveries"]) for e in events] == [
        ("sent", "sent", 1),
        ("delivery_failed", "undelivered", 2),
    ]
    assert events[1]["occurred_at"].startswith("2026-11-23T09:58:12")


def test_the_senders_reference_becomes_the_client_reference() -> None:
    [report] = provider().parse(signed(FAILED_REPORT))
    assert report.client_reference == "order-8821"
    [without] = provider().parse(signed({k: v for k, v in DOC_REPORT.items() if k != "reference"}))
    assert without.client_reference is None


def test_the_network_comes_from_mccmnc() -> None:
    report = bird_report(message_id="m-net", status="delivered", extra={"mccmnc": "20408"})
    request = bird_request(signing_key=KEY, report=report, public_base_url=BASE, provider="bird")
    (parsed,) = provider().parse(inbound(request))
    assert parsed.network == "204-08"
