"""Provider type ``vonage``: SMS API delivery receipts (signed ``sig``) and Messages API
status webhooks (signed JWT): config, verify, parse, answer, and end to end.

Signatures are made with Vonage's official Python SDK where it can: ``vonage`` 4.9's
``vonage_http_client.auth.Auth.sign_params`` for the HMAC methods (it has no legacy
"MD5 hash", which is computed here by hand as Vonage's "Signing messages" guide and the
PHP SDK's ``Signature::sign`` describe), and PyJWT for Messages API tokens, whose
signature ``vonage_jwt.verify_signature`` checks for the builder's tokens.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import warnings
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from pydantic import ValidationError
from vonage_http_client.auth import Auth
from vonage_jwt.verify_jwt import verify_signature

from receiver.config import load
from receiver.core.reports import Outcome, Report, derived_event_id
from receiver.core.signatures import vonage as vonage_signature
from receiver.core.status import Status
from receiver.errors import ConfigError, PayloadInvalid, RetryLater, SignatureError
from receiver.providers import PROVIDER_TYPES
from receiver.providers.base import FORM, JSON, InboundRequest
from receiver.providers.vonage import (
    DLR_ERRORS,
    MESSAGES_STATUS_MAP,
    SMS_STATUS_MAP,
    VonageConfig,
    VonageProvider,
)
from receiver.testing.base import SignedRequest
from receiver.testing.vonage import (
    vonage_message_status,
    vonage_messages_request,
    vonage_request,
    vonage_sms_report,
    vonage_sms_request,
)

# 64 bytes: long enough for HS512 too, so PyJWT has no key-length warning to give.
SECRET = "Fz8Kp2Qv7Lm4Xw9Tn1Rb6Yc3Hd5Js0GeUaVoWiZkNqPtMyBrCxDfEgAhSlIjOuQw"
NEW_SECRET = "Kc4Wd8Jx2Nq6Tm0Vb5Rz9Lp3Hs7Fy1GaUeXoYiQkMwPtCrBnDjEgAhSlIfOuZvTq"
API_KEY = "abcd1234"
NOW = 1764000000  # 2025-11-24T16:00:00Z: the injected clock
RECEIVED_AT = datetime(2025, 11, 24, 16, 0, 5, tzinfo=UTC)
NONCE = "ec11dd3e-1e7f-4db5-9467-82b02cd223b9"  # the API reference's example nonce
HMAC_METHODS = ["md5", "sha1", "sha256", "sha512"]
ALL_METHODS = ["md5hash", *HMAC_METHODS]

# "Understanding the delivery receipt" ("This is a typical DLR"), developer.vonage.com.
DOC_DLR = {
    "err-code": "0",
    "message-timestamp": "2018-10-25 12:10:29",
    "messageId": "0B00000127FDBC63",
    "msisdn": "447547232824",
    "network-code": "23410",
    "price": "0.03330000",
    "scts": "1810251310",
    "status": "delivered",
    "to": "Nexmo CLI",
}

# The Messages API reference's "Message Status" example (as in Vonage's .NET SDK test
# data, ShouldDeserializeStatus-response.json).
DOC_STATUS: dict[str, Any] = {
    "message_uuid": "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab",
    "to": "447700900000",
    "from": "447700900001",
    "timestamp": "2025-02-03T12:14:25Z",
    "status": "submitted",
    "error": {
        "type": "https://developer.vonage.com/api-errors/messages#1000",
        "title": "1000",
        "detail": "Throttled - You have exceeded the submission capacity allowed on this "
        "account. Please wait and retry",
        "instance": "bf0ca0bf927b3b52e3cb03217e1a1ddf",
    },
    "client_ref": "abc123",
    "workflow": {
        "workflow_id": "3TcNjguHxr2vcCZ9Ddsnq6tw8yQUpZ9rMHv9QXSxLan5ibMxqSzLdx9",
        "items_number": "1",
        "items_total": "2",
    },
    "usage": {"currency": "EUR", "price": "0.0333"},
    "channel": "sms",
    "destination": {"network_code": "12345"},
    "sms": {"count_total": "2"},
}

DELIVERED_STATUS: dict[str, Any] = {
    "message_uuid": "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab",
    "to": "447700900000",
    "from": "447700900001",
    "timestamp": "2025-02-03T12:14:31Z",
    "status": "delivered",
    "channel": "sms",
    "client_ref": "abc123",
}


# --- helpers ------------------------------------------------------------------------------------


def provider(**config: Any) -> VonageProvider:
    config.setdefault("secrets", [SECRET])
    config.setdefault("signature_method", "sha256")
    return VonageProvider("vonage", VonageConfig(type="vonage", **config))


def sdk_sig(params: dict[str, str], secret: str = SECRET, method: str = "sha256") -> str:
    """``sig`` as Vonage sends it, computed with the official SDK where it can."""
    unsigned = {k: v for k, v in params.items() if k != "sig"}
    if method == "md5hash":
        # vonage 4.9 has only HMAC variants; "MD5 hash" is md5(&k=v... + secret).
        signed = "".join(
            f"&{k}={v.replace('&', '_').replace('=', '_')}" for k, v in sorted(unsigned.items())
        )
        return hashlib.md5((signed + secret).encode()).hexdigest()
    auth = Auth(api_key=API_KEY, signature_secret=secret, signature_method=method)
    return auth.sign_params(unsigned).upper()  # Vonage sends HMAC digests in upper case


def signed_params(
    fields: dict[str, str],
    *,
    secret: str = SECRET,
    method: str = "sha256",
    timestamp: int | str = NOW,
    nonce: str = NONCE,
) -> dict[str, str]:
    params = {**fields, "api-key": API_KEY, "timestamp": str(timestamp), "nonce": nonce}
    params["sig"] = sdk_sig(params, secret, method)
    return params


def sms_inbound(
    params: dict[str, Any] | list[tuple[str, str]],
    transport: str = "form",
    *,
    received_at: datetime = RECEIVED_AT,
) -> InboundRequest:
    pairs = params if isinstance(params, list) else list(params.items())
    if transport == "query":
        return InboundRequest(
            method="GET",
            url="https://dlr.example.com/webhooks/vonage?" + urlencode(pairs),
            headers={},
            query_string=urlencode(pairs).encode(),
            body=b"",
            media_type="",
            received_at=received_at,
        )
    if transport == "json":
        body, media_type = json.dumps(dict(pairs)).encode(), JSON
    else:
        body, media_type = urlencode(pairs).encode(), FORM
    return InboundRequest(
        method="POST",
        url="https://dlr.example.com/webhooks/vonage",
        headers={"content-type": media_type},
        query_string=b"",
        body=body,
        media_type=media_type,
        received_at=received_at,
    )


def mint(
    body: bytes,
    *,
    secret: str = SECRET,
    iat: Any = NOW,
    algorithm: str = "HS256",
    payload_hash: str | None = None,
    drop: tuple[str, ...] = (),
) -> str:
    """A Messages API token as documented ("Sample Signed JWT"), minted with PyJWT."""
    claims = {
        "iat": iat,
        "jti": "c5ba8f24-1a14-4c10-bfdf-3fbe8ce511b5",
        "iss": "Vonage",
        "payload_hash": payload_hash or hashlib.sha256(body).hexdigest(),
        "api_key": "a1b2c3d",
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    }
    for claim in drop:
        claims.pop(claim)
    return jwt.encode(claims, secret, algorithm=algorithm)


def messages_inbound(
    payload: Any,
    *,
    token: str | None = "mint",
    authorization: str | None = None,
    received_at: datetime = RECEIVED_AT,
) -> InboundRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"content-type": JSON}
    if authorization is not None:
        headers["authorization"] = authorization
    elif token is not None:
        headers["authorization"] = "Bearer " + (mint(body) if token == "mint" else token)
    return InboundRequest(
        method="POST",
        url="https://dlr.example.com/webhooks/vonage",
        headers=headers,
        query_string=b"",
        body=body,
        media_type=JSON,
        received_at=received_at,
    )


def from_builder(request: SignedRequest) -> InboundRequest:
    _, _, query = request.path.partition("?")
    media_type = request.headers.get("content-type", "")
    return InboundRequest(
        method=request.method,
        url="https://dlr.example.com" + request.path,
        headers={k.lower(): v for k, v in request.headers.items()},
        query_string=query.encode(),
        body=request.body,
        media_type=media_type,
        received_at=RECEIVED_AT,
    )


def signature_error(p: VonageProvider, request: InboundRequest, now: float = NOW) -> str:
    with pytest.raises(SignatureError) as info:
        p.verify(request, now=now)
    assert info.value.status == 401
    assert SECRET not in info.value.detail
    return info.value.code


# --- the class and its config ------------------------------------------------------------------


def test_registered_with_its_methods_and_media_types() -> None:
    assert PROVIDER_TYPES["vonage"] is VonageProvider
    assert VonageProvider.config_model is VonageConfig
    assert frozenset({"GET", "POST"}) == VonageProvider.methods
    assert frozenset({FORM, JSON}) == VonageProvider.media_types


def test_default_signature_method_is_the_dashboards_md5_hash() -> None:
    assert VonageConfig(type="vonage", secrets=[SECRET]).signature_method == "md5hash"


@pytest.mark.parametrize("method", ALL_METHODS)
def test_every_vonage_signature_method_is_accepted(method: str) -> None:
    assert VonageConfig(type="vonage", secrets=[SECRET], signature_method=method).signature_method


@pytest.mark.parametrize("method", ["SHA256", "hmac-sha256", "sha384", "md5-hash", ""])
def test_unknown_signature_method_rejected(method: str) -> None:
    with pytest.raises(ValidationError) as info:
        VonageConfig(type="vonage", secrets=[SECRET], signature_method=method)  # type: ignore[arg-type]
    assert info.value.errors()[0]["loc"] == ("signature_method",)


def test_secrets_required_unless_explicitly_insecure() -> None:
    with pytest.raises(ValidationError, match="secrets"):
        VonageConfig(type="vonage")
    assert VonageConfig(type="vonage", insecure_no_signature=True).secrets == []


@pytest.mark.parametrize("secret", ["", " " + SECRET, SECRET + "\n"])
def test_blank_or_padded_secret_rejected(secret: str) -> None:
    with pytest.raises(ValidationError, match=r"secrets\[1\]"):
        VonageConfig(type="vonage", secrets=[SECRET, secret])


@pytest.mark.parametrize("extra", [{"signature_secret": SECRET}, {"hash": "sha256"}])
def test_unknown_key_rejected(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        VonageConfig(type="vonage", secrets=[SECRET], **extra)
    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]


def test_wrong_type_rejected() -> None:
    with pytest.raises(ValidationError):
        VonageConfig(type="nexmo", secrets=[SECRET])  # type: ignore[arg-type]


def test_config_file_names_the_bad_key(tmp_path: Path) -> None:
    path = tmp_path / "receiver.toml"
    path.write_text(
        'session_secret = "s3ss10n-s3cr3t-0123456789abcdef0123456789"\n'
        "[providers.vonage]\n"
        'type = "vonage"\n'
        f'secrets = ["{SECRET}"]\n'
        'signature_method = "sha384"\n'
    )
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.key == "providers.vonage.signature_method"
    path.write_text(path.read_text().replace("sha384", "sha512"))
    config = load(path)
    assert isinstance(config.providers["vonage"], VonageProvider)


# --- SMS API: verify ----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["form", "json", "query"])
@pytest.mark.parametrize("method", ALL_METHODS)
def test_sdk_signed_receipt_verifies(method: str, transport: str) -> None:
    params = signed_params(DOC_DLR, method=method)
    provider(signature_method=method).verify(sms_inbound(params, transport), now=NOW)


@pytest.mark.parametrize("method", HMAC_METHODS)
def test_lower_case_sig_verifies_too(method: str) -> None:
    params = signed_params(DOC_DLR, method=method)
    params["sig"] = params["sig"].lower()
    provider(signature_method=method).verify(sms_inbound(params), now=NOW)


def test_values_with_ampersand_and_equals_are_signed_with_underscores() -> None:
    fields = {**DOC_DLR, "client-ref": "order=8821&shipment=2"}
    params = signed_params(fields)
    p = provider()
    p.verify(sms_inbound(params), now=NOW)
    p.verify(sms_inbound(params, "json"), now=NOW)
    p.verify(sms_inbound(params, "query"), now=NOW)


def test_unicode_values_verify() -> None:
    params = signed_params({**DOC_DLR, "to": "Café Ünïcode", "client-ref": "réf-ü"})
    provider().verify(sms_inbound(params), now=NOW)


def test_json_numbers_are_signed_as_the_sdk_signs_them() -> None:
    params: dict[str, Any] = signed_params({**DOC_DLR, "network-code": "23410"})
    as_number = {**params, "network-code": 23410}
    provider().verify(sms_inbound(as_number, "json"), now=NOW)


def test_the_url_is_not_signed() -> None:
    # Neither Vonage scheme covers the URL: a receiver behind any public URL verifies.
    for request in (sms_inbound(signed_params(DOC_DLR)), messages_inbound(DOC_STATUS)):
        moved = dataclasses.replace(request, url="http://10.0.0.7:8000/webhooks/other")
        provider().verify(moved, now=NOW)


def test_every_secret_of_a_rotation_is_tried() -> None:
    p = provider(secrets=[SECRET, NEW_SECRET])
    p.verify(sms_inbound(signed_params(DOC_DLR, secret=NEW_SECRET)), now=NOW)
    p.verify(sms_inbound(signed_params(DOC_DLR, secret=SECRET)), now=NOW)


def test_wrong_secret_refused() -> None:
    params = signed_params(DOC_DLR, secret=NEW_SECRET)
    assert signature_error(provider(), sms_inbound(params)) == "SIGNATURE_INVALID"


@pytest.mark.parametrize(
    "change",
    [
        {"status": "failed"},
        {"err-code": "2"},
        {"msisdn": "447547232825"},
        {"nonce": "00000000-0000-0000-0000-000000000000"},
    ],
    ids=["status", "err-code", "msisdn", "nonce"],
)
def test_tampered_parameter_refused(change: dict[str, str]) -> None:
    params = {**signed_params(DOC_DLR), **change}
    assert signature_error(provider(), sms_inbound(params)) == "SIGNATURE_INVALID"


def test_added_or_removed_parameter_refused() -> None:
    params = signed_params(DOC_DLR)
    added = {**params, "client-ref": "injected"}
    removed = {k: v for k, v in params.items() if k != "price"}
    assert signature_error(provider(), sms_inbound(added)) == "SIGNATURE_INVALID"
    assert signature_error(provider(), sms_inbound(removed)) == "SIGNATURE_INVALID"


def test_md5hash_is_not_hmac_md5() -> None:
    # Same length, different scheme: a wrong signature_method is a plain mismatch.
    params = signed_params(DOC_DLR, method="md5")
    assert signature_error(provider(signature_method="md5hash"), sms_inbound(params)) == (
        "SIGNATURE_INVALID"
    )


def test_wrong_signature_method_is_named_by_length() -> None:
    params = signed_params(DOC_DLR, method="sha512")
    with pytest.raises(SignatureError) as info:
        provider(signature_method="sha256").verify(sms_inbound(params), now=NOW)
    assert info.value.code == "SIGNATURE_INVALID"
    assert "128 hex digits" in info.value.detail
    assert "sha512" in info.value.detail
    assert "signature_method" in info.value.detail


def test_unsigned_receipt_refused() -> None:
    assert signature_error(provider(), sms_inbound(DOC_DLR)) == "SIGNATURE_MISSING"
    assert signature_error(provider(), sms_inbound({**DOC_DLR, "sig": ""})) == ("SIGNATURE_MISSING")


@pytest.mark.parametrize("sig", ["not-hex!", "G" * 64, "A" * 300])
def test_malformed_sig_refused(sig: str) -> None:
    params = {**signed_params(DOC_DLR), "sig": sig}
    assert signature_error(provider(), sms_inbound(params)) == "SIGNATURE_MALFORMED"


@pytest.mark.parametrize("timestamp", ["", "yesterday", "1764000000.5", "9" * 13])
def test_missing_or_bad_timestamp_is_malformed(timestamp: str) -> None:
    params = signed_params(DOC_DLR, timestamp=timestamp)
    assert signature_error(provider(), sms_inbound(params)) == "SIGNATURE_MALFORMED"


def test_stale_and_future_timestamps_refused() -> None:
    p = provider(tolerance_seconds=300)
    p.verify(sms_inbound(signed_params(DOC_DLR, timestamp=NOW - 300)), now=NOW)
    p.verify(sms_inbound(signed_params(DOC_DLR, timestamp=NOW + 300)), now=NOW)
    stale = sms_inbound(signed_params(DOC_DLR, timestamp=NOW - 301))
    future = sms_inbound(signed_params(DOC_DLR, timestamp=NOW + 301))
    assert signature_error(p, stale) == "TIMESTAMP_STALE"
    assert signature_error(p, future) == "TIMESTAMP_FUTURE"


def test_configured_tolerance_is_used() -> None:
    request = sms_inbound(signed_params(DOC_DLR, timestamp=NOW - 3000))
    provider(tolerance_seconds=3600).verify(request, now=NOW)
    assert signature_error(provider(tolerance_seconds=60), request) == "TIMESTAMP_STALE"


def test_a_repeated_parameter_is_malformed() -> None:
    pairs = [*signed_params(DOC_DLR).items(), ("status", "failed")]
    assert signature_error(provider(), sms_inbound(pairs)) == "SIGNATURE_MALFORMED"
    with pytest.raises(PayloadInvalid) as info:
        provider().parse(sms_inbound(pairs))
    assert info.value.field == "status"


def test_json_receipt_with_a_nested_value_is_malformed() -> None:
    params: dict[str, Any] = {**signed_params(DOC_DLR), "price": {"amount": "0.0333"}}
    assert signature_error(provider(), sms_inbound(params, "json")) == "SIGNATURE_MALFORMED"


def test_json_body_that_is_no_object_and_unsigned_is_refused() -> None:
    request = messages_inbound(b"[1, 2]", token=None)
    assert signature_error(provider(), request) == "SIGNATURE_MALFORMED"


# --- SMS API: the builder against the SDK -------------------------------------------------------


@pytest.mark.parametrize("method", HMAC_METHODS)
@pytest.mark.parametrize("transport", ["form", "json", "query"])
def test_builder_signature_checks_with_the_sdk(method: str, transport: Any) -> None:
    request = vonage_sms_request(
        SECRET,
        vonage_sms_report("0B00000127FDBC63", "delivered", msisdn="447547232824"),
        signature_method=method,  # type: ignore[arg-type]
        transport=transport,
        timestamp=NOW,
        provider="vonage",
    )
    inbound = from_builder(request)
    params = dict(vonage_signature_params(inbound))
    assert params["sig"] == params["sig"].upper()
    auth = Auth(api_key=API_KEY, signature_secret=SECRET, signature_method=method)
    assert auth.check_signature(dict(params)) is True
    provider(signature_method=method).verify(inbound, now=NOW)


def test_builder_md5hash_matches_the_documented_scheme() -> None:
    request = vonage_sms_request(
        SECRET, vonage_sms_report("0B00000127FDBC63", "delivered"), timestamp=NOW
    )
    params = dict(vonage_signature_params(from_builder(request)))
    assert params["sig"] == sdk_sig(params, method="md5hash")
    provider(signature_method="md5hash").verify(from_builder(request), now=NOW)


def vonage_signature_params(inbound: InboundRequest) -> list[tuple[str, str]]:
    if inbound.media_type == JSON:
        return list(json.loads(inbound.body).items())
    return inbound.params()


def test_signing_string_follows_the_documented_rules() -> None:
    params = {"b": "x&y=z", "a": "1", "sig": "ignored", "message-timestamp": "t", "messageId": "m"}
    assert vonage_signature.signing_string(params) == "&a=1&b=x_y_z&message-timestamp=t&messageId=m"


# --- SMS API: parse ----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["form", "json", "query"])
def test_documented_receipt_parses(transport: str) -> None:
    (report,) = provider().parse(sms_inbound(signed_params(DOC_DLR), transport))
    assert report == Report(
        event_id=derived_event_id("0B00000127FDBC63", "delivered", "0", "1810251310"),
        provider_message_id="0B00000127FDBC63",
        status=Status.DELIVERED,
        provider_status="delivered",
        occurred_at=datetime(2018, 10, 25, 12, 10, 29, tzinfo=UTC),
        to="+447547232824",
        error_code=None,
        error_message=None,
        network="234-10",  # the receipt's network-code 23410
    )


def test_redelivery_gets_the_same_event_id() -> None:
    first = sms_inbound(signed_params(DOC_DLR, timestamp=NOW, nonce=NONCE))
    again = sms_inbound(
        signed_params(DOC_DLR, timestamp=NOW + 40, nonce="5f0c3e36-0a39-4e8c-9d43-2b9df1d5b0a7"),
        "query",
        received_at=RECEIVED_AT + timedelta(seconds=40),
    )
    assert provider().parse(first)[0].event_id == provider().parse(again)[0].event_id


@pytest.mark.parametrize(
    "change", [{"status": "accepted"}, {"err-code": "1"}, {"scts": "1810251311"}]
)
def test_another_report_gets_another_event_id(change: dict[str, str]) -> None:
    base = provider().parse(sms_inbound(DOC_DLR))[0].event_id
    assert provider().parse(sms_inbound({**DOC_DLR, **change}))[0].event_id != base


def test_failure_keeps_the_error_code_and_its_meaning() -> None:
    fields = {**DOC_DLR, "status": "failed", "err-code": "2", "price": "0.00000000"}
    (report,) = provider().parse(sms_inbound(signed_params(fields)))
    assert report.status is Status.UNDELIVERED
    assert report.provider_status == "failed"
    assert report.error_code == "2"
    assert report.error_message == "Absent Subscriber - Temporary"


@pytest.mark.parametrize(("code", "meaning"), sorted(DLR_ERRORS.items()))
def test_documented_error_codes(code: str, meaning: str) -> None:
    (report,) = provider().parse(sms_inbound({**DOC_DLR, "status": "rejected", "err-code": code}))
    assert (report.error_code, report.error_message) == (code, meaning)


def test_undocumented_error_code_is_kept_without_a_meaning() -> None:
    (report,) = provider().parse(sms_inbound({**DOC_DLR, "status": "failed", "err-code": "57"}))
    assert (report.error_code, report.error_message) == ("57", None)


def test_occurred_at_falls_back_to_scts_then_arrival() -> None:
    without_timestamp = {k: v for k, v in DOC_DLR.items() if k != "message-timestamp"}
    (report,) = provider().parse(sms_inbound(without_timestamp))
    assert report.occurred_at == datetime(2018, 10, 25, 13, 10, tzinfo=UTC)
    bare = {"messageId": "0B00000127FDBC63", "status": "accepted"}
    (report,) = provider().parse(sms_inbound(bare))
    assert report.occurred_at == RECEIVED_AT
    assert report.to is None
    assert report.event_id == derived_event_id("0B00000127FDBC63", "accepted", None, None)


@pytest.mark.parametrize("transport", ["form", "json", "query"])
def test_client_ref_becomes_the_client_reference(transport: str) -> None:
    params = signed_params({**DOC_DLR, "client-ref": "order-8821-confirmation"})
    (report,) = provider().parse(sms_inbound(params, transport))
    assert report.client_reference == "order-8821-confirmation"
    (report,) = provider().parse(sms_inbound({**DOC_DLR, "client-ref": ""}, transport))
    assert report.client_reference is None


def test_blank_values_mean_absent() -> None:
    (report,) = provider().parse(sms_inbound({**DOC_DLR, "msisdn": "", "err-code": ""}))
    assert report.to is None
    assert report.error_code is None


@pytest.mark.parametrize(
    ("msisdn", "to"),
    [("447547232824", "+447547232824"), ("+14155550100", "+14155550100"), ("Vonage", None)],
)
def test_msisdn_becomes_e164(msisdn: str, to: str | None) -> None:
    (report,) = provider().parse(sms_inbound({**DOC_DLR, "msisdn": msisdn}))
    assert report.to == to


@pytest.mark.parametrize(("word", "status"), sorted(SMS_STATUS_MAP.items()))
def test_sms_status_mapping(word: str, status: Status) -> None:
    (report,) = provider().parse(sms_inbound({**DOC_DLR, "status": word}))
    assert report.status is status
    assert report.provider_status == word


def test_sms_status_table_is_the_documented_one() -> None:
    assert SMS_STATUS_MAP == {
        "accepted": Status.SENT,
        "buffered": Status.BUFFERED,
        "delivered": Status.DELIVERED,
        "expired": Status.EXPIRED,
        "failed": Status.UNDELIVERED,
        "rejected": Status.REJECTED,
        "unknown": Status.UNKNOWN,
    }


@pytest.mark.parametrize("word", ["DELIVRD", "Delivered", "submitted", "deleted"])
def test_unmapped_sms_status_kept_with_status_none(word: str) -> None:
    (report,) = provider().parse(sms_inbound({**DOC_DLR, "status": word}))
    assert report.status is None
    assert report.provider_status == word


SMS_INVALID = [
    pytest.param({"status": "delivered"}, "messageId", "required", id="no-message-id"),
    pytest.param({"messageId": "0B00000127FDBC63"}, "status", "required", id="no-status"),
    pytest.param({**DOC_DLR, "messageId": "has space"}, "messageId", "pattern", id="bad-id"),
    pytest.param({**DOC_DLR, "status": "x" * 65}, "status", "at most 64", id="long-status"),
    pytest.param({**DOC_DLR, "scts": "18102513"}, "scts", "pattern", id="short-scts"),
    pytest.param({**DOC_DLR, "scts": "1813251310"}, "scts", "YYMMDDhhmm", id="month-13"),
    pytest.param(
        {**DOC_DLR, "message-timestamp": "2018-10-25T12:10:29Z"},
        "message-timestamp",
        "pattern",
        id="iso-timestamp",
    ),
    pytest.param(
        {**DOC_DLR, "message-timestamp": "2018-02-30 12:10:29"},
        "message-timestamp",
        "valid date",
        id="february-30",
    ),
    pytest.param({**DOC_DLR, "err-code": "9" * 17}, "err-code", "at most 16", id="long-err"),
    pytest.param(
        {**DOC_DLR, "client-ref": "r" * 129}, "client-ref", "at most 128", id="long-client-ref"
    ),
]


@pytest.mark.parametrize(("fields", "field", "says"), SMS_INVALID)
@pytest.mark.parametrize("transport", ["form", "json"])
def test_invalid_receipt_names_the_field(
    fields: dict[str, str], field: str, says: str, transport: str
) -> None:
    with pytest.raises(PayloadInvalid) as info:
        provider().parse(sms_inbound(fields, transport))
    assert info.value.status == 400
    assert info.value.field == field
    assert says in info.value.detail


def test_json_receipt_null_and_nested_values() -> None:
    (report,) = provider().parse(sms_inbound({**DOC_DLR, "msisdn": None}, "json"))
    assert report.to is None
    with pytest.raises(PayloadInvalid) as info:
        provider().parse(sms_inbound({**DOC_DLR, "status": {"a": 1}}, "json"))
    assert info.value.field == "status"


# --- Messages API: verify ----------------------------------------------------------------------


def test_documented_status_with_pyjwt_token_verifies() -> None:
    provider().verify(messages_inbound(DOC_STATUS), now=NOW)


def test_messages_tokens_ignore_the_sms_signature_method() -> None:
    for method in ALL_METHODS:
        provider(signature_method=method).verify(messages_inbound(DOC_STATUS), now=NOW)


def test_messages_rotation() -> None:
    body = json.dumps(DOC_STATUS).encode()
    request = messages_inbound(body, token=mint(body, secret=NEW_SECRET))
    provider(secrets=[SECRET, NEW_SECRET]).verify(request, now=NOW)
    assert signature_error(provider(), request) == "SIGNATURE_INVALID"


def test_short_secret_still_verifies_without_warnings() -> None:
    short = "sig-secret-16chr"
    body = json.dumps(DOC_STATUS).encode()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        token = mint(body, secret=short)
    provider(secrets=[short]).verify(messages_inbound(body, token=token), now=NOW)


def test_tampered_body_refused() -> None:
    body = json.dumps(DOC_STATUS).encode()
    tampered = json.dumps({**DOC_STATUS, "status": "delivered"}).encode()
    request = messages_inbound(tampered, token=mint(body))
    assert signature_error(provider(), request) == "SIGNATURE_INVALID"


def test_reformatted_body_with_the_same_content_verifies() -> None:
    # payload_hash over the compact JSON (as Vonage's sample verifier hashes it);
    # the body arrives indented: the same content, so it is accepted.
    compact = json.dumps(DOC_STATUS, separators=(",", ":")).encode()
    pretty = json.dumps(DOC_STATUS, indent=2).encode()
    provider().verify(messages_inbound(pretty, token=mint(compact)), now=NOW)
    reordered = json.dumps(dict(reversed(DOC_STATUS.items()))).encode()
    request = messages_inbound(reordered, token=mint(compact))
    assert signature_error(provider(), request) == "SIGNATURE_INVALID"


def test_upper_case_payload_hash_accepted() -> None:
    body = json.dumps(DOC_STATUS).encode()
    token = mint(body, payload_hash=hashlib.sha256(body).hexdigest().upper())
    provider().verify(messages_inbound(body, token=token), now=NOW)


def test_stale_and_future_iat_refused() -> None:
    body = json.dumps(DOC_STATUS).encode()
    p = provider(tolerance_seconds=300)
    p.verify(messages_inbound(body, token=mint(body, iat=NOW - 300)), now=NOW)
    p.verify(messages_inbound(body, token=mint(body, iat=NOW + 300)), now=NOW)
    stale = messages_inbound(body, token=mint(body, iat=NOW - 301))
    future = messages_inbound(body, token=mint(body, iat=NOW + 301))
    assert signature_error(p, stale) == "TIMESTAMP_STALE"
    assert signature_error(p, future) == "TIMESTAMP_FUTURE"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"drop": ("iat",)}, "SIGNATURE_MALFORMED"),
        ({"iat": "1764000000"}, "SIGNATURE_MALFORMED"),
        ({"iat": float("inf")}, "SIGNATURE_MALFORMED"),
        ({"iat": float("nan")}, "SIGNATURE_MALFORMED"),
        ({"iat": NOW + 0.5}, None),
        ({"drop": ("payload_hash",)}, "SIGNATURE_MALFORMED"),
        ({"payload_hash": "0" * 64}, "SIGNATURE_INVALID"),
        ({"algorithm": "HS512"}, "SIGNATURE_INVALID"),
    ],
    ids=[
        "no-iat",
        "string-iat",
        "infinite-iat",
        "nan-iat",
        "fractional-iat-is-fine",
        "no-payload-hash",
        "wrong-hash",
        "hs512",
    ],
)
def test_token_claims(kwargs: dict[str, Any], code: str | None) -> None:
    body = json.dumps(DOC_STATUS).encode()
    request = messages_inbound(body, token=mint(body, **kwargs))
    if code is None:
        provider().verify(request, now=NOW)
    else:
        assert signature_error(provider(), request) == code


def test_unsigned_none_algorithm_refused() -> None:
    body = json.dumps(DOC_STATUS).encode()
    claims = {"iat": NOW, "payload_hash": hashlib.sha256(body).hexdigest()}
    token = jwt.encode(claims, None, algorithm="none")
    assert signature_error(provider(), messages_inbound(body, token=token)) == ("SIGNATURE_INVALID")


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-jwt", "Bearer a.b.c", "Basic YWJjZDEyMzQ6c2VjcmV0", "Bearer "],
)
def test_malformed_authorization_refused(authorization: str) -> None:
    request = messages_inbound(DOC_STATUS, authorization=authorization)
    assert signature_error(provider(), request) == "SIGNATURE_MALFORMED"


def test_unsigned_messages_callback_asks_for_a_retry() -> None:
    with pytest.raises(RetryLater) as info:
        provider().verify(messages_inbound(DOC_STATUS, token=None), now=NOW)
    assert info.value.status == 503
    assert info.value.code == "RETRY_LATER"
    assert info.value.retry_after > 0


def test_unsigned_messages_callback_is_accepted_only_when_verification_is_off() -> None:
    p = provider(secrets=[], insecure_no_signature=True)
    assert not p.verifies
    (report,) = p.parse(messages_inbound(DOC_STATUS, token=None))
    assert report.provider_message_id == DOC_STATUS["message_uuid"]


def test_builder_token_checks_with_the_sdk() -> None:
    request = vonage_messages_request(
        SECRET, DOC_STATUS, provider="vonage", api_key="a1b2c3d", issued_at=NOW
    )
    token = request.headers["authorization"].removeprefix("Bearer ")
    assert verify_signature(token, SECRET) is True
    assert verify_signature(token, NEW_SECRET) is False
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_iat": False})
    assert claims["payload_hash"] == hashlib.sha256(request.body).hexdigest()
    assert (claims["iat"], claims["iss"], claims["api_key"]) == (NOW, "Vonage", "a1b2c3d")
    provider().verify(from_builder(request), now=NOW)


def test_builder_can_leave_the_signature_out() -> None:
    request = vonage_messages_request(SECRET, DOC_STATUS, signed=False)
    assert "authorization" not in request.headers
    with pytest.raises(RetryLater):
        provider().verify(from_builder(request), now=NOW)


def test_builder_status_payload_has_the_documented_shape() -> None:
    payload = vonage_message_status(
        "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab",
        "rejected",
        timestamp=datetime(2025, 2, 3, 13, 14, 25, tzinfo=timezone(timedelta(hours=1))),
        client_ref="abc123",
        error={"type": "https://developer.vonage.com/api-errors/messages#1320", "title": 1320},
    )
    assert payload == {
        "message_uuid": "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab",
        "to": "447700900000",
        "from": "447700900001",
        "timestamp": "2025-02-03T12:14:25Z",
        "status": "rejected",
        "channel": "sms",
        "client_ref": "abc123",
        "error": {"type": "https://developer.vonage.com/api-errors/messages#1320", "title": 1320},
    }
    (report,) = provider().parse(from_builder(vonage_messages_request(SECRET, payload)))
    assert (report.status, report.error_code) == (Status.REJECTED, "1320")


def test_vonage_request_dispatches_on_the_payload() -> None:
    messages = vonage_request(SECRET, DOC_STATUS, issued_at=NOW)
    sms = vonage_request(SECRET, DOC_DLR, timestamp=NOW, signature_method="sha256")
    assert messages.headers["authorization"].startswith("Bearer ")
    assert b"sig=" in sms.body
    provider().verify(from_builder(messages), now=NOW)
    provider().verify(from_builder(sms), now=NOW)


# --- Messages API: parse -----------------------------------------------------------------------


def test_documented_status_parses() -> None:
    (report,) = provider().parse(messages_inbound(DOC_STATUS))
    assert report == Report(
        event_id=derived_event_id(
            "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab", "submitted", "2025-02-03T12:14:25Z"
        ),
        provider_message_id="aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab",
        status=Status.SENT,
        provider_status="submitted",
        occurred_at=datetime(2025, 2, 3, 12, 14, 25, tzinfo=UTC),
        to="+447700900000",
        error_code="1000",
        error_message=DOC_STATUS["error"]["detail"],
        client_reference="abc123",
    )


def test_numeric_error_title_and_word_titles() -> None:
    numeric = {**DOC_STATUS, "error": {**DOC_STATUS["error"], "title": 1000}}
    assert provider().parse(messages_inbound(numeric))[0].error_code == "1000"
    worded = {
        **DOC_STATUS,
        "status": "rejected",
        "error": {
            "type": "https://developer.vonage.com/api-errors/messages#1020",
            "title": "Invalid params",
        },
    }
    (report,) = provider().parse(messages_inbound(worded))
    assert (report.error_code, report.error_message) == ("1020", "Invalid params")


def test_status_redelivery_same_event_id() -> None:
    first = messages_inbound(DOC_STATUS)
    again = messages_inbound(DOC_STATUS, received_at=RECEIVED_AT + timedelta(minutes=5))
    assert provider().parse(first)[0].event_id == provider().parse(again)[0].event_id
    later = {**DOC_STATUS, "timestamp": "2025-02-03T12:14:26Z"}
    assert provider().parse(messages_inbound(later))[0].event_id != (
        provider().parse(first)[0].event_id
    )


@pytest.mark.parametrize(
    "stamp",
    ["2025-02-03T12:14:25Z", "2025-02-03T12:14:25.000Z", "2025-02-03T13:14:25+01:00"],
)
def test_status_timestamp_in_utc(stamp: str) -> None:
    (report,) = provider().parse(messages_inbound({**DOC_STATUS, "timestamp": stamp}))
    assert report.occurred_at == datetime(2025, 2, 3, 12, 14, 25, tzinfo=UTC)
    assert report.occurred_at.tzinfo is UTC


@pytest.mark.parametrize(("word", "status"), sorted(MESSAGES_STATUS_MAP.items()))
def test_messages_status_mapping(word: str, status: Status) -> None:
    (report,) = provider().parse(messages_inbound({**DELIVERED_STATUS, "status": word}))
    assert report.status is status
    assert report.provider_status == word


def test_messages_status_table_is_the_documented_one() -> None:
    assert MESSAGES_STATUS_MAP == {
        "submitted": Status.SENT,
        "delivered": Status.DELIVERED,
        "read": Status.DELIVERED,
        "rejected": Status.REJECTED,
        "undeliverable": Status.FAILED,
    }


@pytest.mark.parametrize("word", ["accepted", "failed", "Delivered", "deleted"])
def test_unmapped_messages_status_kept_with_status_none(word: str) -> None:
    (report,) = provider().parse(messages_inbound({**DELIVERED_STATUS, "status": word}))
    assert report.status is None
    assert report.provider_status == word


@pytest.mark.parametrize(
    ("channel", "to", "expected"),
    [
        ("whatsapp", "447700900000", "+447700900000"),
        ("messenger", "1234567890", None),
        ("sms", "not-a-number", None),
    ],
)
def test_to_by_channel(channel: str, to: str, expected: str | None) -> None:
    payload = {**DELIVERED_STATUS, "channel": channel, "to": to}
    assert provider().parse(messages_inbound(payload))[0].to == expected


MESSAGES_INVALID = [
    pytest.param(b"{not json", "body", "JSON object", id="invalid-json"),
    pytest.param(b"[1, 2]", "body", "JSON object", id="array"),
    pytest.param(
        {k: v for k, v in DELIVERED_STATUS.items() if k != "status"},
        "status",
        "required",
        id="no-status",
    ),
    pytest.param(
        {k: v for k, v in DELIVERED_STATUS.items() if k != "timestamp"},
        "timestamp",
        "required",
        id="no-timestamp",
    ),
    pytest.param(
        {**DELIVERED_STATUS, "timestamp": "2025-02-03T12:14:25"},
        "timestamp",
        "timezone",
        id="naive-timestamp",
    ),
    pytest.param(
        {**DELIVERED_STATUS, "timestamp": "soon"}, "timestamp", "datetime", id="bad-timestamp"
    ),
    pytest.param(
        {**DELIVERED_STATUS, "error": "boom"}, "error", "dictionary", id="error-not-object"
    ),
    pytest.param({**DELIVERED_STATUS, "status": ""}, "status", "at least 1", id="empty-status"),
]


@pytest.mark.parametrize(("payload", "field", "says"), MESSAGES_INVALID)
def test_invalid_status_names_the_field(payload: Any, field: str, says: str) -> None:
    with pytest.raises(PayloadInvalid) as info:
        provider().parse(messages_inbound(payload))
    assert info.value.field == field
    assert says in info.value.detail


def test_a_messages_body_without_message_uuid_but_signed_is_a_400() -> None:
    payload = {k: v for k, v in DELIVERED_STATUS.items() if k != "message_uuid"}
    request = messages_inbound(payload)
    provider().verify(request, now=NOW)  # signed: the signature is fine
    with pytest.raises(PayloadInvalid) as info:
        provider().parse(request)
    assert info.value.field == "message_uuid"


# --- answer ------------------------------------------------------------------------------------


def test_answer_is_a_200_with_the_counts() -> None:
    answer = provider().answer(Outcome(received=1, applied=1))
    assert answer.status == 200
    assert json.loads(answer.body) == {
        "received": 1,
        "applied": 1,
        "duplicates": 0,
        "superseded": 0,
    }


# --- end to end through `receiver serve` -------------------------------------------------------


def test_documented_payloads_end_to_end(server_factory: Any) -> None:
    server = server_factory(
        providers={"vonage": {"type": "vonage", "secrets": [SECRET], "signature_method": "sha256"}}
    )

    def sms(transport: str, fields: dict[str, str] = DOC_DLR) -> SignedRequest:
        return vonage_sms_request(
            SECRET, fields, provider="vonage", signature_method="sha256", transport=transport
        )

    # The documented SMS API receipt, as a GET; then Vonage's redelivery as a POST form.
    answer = server.post(sms("query"))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 1, "applied": 1, "duplicates": 0, "superseded": 0}
    again = server.post(sms("form"))
    assert again.json() == {"received": 1, "applied": 0, "duplicates": 1, "superseded": 0}
    # A later failure for the same message as JSON: recorded, but delivered stays.
    failed = {**DOC_DLR, "status": "failed", "err-code": "2", "scts": "1810251312"}
    assert server.post(sms("json", failed)).json()["superseded"] == 1

    # The documented Messages API status (submitted), then delivered.
    submitted = vonage_messages_request(SECRET, DOC_STATUS, provider="vonage")
    assert server.post(submitted).json() == {
        "received": 1,
        "applied": 1,
        "duplicates": 0,
        "superseded": 0,
    }
    delivered = vonage_messages_request(SECRET, DELIVERED_STATUS, provider="vonage")
    assert server.post(delivered).json()["applied"] == 1

    # An unsigned Messages callback: 503 so that Vonage sends it again, signed.
    unsigned = vonage_messages_request(SECRET, DELIVERED_STATUS, provider="vonage", signed=False)
    refused = server.post(unsigned)
    assert refused.status_code == 503
    assert refused.headers["retry-after"]
    assert refused.json()["code"] == "RETRY_LATER"

    # Wrong secret and stale timestamp: 401 naming the check.
    forged = vonage_sms_request(NEW_SECRET, DOC_DLR, provider="vonage", signature_method="sha256")
    assert server.post(forged).json()["code"] == "SIGNATURE_INVALID"
    stale = vonage_sms_request(
        SECRET,
        DOC_DLR,
        provider="vonage",
        signature_method="sha256",
        timestamp=int(time.time()) - 3600,
    )
    answer = server.post(stale)
    assert (answer.status_code, answer.json()["code"]) == (401, "TIMESTAMP_STALE")

    with server.api(server.staff_token("vonage-reader", "sender")) as api:
        (sms_message,) = api.get(
            "/v1/messages", params={"provider_message_id": "0B00000127FDBC63"}
        ).json()["items"]
        (mapi_message,) = api.get(
            "/v1/messages", params={"provider_message_id": DOC_STATUS["message_uuid"]}
        ).json()["items"]
        sms_events = api.get(f"/v1/messages/{sms_message['id']}/events").json()["items"]
    assert (sms_message["provider"], sms_message["status"], sms_message["final"]) == (
        "vonage",
        "delivered",
        True,
    )
    assert sms_message["to"] == "+447547232824"
    assert [(e["provider_status"], e["outcome"], e["deliveries"]) for e in sms_events] == [
        ("delivered", "applied", 2),
        ("failed", "superseded", 1),
    ]
    assert sms_events[1]["error_code"] == "2"
    assert (mapi_message["status"], mapi_message["to"]) == ("delivered", "+447700900000")
    assert mapi_message["client_reference"] == "abc123"
