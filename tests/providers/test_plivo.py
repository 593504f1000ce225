"""Provider type ``plivo``: signatures (checked against the official plivo SDK), config,
parse, status mapping and one end-to-end run through ``receiver serve``."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from plivo.utils import validate_signature
from plivo.utils.signature_v3 import (
    construct_get_url,
    construct_post_url,
    get_signature_v3,
    validate_v3_signature,
)
from pydantic import ValidationError

from receiver.core.reports import derived_event_id
from receiver.core.signatures import plivo as scheme
from receiver.core.status import Status
from receiver.errors import PayloadInvalid, SignatureError
from receiver.providers import PROVIDER_TYPES
from receiver.providers.base import FORM, InboundRequest
from receiver.providers.plivo import PlivoConfig, PlivoProvider
from receiver.testing.base import SignedRequest
from receiver.testing.plivo import plivo_report, plivo_request

TOKEN = "MzkxZTZlYTAwNzQ1NGYwYTliMDRkYzg3ZDVjNzk0"  # a subaccount's Auth Token (40 chars)
MAIN_TOKEN = "ZGFhNTk1OGI1MWM0NjdlMzFkNjE1ZTFmMDc4OWQz"  # the main account's
OTHER_TOKEN = "NWQ0MzAxYjUyNWJmNGE2ZTgxOTk3OGIwYzJkMWQ4"
BASE = "https://dlr.example.com"
URL = f"{BASE}/webhooks/plivo"
NONCE = "05429567804466091622"
RECEIVED_AT = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)
UUID = "2b7c8a42-8b1f-11f1-9c3e-0242ac110004"

# A delivered callback with every field of the message status callback reference
# (https://www.plivo.com/docs/messaging/api/message/message-status-callbacks).
DELIVERED = {
    "MessageUUID": UUID,
    "To": "14155550123",
    "From": "14155550100",
    "Type": "sms",
    "Status": "delivered",
    "Units": "1",
    "TotalRate": "0.00550",
    "TotalAmount": "0.00550",
    "MCC": "310",
    "MNC": "260",
    "ErrorCode": "",
    "ParentMessageUUID": UUID,
    "PartInfo": "",
    "Sequence": "3",
    "MessageTime": "2026-11-23 09:59:51.480716",
    "QueuedTime": "2026-11-23 09:59:51.512034",
    "SentTime": "2026-11-23 09:59:52.004118",
    "DeliveryReportTime": "2026-11-23 09:59:58.120544",
    "PowerpackUUID": "",
    "requester_ip": "203.0.113.17",
}
DELIVERED_AT = datetime(2026, 11, 23, 9, 59, 58, 120544, tzinfo=UTC)


def provider(**config: Any) -> PlivoProvider:
    config.setdefault("secrets", [TOKEN])
    return PlivoProvider("plivo", PlivoConfig(type="plivo", **config))


def sdk_v3(token: str, method: str, url: str, params: dict[str, str], nonce: str) -> str:
    """X-Plivo-Signature-V3 as the official SDK computes it."""
    if method == "GET":
        signed = construct_get_url(url, dict(params))
    else:
        signed = construct_post_url(url, dict(params))
    return get_signature_v3(token, signed.decode(), nonce).decode()


def sdk_v2(token: str, url: str, nonce: str) -> str:
    """X-Plivo-Signature-V2 by hand, as the messaging docs describe it (the SDK only
    validates); every test that uses it also checks it with ``validate_signature``."""
    base = url.split("?")[0]
    digest = hmac.new(token.encode(), (base + nonce).encode(), hashlib.sha256).digest()
    signature = base64.b64encode(digest).decode()
    assert validate_signature(url, nonce, signature, token)
    return signature


def inbound(
    method: str = "POST",
    params: dict[str, str] | None = None,
    *,
    url: str = URL,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> InboundRequest:
    """The request as the edge hands it over: POST params in a form body, GET in the URL."""
    params = DELIVERED if params is None else params
    if method == "GET":
        url = url + ("&" if "?" in url else "?") + urlencode(params)
        body = b"" if body is None else body
    elif body is None:
        body = urlencode(params).encode()
    return InboundRequest(
        method=method,
        url=url,
        headers={k.lower(): v for k, v in (headers or {}).items()},
        query_string=url.partition("?")[2].encode(),
        body=body,
        media_type=FORM if method == "POST" else "",
        received_at=RECEIVED_AT,
    )


def v3_request(
    params: dict[str, str] | None = None,
    *,
    method: str = "POST",
    token: str = TOKEN,
    url: str = URL,
    header: str = "X-Plivo-Signature-V3",
) -> InboundRequest:
    """A request signed by the SDK (for GET the params are signed as part of the URL)."""
    params = DELIVERED if params is None else params
    full = inbound(method, params, url=url).url
    signature = sdk_v3(token, method, full if method == "GET" else url, params, NONCE)
    return inbound(
        method,
        params,
        url=url,
        headers={header: signature, "X-Plivo-Signature-V3-Nonce": NONCE},
    )


def from_builder(signed: SignedRequest, base: str = BASE) -> InboundRequest:
    url = base + signed.path
    return InboundRequest(
        method=signed.method,
        url=url,
        headers={k.lower(): v for k, v in signed.headers.items()},
        query_string=url.partition("?")[2].encode(),
        body=signed.body,
        media_type=FORM if signed.method == "POST" else "",
        received_at=RECEIVED_AT,
    )


def refused(request: InboundRequest, code: str, **config: Any) -> SignatureError:
    with pytest.raises(SignatureError) as info:
        provider(**config).verify(request, now=RECEIVED_AT.timestamp())
    assert info.value.code == code
    assert info.value.status == 401
    return info.value


# --- the class and its config ---------------------------------------------------------------


def test_class_attributes_and_registration() -> None:
    assert PROVIDER_TYPES["plivo"] is PlivoProvider
    assert PlivoProvider.config_model is PlivoConfig
    assert frozenset({FORM}) == PlivoProvider.media_types
    assert frozenset({"GET", "POST"}) == PlivoProvider.methods


def test_config_defaults() -> None:
    config = PlivoConfig(type="plivo", secrets=[TOKEN])
    assert config.auth_id is None
    assert config.accept_v2_signatures is True
    assert config.tolerance_seconds == 300
    assert provider().verifies is True


def test_config_full() -> None:
    config = PlivoConfig.model_validate(
        {
            "type": "plivo",
            "secrets": [TOKEN, MAIN_TOKEN],
            "auth_id": "SAYTK0M2MZNJA1MJQ4Y2",
            "accept_v2_signatures": False,
            "allowed_ips": ["18.214.109.128/27"],
        }
    )
    assert config.secrets == [TOKEN, MAIN_TOKEN]
    assert config.auth_id == "SAYTK0M2MZNJA1MJQ4Y2"
    assert config.accept_v2_signatures is False


def test_config_needs_a_token() -> None:
    with pytest.raises(ValidationError, match="at least one secret"):
        PlivoConfig(type="plivo")
    with pytest.raises(ValidationError, match="insecure_no_signature"):
        PlivoConfig(type="plivo", secrets=[])


@pytest.mark.parametrize(
    ("secrets", "match"),
    [
        pytest.param(["short"], r"secrets\[0\]: must be a Plivo Auth Token", id="short"),
        pytest.param([TOKEN, TOKEN + " "], r"secrets\[1\]", id="trailing-space"),
        pytest.param(["has a space in the token!"], r"secrets\[0\]", id="space"),
        pytest.param(["é" * 20], r"secrets\[0\]", id="non-ascii"),
        pytest.param(["x" * 257], r"secrets\[0\]", id="too-long"),
    ],
)
def test_bad_tokens_rejected(secrets: list[str], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        PlivoConfig(type="plivo", secrets=secrets)


@pytest.mark.parametrize(
    "auth_id", ["MAYTK0M2MZNJA1MJQ4Y", "XXYTK0M2MZNJA1MJQ4Y2", "mayTK0M2MZNJA1MJQ4Y2", ""]
)
def test_bad_auth_id_rejected(auth_id: str) -> None:
    with pytest.raises(ValidationError, match="auth_id"):
        PlivoConfig(type="plivo", secrets=[TOKEN], auth_id=auth_id)


@pytest.mark.parametrize(
    "extra", [{"auth_token": TOKEN}, {"signature_version": "v3"}, {"secret": TOKEN}]
)
def test_unknown_key_rejected(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        PlivoConfig(type="plivo", secrets=[TOKEN], **extra)
    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]
    assert info.value.errors()[0]["loc"] == (next(iter(extra)),)


@pytest.mark.parametrize("type_", ["standard", "Plivo", ""])
def test_wrong_type_rejected(type_: str) -> None:
    with pytest.raises(ValidationError):
        PlivoConfig(type=type_, secrets=[TOKEN])  # type: ignore[arg-type]


# --- the signature scheme against the SDK ---------------------------------------------------

URLS = [
    pytest.param(URL, id="no-query"),
    pytest.param(f"{URL}?tenant=acme", id="query"),
    pytest.param(f"{URL}?b=2&a=1&a=0", id="repeated-key"),
    pytest.param(f"{URL}?note=x+y%20z&empty=&flag", id="encoded-and-blank"),
    pytest.param("http://127.0.0.1:8000/webhooks/plivo?x=%2F", id="port-and-slash"),
]
PARAM_SETS = [
    pytest.param(DELIVERED, id="delivered"),
    pytest.param({}, id="no-params"),
    pytest.param({"Z": "1", "A": "2", "M": "", "Text": "héllo wörld & more"}, id="unicode"),
]


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("params", PARAM_SETS)
def test_v3_signed_url_matches_sdk_post(url: str, params: dict[str, str]) -> None:
    expected = construct_post_url(url, dict(params)).decode()
    assert scheme.v3_signed_url("POST", url, list(params.items())) == expected


@pytest.mark.parametrize("url", URLS)
def test_v3_signed_url_matches_sdk_get(url: str) -> None:
    assert scheme.v3_signed_url("GET", url) == construct_get_url(url, {}).decode()


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("params", PARAM_SETS)
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_sign_v3_matches_sdk(url: str, params: dict[str, str], method: str) -> None:
    form = list(params.items()) if method == "POST" else []
    ours = scheme.sign_v3(TOKEN, method, url, NONCE, form)
    assert ours == sdk_v3(TOKEN, method, url, params if method == "POST" else {}, NONCE)
    sdk_params = dict(params) if method == "POST" and params else None
    assert validate_v3_signature(method, url, NONCE, TOKEN, ours, sdk_params)


def test_v3_signed_url_documented_shape() -> None:
    form = [("Z", "1"), ("A", "2")]
    assert scheme.v3_signed_url("POST", f"{URL}?b=2&a=1", form) == f"{URL}?a=1&b=2.A2Z1"
    assert scheme.v3_signed_url("POST", URL, form) == f"{URL}?A2Z1"
    assert scheme.v3_signed_url("POST", f"{URL}?b=2", []) == f"{URL}?b=2"
    assert scheme.v3_signed_url("GET", f"{URL}?b=2&a=1") == f"{URL}?a=1&b=2"


@pytest.mark.parametrize("url", URLS)
def test_sign_v2_matches_docs_and_sdk(url: str) -> None:
    ours = scheme.sign_v2(TOKEN, url, NONCE)
    assert ours == sdk_v2(TOKEN, url, NONCE)
    assert validate_signature(url, NONCE, ours, TOKEN)


def test_sign_v2_documented_example_message() -> None:
    # The docs: base URI https://<yourdomain>.com/answer/ + nonce 05429567804466091622.
    digest = hmac.new(
        TOKEN.encode(), b"https://example.com/answer/05429567804466091622", hashlib.sha256
    ).digest()
    expected = base64.b64encode(digest).decode()
    assert scheme.sign_v2(TOKEN, "https://example.com/answer/?x=1", NONCE) == expected


# --- the testing builder, checked with the SDK's validators ---------------------------------


@pytest.mark.parametrize("query", ["", "tenant=acme&b=2"])
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_builder_v3_verifies_with_sdk(method: str, query: str) -> None:
    params = plivo_report(UUID, "delivered", sequence=3, delivery_report_time=DELIVERED_AT)
    signed = plivo_request(
        TOKEN, params, provider="plivo", public_base_url=BASE, method=method, query=query
    )
    url = BASE + signed.path
    assert signed.method == method
    nonce = signed.headers["X-Plivo-Signature-V3-Nonce"]
    signature = signed.headers["X-Plivo-Signature-V3"]
    sdk_params = params if method == "POST" else None
    assert validate_v3_signature(method, url, nonce, TOKEN, signature, sdk_params)
    assert not validate_v3_signature(method, url, nonce, OTHER_TOKEN, signature, sdk_params)
    if method == "POST":
        assert signed.headers["Content-Type"] == FORM
        assert signed.body == urlencode(params).encode()
    else:
        assert signed.body == b""
        assert signed.path.startswith("/webhooks/plivo?" + (query + "&" if query else ""))
    provider().verify(from_builder(signed), now=0)


def test_builder_v2_verifies_with_sdk() -> None:
    params = plivo_report(UUID, "sent", sequence=1)
    signed = plivo_request(TOKEN, params, provider="plivo", public_base_url=BASE, version="v2")
    nonce = signed.headers["X-Plivo-Signature-V2-Nonce"]
    assert validate_signature(
        BASE + signed.path, nonce, signed.headers["X-Plivo-Signature-V2"], TOKEN
    )
    assert "X-Plivo-Signature-V3" not in signed.headers
    provider().verify(from_builder(signed), now=0)


def test_builder_main_account_headers() -> None:
    params = plivo_report(UUID, "sent")
    v3 = plivo_request(
        MAIN_TOKEN, params, provider="plivo", public_base_url=BASE, main_account=True
    )
    assert set(v3.headers) == {
        "X-Plivo-Signature-Ma-V3",
        "X-Plivo-Signature-V3-Nonce",
        "Content-Type",
    }
    provider(secrets=[TOKEN, MAIN_TOKEN]).verify(from_builder(v3), now=0)
    v2 = plivo_request(
        MAIN_TOKEN, params, provider="plivo", public_base_url=BASE, version="v2", main_account=True
    )
    assert "X-Plivo-Signature-Ma-V2" in v2.headers
    provider(secrets=[TOKEN, MAIN_TOKEN]).verify(from_builder(v2), now=0)


def test_builder_report_fields() -> None:
    params = plivo_report(
        UUID,
        "undelivered",
        error_code="30",
        sequence=4,
        sent_time=datetime(2026, 11, 23, 9, 59, 52, 4118),
        units=2,
    )
    assert params["Status"] == "undelivered"
    assert params["ErrorCode"] == "30"
    assert params["Sequence"] == "4"
    assert params["SentTime"] == "2026-11-23 09:59:52.004118"
    assert params["DeliveryReportTime"] == ""
    assert params["TotalAmount"] == "0.01100"
    assert set(DELIVERED) - {"requester_ip"} <= set(params)


def test_builder_nonce_is_fresh_and_numeric() -> None:
    params = plivo_report(UUID, "sent")
    nonces = {plivo_request(TOKEN, params).headers["X-Plivo-Signature-V3-Nonce"] for _ in range(5)}
    assert len(nonces) == 5
    assert all(len(n) == 20 and n.isdigit() for n in nonces)


# --- verify ---------------------------------------------------------------------------------


def test_verify_accepts_sdk_signed_post() -> None:
    provider().verify(v3_request(), now=RECEIVED_AT.timestamp())


def test_verify_accepts_sdk_signed_get() -> None:
    provider().verify(v3_request(method="GET"), now=RECEIVED_AT.timestamp())


def test_verify_accepts_sdk_signed_post_with_own_query() -> None:
    provider().verify(v3_request(url=f"{URL}?tenant=acme&region=eu"), now=0)


def test_verify_has_no_freshness_check() -> None:
    # Neither V3 nor V2 signs a time: a captured request verifies forever (the processed
    # set makes its replay a duplicate), whatever the clock says.
    request = v3_request()
    for now in (0.0, RECEIVED_AT.timestamp() + 86400 * 365, RECEIVED_AT.timestamp() - 86400):
        provider(tolerance_seconds=1).verify(request, now=now)


def test_verify_accepts_main_account_header() -> None:
    request = v3_request(token=MAIN_TOKEN, header="X-Plivo-Signature-Ma-V3")
    provider(secrets=[TOKEN, MAIN_TOKEN]).verify(request, now=0)
    refused(request, "SIGNATURE_INVALID")


def test_verify_tries_every_token() -> None:
    p = provider(secrets=[OTHER_TOKEN, TOKEN])
    p.verify(v3_request(token=TOKEN), now=0)
    p.verify(v3_request(token=OTHER_TOKEN), now=0)


def test_verify_accepts_one_match_in_a_comma_list() -> None:
    good = sdk_v3(TOKEN, "POST", URL, DELIVERED, NONCE)
    bad = sdk_v3(OTHER_TOKEN, "POST", URL, DELIVERED, NONCE)
    for header in (f"{bad},{good}", f"{good},{bad}", f"{bad}, {good}", f"not-base64,{good}"):
        request = inbound(
            headers={"X-Plivo-Signature-V3": header, "X-Plivo-Signature-V3-Nonce": NONCE}
        )
        provider().verify(request, now=0)
        assert validate_v3_signature("POST", URL, NONCE, TOKEN, header.replace(" ", ""), DELIVERED)


def test_verify_rejects_wrong_token() -> None:
    error = refused(v3_request(token=OTHER_TOKEN), "SIGNATURE_INVALID")
    assert "V3" in error.detail
    assert TOKEN not in error.detail


TAMPERED_BODIES = [
    pytest.param({**DELIVERED, "Status": "undelivered"}, id="status"),
    pytest.param({**DELIVERED, "ErrorCode": "30"}, id="error-code"),
    pytest.param({**DELIVERED, "MessageUUID": UUID.replace("2b", "3c")}, id="uuid"),
    pytest.param({**DELIVERED, "Extra": "1"}, id="added-field"),
    pytest.param({k: v for k, v in DELIVERED.items() if k != "ErrorCode"}, id="dropped-blank"),
]


@pytest.mark.parametrize("tampered", TAMPERED_BODIES)
def test_verify_rejects_tampered_body(tampered: dict[str, str]) -> None:
    signed = v3_request()
    request = dataclasses.replace(signed, body=urlencode(tampered).encode())
    refused(request, "SIGNATURE_INVALID")


@pytest.mark.parametrize("tampered", TAMPERED_BODIES)
def test_verify_rejects_tampered_get_query(tampered: dict[str, str]) -> None:
    signed = v3_request(method="GET")
    url = inbound("GET", tampered).url
    refused(dataclasses.replace(signed, url=url), "SIGNATURE_INVALID")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://evil.example.com/webhooks/plivo", id="host"),
        pytest.param("http://dlr.example.com/webhooks/plivo", id="scheme"),
        pytest.param("https://dlr.example.com/webhooks/plivo2", id="path"),
        pytest.param("https://dlr.example.com:8443/webhooks/plivo", id="port"),
        pytest.param("https://dlr.example.com/webhooks/plivo?tenant=other", id="query-added"),
    ],
)
def test_verify_rejects_tampered_url(url: str) -> None:
    signed = v3_request()
    refused(dataclasses.replace(signed, url=url), "SIGNATURE_INVALID")


def test_verify_rejects_changed_own_query() -> None:
    signed = v3_request(url=f"{URL}?tenant=acme")
    refused(dataclasses.replace(signed, url=f"{URL}?tenant=evil"), "SIGNATURE_INVALID")


def test_verify_rejects_changed_nonce() -> None:
    signed = v3_request()
    headers = {**signed.headers, "x-plivo-signature-v3-nonce": "05429567804466091623"}
    refused(dataclasses.replace(signed, headers=headers), "SIGNATURE_INVALID")


def test_verify_refuses_post_signed_as_get() -> None:
    # A GET-shaped signature over the same URL must not verify a POST body.
    signature = sdk_v3(TOKEN, "GET", URL, {}, NONCE)
    request = inbound(
        headers={"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": NONCE}
    )
    refused(request, "SIGNATURE_INVALID")


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        pytest.param({}, "SIGNATURE_MISSING", id="none"),
        pytest.param({"X-Plivo-Signature-V3-Nonce": NONCE}, "SIGNATURE_MISSING", id="nonce-only"),
        pytest.param({"X-Plivo-Signature-V3": "x"}, "SIGNATURE_MISSING", id="no-nonce"),
        pytest.param(
            {"X-Plivo-Signature-V3": "", "X-Plivo-Signature-V3-Nonce": NONCE},
            "SIGNATURE_MISSING",
            id="empty-signature",
        ),
        pytest.param(
            {"X-Plivo-Signature-V3": "%%%not base64", "X-Plivo-Signature-V3-Nonce": NONCE},
            "SIGNATURE_MALFORMED",
            id="not-base64",
        ),
        pytest.param(
            {"X-Plivo-Signature-V3": "c2hvcnQ=", "X-Plivo-Signature-V3-Nonce": NONCE},
            "SIGNATURE_MALFORMED",
            id="wrong-length",
        ),
        pytest.param(
            {"X-Plivo-Signature-V3": "ÿÿÿÿ", "X-Plivo-Signature-V3-Nonce": NONCE},
            "SIGNATURE_MALFORMED",
            id="non-ascii",
        ),
        pytest.param(
            {"X-Plivo-Signature-V3": ",,,", "X-Plivo-Signature-V3-Nonce": NONCE},
            "SIGNATURE_MALFORMED",
            id="only-commas",
        ),
        pytest.param(
            {"X-Plivo-Signature-V3": "A" * 44, "X-Plivo-Signature-V3-Nonce": "a\nb"},
            "SIGNATURE_MALFORMED",
            id="nonce-control-char",
        ),
        pytest.param(
            {"X-Plivo-Signature-V3": "A" * 44, "X-Plivo-Signature-V3-Nonce": "1" * 257},
            "SIGNATURE_MALFORMED",
            id="nonce-too-long",
        ),
        pytest.param(
            {"X-Plivo-Signature-V2": "A" * 44}, "SIGNATURE_MISSING", id="v2-without-nonce"
        ),
        pytest.param(
            {"X-Plivo-Signature": "Ma7fvTryuU51vDGO2IT5/KhivpI="},
            "SIGNATURE_MISSING",
            id="legacy-v1-header",
        ),
    ],
)
def test_verify_missing_or_malformed_headers(headers: dict[str, str], code: str) -> None:
    refused(inbound(headers=headers), code)


def test_verify_v2_accepted_by_default() -> None:
    signature = sdk_v2(TOKEN, URL, NONCE)
    request = inbound(
        headers={"X-Plivo-Signature-V2": signature, "X-Plivo-Signature-V2-Nonce": NONCE}
    )
    provider().verify(request, now=0)
    ma = inbound(
        headers={
            "X-Plivo-Signature-Ma-V2": sdk_v2(MAIN_TOKEN, URL, NONCE),
            "X-Plivo-Signature-V2-Nonce": NONCE,
        }
    )
    provider(secrets=[TOKEN, MAIN_TOKEN]).verify(ma, now=0)
    refused(ma, "SIGNATURE_INVALID")


def test_verify_v2_does_not_cover_body_or_query() -> None:
    # The documented weakness of V2: these verify although the body and query changed.
    signature = sdk_v2(TOKEN, URL, NONCE)
    headers = {"X-Plivo-Signature-V2": signature, "X-Plivo-Signature-V2-Nonce": NONCE}
    forged = {**DELIVERED, "Status": "failed", "ErrorCode": "30"}
    provider().verify(inbound(forged, headers=headers), now=0)
    provider().verify(inbound(url=f"{URL}?tenant=other", headers=headers), now=0)


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/webhooks/plivo",
        "https://dlr.example.com/webhooks/other",
        "http://dlr.example.com/webhooks/plivo",
    ],
)
def test_verify_v2_rejects_other_url(url: str) -> None:
    headers = {
        "X-Plivo-Signature-V2": sdk_v2(TOKEN, URL, NONCE),
        "X-Plivo-Signature-V2-Nonce": NONCE,
    }
    refused(inbound(url=url, headers=headers), "SIGNATURE_INVALID")


def test_verify_v2_rejects_wrong_token_and_nonce() -> None:
    headers = {
        "X-Plivo-Signature-V2": sdk_v2(OTHER_TOKEN, URL, NONCE),
        "X-Plivo-Signature-V2-Nonce": NONCE,
    }
    error = refused(inbound(headers=headers), "SIGNATURE_INVALID")
    assert "V2" in error.detail
    headers = {
        "X-Plivo-Signature-V2": sdk_v2(TOKEN, URL, NONCE),
        "X-Plivo-Signature-V2-Nonce": NONCE + "1",
    }
    refused(inbound(headers=headers), "SIGNATURE_INVALID")


def test_verify_v2_refused_when_disabled() -> None:
    headers = {
        "X-Plivo-Signature-V2": sdk_v2(TOKEN, URL, NONCE),
        "X-Plivo-Signature-V2-Nonce": NONCE,
    }
    error = refused(inbound(headers=headers), "SIGNATURE_MISSING", accept_v2_signatures=False)
    assert "V2 signatures are refused" in error.detail
    provider(accept_v2_signatures=False).verify(v3_request(), now=0)


def test_verify_v3_failure_never_falls_back_to_v2() -> None:
    headers = {
        "X-Plivo-Signature-V3": sdk_v3(OTHER_TOKEN, "POST", URL, DELIVERED, NONCE),
        "X-Plivo-Signature-V3-Nonce": NONCE,
        "X-Plivo-Signature-V2": sdk_v2(TOKEN, URL, NONCE),
        "X-Plivo-Signature-V2-Nonce": NONCE,
    }
    refused(inbound(headers=headers), "SIGNATURE_INVALID")


def test_scheme_verify_reports_the_version() -> None:
    request = v3_request()
    form = scheme.query_pairs(request.body.decode())
    version = scheme.verify(
        request.headers, method="POST", url=URL, form_params=form, tokens=[TOKEN]
    )
    assert version == "v3"
    headers = {
        "x-plivo-signature-v2": sdk_v2(TOKEN, URL, NONCE),
        "x-plivo-signature-v2-nonce": NONCE,
    }
    assert scheme.verify(headers, method="POST", url=URL, form_params=form, tokens=[TOKEN]) == "v2"


def test_scheme_unparseable_url_is_a_signature_error() -> None:
    headers = {"x-plivo-signature-v3": "A" * 43 + "=", "x-plivo-signature-v3-nonce": NONCE}
    with pytest.raises(SignatureError) as info:
        scheme.verify(headers, method="POST", url="https://[::1/x", form_params=[], tokens=[TOKEN])
    assert info.value.code == "SIGNATURE_INVALID"


# --- parse ----------------------------------------------------------------------------------


def test_parse_documented_delivered_callback() -> None:
    (report,) = provider().parse(inbound())
    assert report.event_id == derived_event_id(UUID, "delivered", "3")
    assert report.event_id.startswith("d_")
    assert report.provider_message_id == UUID
    assert report.status is Status.DELIVERED
    assert report.provider_status == "delivered"
    assert report.occurred_at == DELIVERED_AT
    assert report.to == "+14155550123"
    assert report.error_code is None
    assert report.error_message is None


def test_parse_get_equals_post() -> None:
    assert provider().parse(inbound("GET")) == provider().parse(inbound("POST"))


def test_parse_get_ignores_own_query_params() -> None:
    (report,) = provider().parse(inbound("GET", url=f"{URL}?tenant=acme"))
    assert report.provider_message_id == UUID


def test_parse_post_reads_the_body_not_the_query() -> None:
    request = inbound(url=f"{URL}?Status=failed&MessageUUID=other")
    (report,) = provider().parse(request)
    assert (report.provider_message_id, report.status) == (UUID, Status.DELIVERED)


def test_parse_undelivered_with_documented_error_code() -> None:
    params = {**DELIVERED, "Status": "undelivered", "ErrorCode": "30", "Sequence": "4"}
    (report,) = provider().parse(inbound(params=params))
    assert report.status is Status.UNDELIVERED
    assert report.error_code == "30"
    assert report.error_message == "Spam Detected"
    assert report.occurred_at == DELIVERED_AT


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("10", "Invalid Message"),
        ("20", "Network Error"),
        ("40", "Invalid Source Number"),
        ("50", "Invalid Destination Number"),
        ("900", None),
        ("E-77", None),
    ],
)
def test_error_code_reason(code: str, message: str | None) -> None:
    params = {**DELIVERED, "Status": "failed", "ErrorCode": code}
    (report,) = provider().parse(inbound(params=params))
    assert (report.error_code, report.error_message) == (code, message)


@pytest.mark.parametrize("code", ["", "000"])
def test_no_error_code(code: str) -> None:
    (report,) = provider().parse(inbound(params={**DELIVERED, "ErrorCode": code}))
    assert (report.error_code, report.error_message) == (None, None)


def test_parse_minimal_callback_uses_arrival_time() -> None:
    (report,) = provider().parse(inbound(params={"MessageUUID": UUID, "Status": "sent"}))
    assert report.occurred_at == RECEIVED_AT
    assert report.to is None
    assert report.event_id == derived_event_id(UUID, "sent", None)


ALL_TIMES = {
    "MessageTime": "2026-11-23 09:59:51.000000",
    "QueuedTime": "2026-11-23 09:59:52.000000",
    "SentTime": "2026-11-23 09:59:53.000000",
    "DeliveryReportTime": "2026-11-23 09:59:54.000000",
}


def at(second: int) -> datetime:
    return datetime(2026, 11, 23, 9, 59, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "times", "expected"),
    [
        pytest.param("queued", ALL_TIMES, at(52), id="queued-QueuedTime"),
        pytest.param("sent", ALL_TIMES, at(53), id="sent-SentTime"),
        pytest.param("delivered", ALL_TIMES, at(54), id="delivered-DeliveryReportTime"),
        pytest.param("read", ALL_TIMES, at(54), id="read-DeliveryReportTime"),
        pytest.param("undelivered", ALL_TIMES, at(54), id="undelivered-DeliveryReportTime"),
        pytest.param("rejected", ALL_TIMES, at(54), id="rejected-DeliveryReportTime"),
        pytest.param("failed", {**ALL_TIMES, "DeliveryReportTime": ""}, at(53), id="failed-latest"),
        pytest.param(
            "undelivered", {**ALL_TIMES, "DeliveryReportTime": ""}, at(53), id="no-dlr-time-latest"
        ),
        pytest.param(
            "sent", {"MessageTime": ALL_TIMES["MessageTime"]}, at(51), id="only-MessageTime"
        ),
        pytest.param("sent", {}, RECEIVED_AT, id="no-times"),
    ],
)
def test_occurred_at_choice(status: str, times: dict[str, str], expected: datetime) -> None:
    params = {"MessageUUID": UUID, "Status": status, **times}
    (report,) = provider().parse(inbound(params=params))
    assert report.occurred_at == expected
    assert report.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-11-23 09:59:58",
        "2026-11-23 09:59:58.000000",
        "2026-11-23 09:59:58.0",
        "2026-11-23T09:59:58",
        "2026-11-23 09:59:58Z",
        "2026-11-23 09:59:58+00:00",
        "2026-11-23 15:29:58+05:30",
        "2026-11-23 15:29:58.000000+0530",
        "2026-11-23 04:59:58-05",
    ],
)
def test_timestamp_formats(stamp: str) -> None:
    params = {"MessageUUID": UUID, "Status": "delivered", "DeliveryReportTime": stamp}
    (report,) = provider().parse(inbound(params=params))
    assert report.occurred_at == at(58)
    assert report.occurred_at.tzinfo is UTC


def test_zone_less_time_is_utc() -> None:
    params = {"MessageUUID": UUID, "Status": "sent", "SentTime": "2026-11-23 09:59:53"}
    (report,) = provider().parse(inbound(params=params))
    assert report.occurred_at == datetime(2026, 11, 23, 9, 59, 53, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("14155550123", "+14155550123"),
        ("+14155550123", "+14155550123"),
        (" 639171234567 ", "+639171234567"),
        ("447700900123", "+447700900123"),
        ("04155550123", None),
        ("1415", None),
        ("1234567890123456", None),
        ("whatsapp:+14155550123", None),
        ("+1 415 555 0123", None),
        ("١٤١٥٥٥٥٠١٢٣", None),  # Arabic-Indic digits: not ASCII
        ("", None),
    ],
)
def test_to_normalized_to_e164(raw: str, expected: str | None) -> None:
    (report,) = provider().parse(inbound(params={**DELIVERED, "To": raw}))
    assert report.to == expected


# The status mapping, row by row (docs: queued, sent, failed, delivered, undelivered,
# rejected, and read for WhatsApp).
STATUS_ROWS = [
    ("queued", Status.QUEUED),
    ("sent", Status.SENT),
    ("delivered", Status.DELIVERED),
    ("read", Status.DELIVERED),
    ("undelivered", Status.UNDELIVERED),
    ("failed", Status.FAILED),
    ("rejected", Status.REJECTED),
]


@pytest.mark.parametrize(("word", "status"), STATUS_ROWS)
def test_status_mapping(word: str, status: Status) -> None:
    (report,) = provider().parse(inbound(params={**DELIVERED, "Status": word}))
    assert report.status is status
    assert report.provider_status == word


@pytest.mark.parametrize("word", ["received", "Delivered", "DELIVRD", "expired", "accepted"])
def test_unmapped_status_word_kept_with_none(word: str) -> None:
    (report,) = provider().parse(inbound(params={**DELIVERED, "Status": word}))
    assert report.status is None
    assert report.provider_status == word
    assert report.provider_message_id == UUID


def test_redelivery_gets_the_same_event_id() -> None:
    first = provider().parse(inbound())[0]
    # A retry is the same callback; fields we do not identify by may even differ.
    retry = provider().parse(inbound(params={**DELIVERED, "TotalAmount": "0.00600"}))[0]
    via_get = provider().parse(inbound("GET"))[0]
    assert first.event_id == retry.event_id == via_get.event_id


@pytest.mark.parametrize(
    "change",
    [{"Status": "sent"}, {"Sequence": "4"}, {"MessageUUID": "other-uuid"}, {"Sequence": ""}],
)
def test_other_callbacks_get_other_event_ids(change: dict[str, str]) -> None:
    first = provider().parse(inbound())[0]
    other = provider().parse(inbound(params={**DELIVERED, **change}))[0]
    assert first.event_id != other.event_id


def test_parse_with_insecure_config() -> None:
    p = provider(secrets=[], insecure_no_signature=True)
    assert p.verifies is False
    assert p.parse(inbound())[0].status is Status.DELIVERED


def invalid(request: InboundRequest) -> PayloadInvalid:
    with pytest.raises(PayloadInvalid) as info:
        provider().parse(request)
    exc = info.value
    assert exc.status == 400
    assert exc.code == "PAYLOAD_INVALID"
    assert exc.detail.startswith(f"{exc.field}: ")
    return exc


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        pytest.param({"Status": "delivered"}, "MessageUUID", "required", id="no-uuid"),
        pytest.param(
            {**DELIVERED, "MessageUUID": ""}, "MessageUUID", "at least 1", id="blank-uuid"
        ),
        pytest.param(
            {**DELIVERED, "MessageUUID": "x" * 256}, "MessageUUID", "at most 255", id="long-uuid"
        ),
        pytest.param({"MessageUUID": UUID}, "Status", "required", id="no-status"),
        pytest.param({**DELIVERED, "Status": ""}, "Status", "at least 1", id="blank-status"),
        pytest.param({**DELIVERED, "Status": "s" * 65}, "Status", "at most 64", id="long-status"),
        pytest.param(
            {**DELIVERED, "ErrorCode": "9" * 65}, "ErrorCode", "at most 64", id="long-code"
        ),
        pytest.param({**DELIVERED, "To": "1" * 65}, "To", "at most 64", id="long-to"),
        pytest.param(
            {**DELIVERED, "DeliveryReportTime": "yesterday"},
            "DeliveryReportTime",
            "YYYY-mm-dd HH:MM:SS",
            id="garbage-time",
        ),
        pytest.param(
            {**DELIVERED, "SentTime": "2026-13-45 25:61:61"},
            "SentTime",
            "not a valid date",
            id="impossible-time",
        ),
        pytest.param(
            {**DELIVERED, "MessageTime": "1795427998"}, "MessageTime", "YYYY", id="epoch-time"
        ),
    ],
)
def test_invalid_callback_names_the_field(params: dict[str, str], field: str, says: str) -> None:
    for method in ("POST", "GET"):
        exc = invalid(inbound(method, params))
        assert exc.field == field
        assert says in exc.detail


@pytest.mark.parametrize("body", [b"", b"not a form", b"\xff\xfe", b'{"MessageUUID": "x"}'])
def test_unparseable_body(body: bytes) -> None:
    assert invalid(inbound(body=body)).field == "MessageUUID"


def test_repeated_field_is_invalid() -> None:
    body = urlencode([*DELIVERED.items(), ("Status", "failed")]).encode()
    exc = invalid(inbound(body=body))
    assert exc.field == "Status"
    assert "more than once" in exc.detail


# --- answer ---------------------------------------------------------------------------------


# --- end to end through ``receiver serve`` --------------------------------------------------


def test_end_to_end(server_factory: Any) -> None:
    server = server_factory(
        settings={"public_base_url": BASE},
        providers={
            "plivo": {"type": "plivo", "secrets": [TOKEN], "auth_id": "MAYTK0M2MZNJA1MJQ4Y2"}
        },
    )
    sent = plivo_report(UUID, "sent", sequence=2, sent_time=datetime(2026, 11, 23, 9, 59, 52, 4118))
    delivered = plivo_report(
        UUID,
        "delivered",
        sequence=3,
        sent_time=datetime(2026, 11, 23, 9, 59, 52, 4118),
        delivery_report_time=datetime(2026, 11, 23, 9, 59, 58, 120544),
    )
    first = plivo_request(TOKEN, delivered, provider="plivo", public_base_url=BASE)
    answer = server.post(first)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 1, "applied": 1, "duplicates": 0, "superseded": 0}

    # Plivo's retry of the same callback (fresh nonce, V2 this time) is a duplicate.
    retry = plivo_request(TOKEN, delivered, provider="plivo", public_base_url=BASE, version="v2")
    assert server.post(retry).json() == {
        "received": 1,
        "applied": 0,
        "duplicates": 1,
        "superseded": 0,
    }
    # The late "sent" callback, by GET, is recorded but changes nothing.
    late = plivo_request(TOKEN, sent, provider="plivo", public_base_url=BASE, method="GET")
    assert server.post(late).json() == {
        "received": 1,
        "applied": 0,
        "duplicates": 0,
        "superseded": 1,
    }

    # Refusals: a wrong token (401), a tampered body (401), JSON (415), unparseable (400).
    wrong = plivo_request(OTHER_TOKEN, delivered, provider="plivo", public_base_url=BASE)
    refusal = server.post(wrong)
    assert refusal.status_code == 401
    assert refusal.headers["content-type"].startswith("application/problem+json")
    assert refusal.json()["code"] == "SIGNATURE_INVALID"
    tampered = dataclasses.replace(first, body=first.body.replace(b"delivered", b"failed"))
    assert server.post(tampered).json()["code"] == "SIGNATURE_INVALID"
    as_json = dataclasses.replace(
        first, headers={**first.headers, "Content-Type": "application/json"}
    )
    assert server.post(as_json).status_code == 415
    broken = plivo_request(TOKEN, {"Status": "sent"}, provider="plivo", public_base_url=BASE)
    problem = server.post(broken)
    assert problem.status_code == 400
    assert "MessageUUID" in problem.json()["detail"]

    with server.api(server.staff_token("alice", "sender")) as api:
        found = api.get(
            "/v1/messages", params={"provider": "plivo", "provider_message_id": UUID}
        ).json()["items"]
        assert [(m["status"], m["final"], m["to"]) for m in found] == [
            ("delivered", True, "+14155550123")
        ]
        events = api.get(f"/v1/messages/{found[0]['id']}/events").json()["items"]
    assert [(e["provider_status"], e["status"], e["outcome"], e["deliveries"]) for e in events] == [
        ("sent", "sent", "superseded", 1),
        ("delivered", "delivered", "applied", 2),
    ]
    assert events[1]["event_id"] == derived_event_id(UUID, "delivered", "3")


def test_get_callback_url_may_repeat_its_own_parameters() -> None:
    (report,) = provider().parse(inbound("GET", url=f"{URL}?tag=a&tag=b"))
    assert report.provider_message_id == UUID
    exc = invalid(inbound("GET", url=f"{URL}?Status=failed"))
    assert exc.field == "Status"


def test_the_network_comes_from_mcc_and_mnc() -> None:
    (report,) = provider().parse(inbound(params={**DELIVERED, "MCC": "515", "MNC": "03"}))
    assert report.network == "515-03"
    (report,) = provider().parse(inbound(params={**DELIVERED, "MCC": "", "MNC": ""}))
    assert report.network is None
