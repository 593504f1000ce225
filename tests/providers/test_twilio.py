"""Provider type ``twilio``: signatures, config, verify, parse, the builder, end to end.

Signatures in these tests are made with the official SDK's
``twilio.request_validator.RequestValidator`` (twilio 9.13), and the SDK's own
published vectors (twilio-python ``tests/unit/test_request_validator.py``) are checked
against our scheme module.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from twilio.http import HttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from receiver.core.reports import Report, derived_event_id
from receiver.core.signatures import twilio as scheme
from receiver.core.status import Status
from receiver.errors import PayloadInvalid, SignatureError
from receiver.providers import PROVIDER_TYPES
from receiver.providers.base import (
    FORM,
    JSON,
    Accepted,
    Deferred,
    InboundRequest,
    NoSuchMessage,
    Rejected,
    Sender,
    Unknown,
)
from receiver.providers.twilio import (
    ERROR_MESSAGES,
    STATUS_MAP,
    TwilioConfig,
    TwilioProvider,
    normalize_to,
)
from receiver.records import OutboxItem
from receiver.testing.twilio import EXAMPLE_ACCOUNT_SID, twilio_report, twilio_request

AUTH_TOKEN = "9f3c2a7d51e84b0c96ad2f4e7b1c3d58"  # 32 hex characters, like a real Auth Token
NEW_AUTH_TOKEN = "0b7e94c1d2a35f6e8c9d0a1b2c3d4e5f"
ACCOUNT_SID = "AC3c1e8f0b2d4a6c8e0f1a2b3c4d5e6f70"
PUBLIC_URL = "https://dlr.example.com/webhooks/twilio"
RECEIVED_AT = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)

# Twilio's documented example status callback ("Track the Message Status of Outbound
# Messages": a callback sent when an outbound SMS changes status to sent).
DOC_EXAMPLE = {
    "AccountSid": "ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "From": "+15017250604",
    "MessageSid": "SM1342fe1b2c904d1ab04f0fc7a58abca9",
    "MessageStatus": "sent",
    "SmsSid": "SM1342fe1b2c904d1ab04f0fc7a58abca9",
    "SmsStatus": "sent",
}

# A realistic undelivered SMS callback: the documented parameters plus To, ApiVersion,
# ErrorCode and the SMS-only RawDlrDoneDate (YYMMDDhhmm).
UNDELIVERED = {
    "AccountSid": ACCOUNT_SID,
    "ApiVersion": "2010-04-01",
    "ErrorCode": "30003",
    "From": "+15017250604",
    "MessageSid": "SMb7c0a0b2b8b44c5e9a5d0e1f2a3b4c5d",
    "MessageStatus": "undelivered",
    "RawDlrDoneDate": "2611230959",
    "SmsSid": "SMb7c0a0b2b8b44c5e9a5d0e1f2a3b4c5d",
    "SmsStatus": "undelivered",
    "To": "+15558675310",
}


class MultiParams:
    """Repeated form names for the SDK validator (it calls ``getall`` when present)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def __iter__(self) -> Any:
        return iter(name for name, _ in self.pairs)

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]


def sdk_signature(token: str, url: str, params: Any, algorithm: str | None = None) -> str:
    return RequestValidator(token).compute_signature(url, params, algorithm)


def form_request(
    params: dict[str, str] | list[tuple[str, str]],
    *,
    token: str = AUTH_TOKEN,
    signed_url: str = PUBLIC_URL,
    url: str = PUBLIC_URL,
    body: bytes | None = None,
    extra_headers: dict[str, str] | None = None,
    received_at: datetime = RECEIVED_AT,
) -> InboundRequest:
    """A form callback to ``url``, signed by the SDK for ``signed_url``."""
    pairs = list(params.items()) if isinstance(params, dict) else params
    sdk_params = dict(pairs) if isinstance(params, dict) else MultiParams(pairs)
    headers = {
        "content-type": FORM,
        "x-twilio-signature": sdk_signature(token, signed_url, sdk_params),
        **(extra_headers or {}),
    }
    return InboundRequest(
        method="POST",
        url=url,
        headers=headers,
        query_string=url.partition("?")[2].encode(),
        body=urlencode(pairs).encode() if body is None else body,
        media_type=FORM,
        received_at=received_at,
    )


def json_request(
    payload: Any, *, token: str = AUTH_TOKEN, body: bytes | None = None
) -> InboundRequest:
    """A JSON callback: ``bodySHA256`` in the query, the URL alone signed by the SDK."""
    raw = json.dumps(payload).encode()
    url = f"{PUBLIC_URL}?bodySHA256={RequestValidator(token).compute_hash(raw.decode())}"
    return InboundRequest(
        method="POST",
        url=url,
        headers={"content-type": JSON, "x-twilio-signature": sdk_signature(token, url, {})},
        query_string=url.partition("?")[2].encode(),
        body=raw if body is None else body,
        media_type=JSON,
        received_at=RECEIVED_AT,
    )


def provider(**config: Any) -> TwilioProvider:
    config.setdefault("secrets", [AUTH_TOKEN])
    return TwilioProvider("twilio", TwilioConfig(type="twilio", **config))


def refused(request: InboundRequest, p: TwilioProvider | None = None) -> SignatureError:
    with pytest.raises(SignatureError) as info:
        (p or provider()).verify(request, now=RECEIVED_AT.timestamp())
    assert info.value.status == 401
    return info.value


# --- the scheme against the SDK's published vectors ----------------------------------------

VECTOR_TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}


def test_published_vector() -> None:
    sig = scheme.signature(VECTOR_TOKEN, VECTOR_URL, VECTOR_PARAMS.items())
    assert sig == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_published_vector_with_repeated_names() -> None:
    pairs = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert scheme.signature(VECTOR_TOKEN, VECTOR_URL, pairs) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_signed_string_sorts_names_then_values() -> None:
    pairs = [("b", "2"), ("a", "y"), ("a", "x"), ("B", "1"), ("a", "x")]
    # Upper case sorts first (code point order); a repeated value counts once.
    assert scheme.signed_string("https://h/p", pairs) == "https://h/p" + "B1" + "ax" + "ay" + "b2"


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        pytest.param(VECTOR_URL, "kvajT1Ptam85bY51eRf/AJRuM3w=", id="https-signed-with-443"),
        pytest.param(
            VECTOR_URL.replace("https", "http"),
            "0ZXoZLH/DfblKGATFgpif+LLRf4=",
            id="http-signed-with-80",
        ),
        pytest.param(
            VECTOR_URL.replace(".com", ".com:1234"),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            id="port-1234-signed-without-port",
        ),
        pytest.param(
            VECTOR_URL.replace(".com", ".com:1234").replace("https", "http"),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
            id="http-port-1234-signed-with-it",
        ),
    ],
)
def test_published_port_vectors(url: str, signature: str) -> None:
    headers = {"x-twilio-signature": signature}
    assert scheme.verify(url, headers, [VECTOR_TOKEN], params=list(VECTOR_PARAMS.items()))
    assert RequestValidator(VECTOR_TOKEN).validate(url, VECTOR_PARAMS, signature)


def test_published_json_body_vector() -> None:
    body = b'{"property": "value", "boolean": true}'
    assert scheme.body_sha256(body) == (
        "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    )
    url = VECTOR_URL + "&bodySHA256=" + scheme.body_sha256(body)
    headers = {"x-twilio-signature": "a9nBmqA0ju/hNViExpshrM61xv4="}
    assert scheme.verify(url, headers, [VECTOR_TOKEN], json_body=body) == VECTOR_TOKEN


@pytest.mark.parametrize(
    ("url", "variants"),
    [
        (
            "https://dlr.example.com/webhooks/t?a=1",
            [
                "https://dlr.example.com/webhooks/t?a=1",
                "https://dlr.example.com:443/webhooks/t?a=1",
            ],
        ),
        ("http://dlr.example.com/x", ["http://dlr.example.com/x", "http://dlr.example.com:80/x"]),
        (
            "https://dlr.example.com:443/x",
            ["https://dlr.example.com/x", "https://dlr.example.com:443/x"],
        ),
        ("http://127.0.0.1:8000/x", ["http://127.0.0.1/x", "http://127.0.0.1:8000/x"]),
        ("http://[::1]:8000/x", ["http://[::1]/x", "http://[::1]:8000/x"]),
        (
            "https://u:p@dlr.example.com/x",
            ["https://u:p@dlr.example.com/x", "https://u:p@dlr.example.com:443/x"],
        ),
        ("https://dlr.example.com:99999/x", ["https://dlr.example.com:99999/x"]),
        ("ftp://dlr.example.com/x", ["ftp://dlr.example.com/x"]),
    ],
)
def test_url_variants(url: str, variants: list[str]) -> None:
    assert scheme.url_variants(url) == variants


_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    pairs=st.lists(st.tuples(_text.filter(bool), _text), max_size=8),
    path=st.text("abcxyz/-_.~%20", max_size=10),
)
def test_our_signature_equals_the_sdks(pairs: list[tuple[str, str]], path: str) -> None:
    url = f"https://dlr.example.com/{path}?x=1"
    ours = scheme.signature(AUTH_TOKEN, url, pairs)
    assert ours == sdk_signature(AUTH_TOKEN, url, MultiParams(pairs))
    assert scheme.verify(url, {"x-twilio-signature": ours}, [AUTH_TOKEN], params=pairs)


def test_sha256_shared_key_signature_matches_the_sdk() -> None:
    sdk = sdk_signature(AUTH_TOKEN, PUBLIC_URL, DOC_EXAMPLE, "HMAC_SHA256")
    ours = scheme.signature(AUTH_TOKEN, PUBLIC_URL, DOC_EXAMPLE.items(), algorithm="HMAC_SHA256")
    assert ours == sdk


def test_signature_refuses_an_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="HMAC_SHA1 or HMAC_SHA256"):
        scheme.signature(AUTH_TOKEN, PUBLIC_URL, (), algorithm="HMAC_MD5")


@pytest.mark.parametrize(
    ("header", "algorithm"),
    [
        ("", "HMAC_SHA1"),
        ("key=webhooks_sharedkey_1", "HMAC_SHA1"),
        ("key=webhooks_sharedkey_1,algorithm=HMAC_SHA256", "HMAC_SHA256"),
        ("algorithm = hmac_sha256 , key=k", "HMAC_SHA256"),
        ("algorithm=HMAC_SHA1", "HMAC_SHA1"),
        ("algorithm=", "HMAC_SHA1"),
    ],
)
def test_algorithm_from_settings(header: str, algorithm: str) -> None:
    assert scheme.algorithm_from_settings(header) == algorithm


# --- config ---------------------------------------------------------------------------------


def test_registered_and_class_attributes() -> None:
    assert PROVIDER_TYPES["twilio"] is TwilioProvider
    assert TwilioProvider.config_model is TwilioConfig
    assert frozenset({FORM, JSON}) == TwilioProvider.media_types
    assert frozenset({"POST"}) == TwilioProvider.methods


def test_config_defaults_and_keys() -> None:
    config = TwilioConfig.model_validate(
        {"type": "twilio", "secrets": [AUTH_TOKEN, NEW_AUTH_TOKEN], "account_sid": ACCOUNT_SID}
    )
    assert config.secrets == [AUTH_TOKEN, NEW_AUTH_TOKEN]
    assert config.account_sid == ACCOUNT_SID
    assert TwilioConfig(type="twilio", secrets=[AUTH_TOKEN]).account_sid is None


def test_config_needs_a_secret() -> None:
    with pytest.raises(ValidationError, match="at least one secret"):
        TwilioConfig(type="twilio")
    assert provider(secrets=[], insecure_no_signature=True).verifies is False


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"account_sid": "ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}, "account_sid"),
        ({"account_sid": "AC123"}, "account_sid"),
        ({"account_sid": "SK3c1e8f0b2d4a6c8e0f1a2b3c4d5e6f70"}, "account_sid"),
        ({"secrets": ["changeme"]}, r"secrets\[0\]: must be the Auth Token"),
        ({"secrets": [AUTH_TOKEN, f" {NEW_AUTH_TOKEN}\n"]}, r"secrets\[1\]: must not start"),
        ({"auth_token": AUTH_TOKEN}, "auth_token"),
        ({"accountSid": ACCOUNT_SID}, "accountSid"),
        ({"tolerance_seconds": 0}, "tolerance_seconds"),
    ],
    ids=[
        "sid-placeholder",
        "sid-short",
        "sid-wrong-prefix",
        "placeholder-token",
        "token-whitespace",
        "unknown-key",
        "sid-camel-case",
        "tolerance",
    ],
)
def test_bad_config_refused(extra: dict[str, Any], match: str) -> None:
    table = {"type": "twilio", "secrets": [AUTH_TOKEN], **extra}
    with pytest.raises(ValidationError, match=match):
        TwilioConfig.model_validate(table)


def test_wrong_type_refused() -> None:
    with pytest.raises(ValidationError, match="type"):
        TwilioConfig.model_validate({"type": "standard", "secrets": [AUTH_TOKEN]})


# --- verify ---------------------------------------------------------------------------------


def test_documented_example_verifies() -> None:
    provider().verify(form_request(DOC_EXAMPLE), now=RECEIVED_AT.timestamp())


def test_no_freshness_check_a_replay_days_later_verifies() -> None:
    later = (RECEIVED_AT + timedelta(days=30)).timestamp()
    provider().verify(form_request(DOC_EXAMPLE), now=later)


def test_every_secret_of_a_rotation_is_tried() -> None:
    p = provider(secrets=[AUTH_TOKEN, NEW_AUTH_TOKEN])
    p.verify(form_request(DOC_EXAMPLE, token=NEW_AUTH_TOKEN), now=0)
    p.verify(form_request(DOC_EXAMPLE, token=AUTH_TOKEN), now=0)


def test_wrong_secret_refused() -> None:
    exc = refused(form_request(DOC_EXAMPLE, token=NEW_AUTH_TOKEN))
    assert exc.code == "SIGNATURE_INVALID"
    assert NEW_AUTH_TOKEN not in exc.detail


@pytest.mark.parametrize(
    "body",
    [
        urlencode({**DOC_EXAMPLE, "MessageStatus": "delivered"}).encode(),
        urlencode({**DOC_EXAMPLE, "ErrorCode": "30003"}).encode(),
        urlencode({k: v for k, v in DOC_EXAMPLE.items() if k != "From"}).encode(),
        urlencode(DOC_EXAMPLE).encode() + b"&MessageStatus=delivered",
        b"",
    ],
    ids=["status-changed", "param-added", "param-removed", "value-repeated", "empty"],
)
def test_tampered_body_refused(body: bytes) -> None:
    assert refused(form_request(DOC_EXAMPLE, body=body)).code == "SIGNATURE_INVALID"


@pytest.mark.parametrize(
    "url",
    [
        "https://dlr.example.com/webhooks/other",
        "https://dlr.example.com/webhooks/twilio?x=1",
        "https://evil.example.com/webhooks/twilio",
        "http://dlr.example.com/webhooks/twilio",
        "https://dlr.example.com/webhooks/twilio/",
        "https://dlr.example.com/webhooks/Twilio",
    ],
    ids=["path", "query-added", "host", "scheme", "trailing-slash", "case"],
)
def test_tampered_url_refused(url: str) -> None:
    assert refused(form_request(DOC_EXAMPLE, url=url)).code == "SIGNATURE_INVALID"


def test_query_is_signed_exactly_as_sent() -> None:
    signed = PUBLIC_URL + "?b=2&a=hello+world%21"
    provider().verify(form_request(DOC_EXAMPLE, signed_url=signed, url=signed), now=0)
    reordered = PUBLIC_URL + "?a=hello+world%21&b=2"
    exc = refused(form_request(DOC_EXAMPLE, signed_url=signed, url=reordered))
    assert exc.code == "SIGNATURE_INVALID"


@pytest.mark.parametrize(
    ("signed_url", "public_url"),
    [
        ("https://dlr.example.com:443/webhooks/twilio", PUBLIC_URL),
        (PUBLIC_URL, "https://dlr.example.com:443/webhooks/twilio"),
        ("http://dlr.example.com:80/webhooks/twilio", "http://dlr.example.com/webhooks/twilio"),
    ],
    ids=["signed-with-443", "configured-with-443", "http-80"],
)
def test_default_port_accepted_either_way(signed_url: str, public_url: str) -> None:
    provider().verify(form_request(DOC_EXAMPLE, signed_url=signed_url, url=public_url), now=0)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "SIGNATURE_MISSING"),
        ({"x-twilio-signature": ""}, "SIGNATURE_MISSING"),
        ({"x-twilio-signature": "   "}, "SIGNATURE_MISSING"),
        ({"x-twilio-signature": "not base64!"}, "SIGNATURE_MALFORMED"),
        ({"x-twilio-signature": "c2hvcnQ="}, "SIGNATURE_MALFORMED"),
        ({"x-twilio-signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8é"}, "SIGNATURE_MALFORMED"),
        (
            {
                "x-twilio-signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
                "x-twilio-webhooks-signature-settings": "key=k,algorithm=HMAC_MD5",
            },
            "SIGNATURE_MALFORMED",
        ),
        (
            {
                "x-twilio-signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
                "x-twilio-webhooks-signature-settings": "algorithm=HMAC_SHA256",
            },
            "SIGNATURE_MALFORMED",
        ),
        ({"x-twilio-signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}, "SIGNATURE_INVALID"),
    ],
    ids=[
        "absent",
        "empty",
        "blank",
        "not-base64",
        "too-short",
        "non-ascii",
        "unsupported-algorithm",
        "sha1-length-for-sha256",
        "someone-elses",
    ],
)
def test_bad_signature_header(headers: dict[str, str], code: str) -> None:
    request = dataclasses.replace(
        form_request(DOC_EXAMPLE), headers={"content-type": FORM, **headers}
    )
    assert refused(request).code == code


SHARED_KEY_SETTINGS = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"


def test_shared_key_sha256_signature_verifies() -> None:
    shared_secret = "sk_3f9a2b7c1d8e4f60a5b4c3d2e1f0a9b8"
    signature = sdk_signature(shared_secret, PUBLIC_URL, DOC_EXAMPLE, "HMAC_SHA256")
    request = dataclasses.replace(
        form_request(DOC_EXAMPLE),
        headers={
            "content-type": FORM,
            "x-twilio-signature": signature,
            "x-twilio-webhooks-signature-settings": SHARED_KEY_SETTINGS,
        },
    )
    provider(secrets=[AUTH_TOKEN, shared_secret]).verify(request, now=0)
    assert refused(request).code == "SIGNATURE_INVALID"  # without the SharedKey secret


def test_unicode_and_blank_values_are_signed() -> None:
    params = {
        **UNDELIVERED,
        "ChannelStatusMessage": "Zustellung fehlgeschlagen: Grüße, 你好",
        "Body": "",
    }
    provider().verify(form_request(params), now=0)


def test_repeated_parameters_are_signed() -> None:
    pairs = [*DOC_EXAMPLE.items(), ("Tag", "b"), ("Tag", "a")]
    provider().verify(form_request(pairs), now=0)


def test_json_body_verifies() -> None:
    provider().verify(json_request(UNDELIVERED), now=0)


def test_json_body_tampered_refused() -> None:
    tampered = json.dumps({**UNDELIVERED, "MessageStatus": "delivered"}).encode()
    exc = refused(json_request(UNDELIVERED, body=tampered))
    assert exc.code == "SIGNATURE_INVALID"
    assert "bodySHA256" in exc.detail


def test_json_body_without_body_hash_refused() -> None:
    request = json_request(UNDELIVERED)
    unhashed = dataclasses.replace(
        request,
        url=PUBLIC_URL,
        query_string=b"",
        headers={
            **request.headers,
            "x-twilio-signature": sdk_signature(AUTH_TOKEN, PUBLIC_URL, {}),
        },
    )
    assert refused(unhashed).code == "SIGNATURE_MISSING"


def test_json_body_hash_of_another_body_refused() -> None:
    other = json_request({**UNDELIVERED, "MessageStatus": "delivered"})
    swapped = dataclasses.replace(other, body=json.dumps(UNDELIVERED).encode())
    assert refused(swapped).code == "SIGNATURE_INVALID"


def test_json_wrong_secret_refused() -> None:
    assert refused(json_request(UNDELIVERED, token=NEW_AUTH_TOKEN)).code == "SIGNATURE_INVALID"


# --- parse ----------------------------------------------------------------------------------


def test_parse_documented_example() -> None:
    (report,) = provider().parse(form_request(DOC_EXAMPLE))
    assert report == Report(
        event_id=derived_event_id("SM1342fe1b2c904d1ab04f0fc7a58abca9", "sent", None),
        provider_message_id="SM1342fe1b2c904d1ab04f0fc7a58abca9",
        status=Status.SENT,
        provider_status="sent",
        occurred_at=RECEIVED_AT,
        to=None,
        error_code=None,
        error_message=None,
    )


def test_parse_undelivered_with_error_code() -> None:
    (report,) = provider(account_sid=ACCOUNT_SID).parse(form_request(UNDELIVERED))
    assert report.status is Status.UNDELIVERED
    assert report.provider_status == "undelivered"
    assert report.error_code == "30003"
    assert report.error_message == "Unreachable destination handset"
    assert report.to == "+15558675310"
    # RawDlrDoneDate has no time zone (Twilio: it varies by carrier): arrival time is used.
    assert report.occurred_at == RECEIVED_AT
    assert report.event_id == derived_event_id(UNDELIVERED["MessageSid"], "undelivered", "30003")


def test_parse_json_body() -> None:
    payload = {**UNDELIVERED, "ErrorCode": 30003}
    (report,) = provider().parse(json_request(payload))
    assert report.error_code == "30003"
    assert report.status is Status.UNDELIVERED
    assert report.event_id == provider().parse(form_request(UNDELIVERED))[0].event_id


def test_redelivery_gets_the_same_event_id() -> None:
    first = provider().parse(form_request(UNDELIVERED))[0]
    again = provider().parse(
        form_request(UNDELIVERED, received_at=RECEIVED_AT + timedelta(hours=1))
    )
    assert again[0].event_id == first.event_id
    extra = {**UNDELIVERED, "ApiVersion": "2010-04-01", "NewParam": "added later"}
    assert provider().parse(form_request(extra))[0].event_id == first.event_id


@pytest.mark.parametrize(
    "change",
    [
        {"MessageStatus": "delivered", "ErrorCode": ""},
        {"ErrorCode": "30005"},
        {"MessageSid": "SM" + "0" * 32},
    ],
    ids=["status", "error-code", "message"],
)
def test_a_different_report_gets_a_different_event_id(change: dict[str, str]) -> None:
    first = provider().parse(form_request(UNDELIVERED))[0]
    other = provider().parse(form_request({**UNDELIVERED, **change}))[0]
    assert other.event_id != first.event_id


@pytest.mark.parametrize(("word", "status"), sorted(STATUS_MAP.items()))
def test_status_mapping_row(word: str, status: Status) -> None:
    (report,) = provider().parse(form_request({**DOC_EXAMPLE, "MessageStatus": word}))
    assert report.status is status
    assert report.provider_status == word


def test_status_mapping_is_the_documented_table() -> None:
    assert STATUS_MAP == {
        "accepted": Status.QUEUED,
        "queued": Status.QUEUED,
        "scheduled": Status.QUEUED,
        "sending": Status.SENT,
        "sent": Status.SENT,
        "delivered": Status.DELIVERED,
        "read": Status.DELIVERED,
        "undelivered": Status.UNDELIVERED,
        "failed": Status.FAILED,
        "canceled": Status.FAILED,
    }


@pytest.mark.parametrize("word", ["receiving", "received", "partially_delivered", "DLR_PENDING"])
def test_unmapped_word_kept_with_status_none(word: str) -> None:
    (report,) = provider().parse(form_request({**DOC_EXAMPLE, "MessageStatus": word}))
    assert report.status is None
    assert report.provider_status == word
    assert report.provider_message_id == DOC_EXAMPLE["MessageSid"]


def test_status_word_case_is_kept_but_mapped() -> None:
    (report,) = provider().parse(form_request({**DOC_EXAMPLE, "MessageStatus": "Delivered"}))
    assert report.status is Status.DELIVERED
    assert report.provider_status == "Delivered"


def test_whatsapp_read_receipt() -> None:
    params = {
        **DOC_EXAMPLE,
        "MessageStatus": "read",
        "SmsStatus": "read",
        "To": "whatsapp:+14155238886",
        "ChannelPrefix": "whatsapp",
        "ChannelInstallSid": "XE" + "a" * 32,
        "EventType": "READ",
    }
    (report,) = provider().parse(form_request(params))
    assert (report.status, report.to) == (Status.DELIVERED, "+14155238886")


def test_sms_sid_and_status_are_used_when_message_fields_are_absent() -> None:
    params = {k: v for k, v in DOC_EXAMPLE.items() if k not in ("MessageSid", "MessageStatus")}
    (report,) = provider().parse(form_request(params))
    assert report.provider_message_id == DOC_EXAMPLE["SmsSid"]
    assert report.status is Status.SENT


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"ErrorCode": "30007"}, "Message filtered"),
        ({"ErrorCode": "21610"}, "Attempt to send to unsubscribed recipient"),
        ({"ErrorCode": "63016"}, None),
        ({"ErrorCode": "30003", "ErrorMessage": "Handset switched off"}, "Handset switched off"),
        (
            {"ErrorCode": "63003", "ChannelStatusMessage": "Channel could not find To address"},
            "Channel could not find To address",
        ),
        ({"ErrorCode": ""}, None),
    ],
    ids=["table", "table-21610", "unknown-code", "error-message-param", "channel-message", "blank"],
)
def test_error_message(extra: dict[str, str], message: str | None) -> None:
    params = {**DOC_EXAMPLE, "MessageStatus": "failed", **extra}
    (report,) = provider().parse(form_request(params))
    assert report.error_message == message
    assert report.error_code == (extra["ErrorCode"] or None)


def test_error_table_holds_the_common_codes() -> None:
    assert ERROR_MESSAGES["30003"] == "Unreachable destination handset"
    assert all(code.isdigit() for code in ERROR_MESSAGES)


def test_long_error_message_is_cut_not_refused() -> None:
    params = {**DOC_EXAMPLE, "ErrorCode": "30008", "ErrorMessage": "x" * 5000}
    (report,) = provider().parse(form_request(params))
    assert report.error_message == "x" * 1000


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("+15558675310", "+15558675310"),
        ("15558675310", "+15558675310"),
        (" +447700900123 ", "+447700900123"),
        ("whatsapp:+14155238886", "+14155238886"),
        ("rcs:+14155238886", "+14155238886"),
        ("messenger:1234567890123", None),
        ("+0155586753", None),
        ("12345", None),
        ("MG_alpha", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_to(to: str | None, expected: str | None) -> None:
    assert normalize_to(to) == expected


def invalid(request: InboundRequest, p: TwilioProvider | None = None) -> PayloadInvalid:
    with pytest.raises(PayloadInvalid) as info:
        (p or provider()).parse(request)
    assert info.value.status == 400
    assert info.value.code == "PAYLOAD_INVALID"
    return info.value


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (
            {k: v for k, v in DOC_EXAMPLE.items() if "Sid" not in k or k == "AccountSid"},
            "MessageSid",
        ),
        ({k: v for k, v in DOC_EXAMPLE.items() if "Status" not in k}, "MessageStatus"),
        ({**DOC_EXAMPLE, "MessageSid": "SM 1342"}, "MessageSid"),
        ({**DOC_EXAMPLE, "MessageSid": "SM" + "a" * 80}, "MessageSid"),
        ({**DOC_EXAMPLE, "MessageStatus": "s" * 65}, "MessageStatus"),
        ({**DOC_EXAMPLE, "ErrorCode": "9" * 65}, "ErrorCode"),
        ({}, "MessageSid"),
    ],
    ids=["no-sid", "no-status", "sid-space", "sid-long", "status-long", "code-long", "empty"],
)
def test_invalid_form_names_the_field(params: dict[str, str], field: str) -> None:
    assert invalid(form_request(params)).field == field


def test_conflicting_repeated_field_refused() -> None:
    pairs = [*DOC_EXAMPLE.items(), ("MessageStatus", "delivered")]
    exc = invalid(form_request(pairs))
    assert exc.field == "MessageStatus"
    # The same value twice is harmless.
    assert provider().parse(form_request([*DOC_EXAMPLE.items(), ("MessageStatus", "sent")]))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"", "body"),
        (b"\xff\xfe", "body"),
        (b'["SM1", "sent"]', "body"),
        (b"[" * 100_000 + b"]" * 100_000, "body"),
        (b'{"MessageSid": "SM1342fe1b2c904d1ab04f0fc7a58abca9"}', "MessageStatus"),
        (b'{"MessageSid": ["SM1"], "MessageStatus": "sent"}', "MessageSid"),
        (b'{"MessageSid": "SM1", "MessageStatus": {"s": 1}}', "MessageStatus"),
    ],
    ids=[
        "invalid",
        "empty",
        "not-utf8",
        "array",
        "deeply-nested",
        "no-status",
        "sid-list",
        "status-object",
    ],
)
def test_invalid_json_names_the_field(body: bytes, field: str) -> None:
    assert invalid(json_request({}, body=body)).field == field


def test_account_sid_checked_when_configured() -> None:
    p = provider(account_sid=ACCOUNT_SID)
    assert p.parse(form_request(UNDELIVERED))[0].status is Status.UNDELIVERED
    other = invalid(form_request({**UNDELIVERED, "AccountSid": "AC" + "0" * 32}), p)
    assert other.field == "AccountSid"
    assert "account_sid" in other.detail
    missing = {k: v for k, v in UNDELIVERED.items() if k != "AccountSid"}
    assert invalid(form_request(missing), p).field == "AccountSid"


def test_account_sid_checked_even_without_verification() -> None:
    p = provider(secrets=[], insecure_no_signature=True, account_sid=ACCOUNT_SID)
    assert invalid(form_request(DOC_EXAMPLE), p).field == "AccountSid"


def test_any_account_when_account_sid_not_configured() -> None:
    assert provider().parse(form_request(DOC_EXAMPLE))[0].provider_message_id.startswith("SM")


# --- answer ---------------------------------------------------------------------------------


# --- the testing builder --------------------------------------------------------------------


def test_builder_form_request_validates_with_the_sdk() -> None:
    request = twilio_request(
        AUTH_TOKEN, UNDELIVERED, public_base_url="https://dlr.example.com/", provider="twilio"
    )
    assert request.path == "/webhooks/twilio"
    assert request.headers["content-type"] == FORM
    url = "https://dlr.example.com" + request.path
    params = dict(httpx.QueryParams(request.body.decode()))
    assert params == UNDELIVERED
    assert RequestValidator(AUTH_TOKEN).validate(url, params, request.headers["x-twilio-signature"])


def test_builder_with_query_validates_with_the_sdk() -> None:
    request = twilio_request(
        AUTH_TOKEN, DOC_EXAMPLE, public_base_url="https://dlr.example.com", query="tenant=a+b&x=1"
    )
    assert request.path == "/webhooks/default?tenant=a+b&x=1"
    url = "https://dlr.example.com" + request.path
    assert RequestValidator(AUTH_TOKEN).validate(
        url, DOC_EXAMPLE, request.headers["x-twilio-signature"]
    )


def test_builder_json_request_validates_with_the_sdk() -> None:
    request = twilio_request(
        AUTH_TOKEN, UNDELIVERED, public_base_url="https://dlr.example.com", json_body=True
    )
    assert request.headers["content-type"] == JSON
    assert json.loads(request.body) == UNDELIVERED
    url = "https://dlr.example.com" + request.path
    assert "bodySHA256=" in url
    validator = RequestValidator(AUTH_TOKEN)
    assert validator.validate(url, request.body.decode(), request.headers["x-twilio-signature"])


def test_builder_sha256_shared_key_validates_with_the_sdk() -> None:
    request = twilio_request(
        AUTH_TOKEN,
        DOC_EXAMPLE,
        public_base_url="https://dlr.example.com",
        algorithm="HMAC_SHA256",
        shared_key_sid="webhooks_sharedkey_1",
    )
    settings_header = request.headers["x-twilio-webhooks-signature-settings"]
    assert settings_header == "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
    url = "https://dlr.example.com" + request.path
    validator = RequestValidator(AUTH_TOKEN)
    assert validator.validate(
        url, DOC_EXAMPLE, request.headers["x-twilio-signature"], "HMAC_SHA256"
    )


def test_builder_report_shape() -> None:
    params = twilio_report("SMabc", "undelivered", to="+15558675310", error_code="30003")
    assert params == {
        "AccountSid": EXAMPLE_ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "ErrorCode": "30003",
        "From": "+15017250604",
        "MessageSid": "SMabc",
        "MessageStatus": "undelivered",
        "SmsSid": "SMabc",
        "SmsStatus": "undelivered",
        "To": "+15558675310",
    }


def test_builder_request_is_accepted_by_the_provider() -> None:
    request = twilio_request(
        AUTH_TOKEN, UNDELIVERED, public_base_url="https://dlr.example.com", provider="twilio"
    )
    inbound = InboundRequest(
        method="POST",
        url="https://dlr.example.com" + request.path,
        headers=request.headers,
        query_string=b"",
        body=request.body,
        media_type=FORM,
        received_at=RECEIVED_AT,
    )
    provider().verify(inbound, now=0)
    assert provider().parse(inbound)[0].error_code == "30003"


# --- end to end through `receiver serve` ----------------------------------------------------


def test_end_to_end_documented_example(server_factory: Any) -> None:
    server = server_factory(
        settings={"public_base_url": "https://dlr.example.com"},
        providers={
            "twilio": {"type": "twilio", "secrets": [NEW_AUTH_TOKEN, AUTH_TOKEN]},
            "twilio-main": {"type": "twilio", "secrets": [AUTH_TOKEN], "account_sid": ACCOUNT_SID},
        },
    )
    # Twilio's documented example, signed for the public URL and posted to loopback.
    sent = twilio_request(
        AUTH_TOKEN, DOC_EXAMPLE, public_base_url="https://dlr.example.com", provider="twilio"
    )
    assert RequestValidator(AUTH_TOKEN).validate(
        "https://dlr.example.com/webhooks/twilio", DOC_EXAMPLE, sent.headers["x-twilio-signature"]
    )
    answer = server.post(sent)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 1, "applied": 1, "duplicates": 0, "superseded": 0}

    # Twilio retries on connection failure: the same callback again is a duplicate.
    again = server.post(sent)
    assert again.status_code == 200
    assert again.json() == {"received": 1, "applied": 0, "duplicates": 1, "superseded": 0}

    delivered = twilio_request(
        AUTH_TOKEN,
        {
            **DOC_EXAMPLE,
            "MessageStatus": "delivered",
            "SmsStatus": "delivered",
            "To": "+15558675310",
            "RawDlrDoneDate": "2611231000",
        },
        public_base_url="https://dlr.example.com",
        provider="twilio",
    )
    assert server.post(delivered).json()["applied"] == 1

    # Signed for the loopback address instead of public_base_url: refused.
    loopback = twilio_request(
        AUTH_TOKEN, UNDELIVERED, public_base_url=server.base_url, provider="twilio"
    )
    refused_answer = server.post(loopback)
    assert refused_answer.status_code == 401
    assert refused_answer.headers["content-type"].startswith("application/problem+json")
    assert refused_answer.json()["code"] == "SIGNATURE_INVALID"

    # account_sid configured: a signed report of another account is a 400 naming the field.
    foreign = twilio_request(
        AUTH_TOKEN, DOC_EXAMPLE, public_base_url="https://dlr.example.com", provider="twilio-main"
    )
    foreign_answer = server.post(foreign)
    assert foreign_answer.status_code == 400
    assert foreign_answer.json()["field"] == "AccountSid"
    ours = twilio_request(
        AUTH_TOKEN,
        UNDELIVERED,
        public_base_url="https://dlr.example.com",
        provider="twilio-main",
        json_body=True,
    )
    assert server.post(ours).json()["applied"] == 1

    with server.api(server.staff_token("twilio-reader", "sender")) as api:
        items = api.get(
            "/v1/messages", params={"provider_message_id": DOC_EXAMPLE["MessageSid"]}
        ).json()["items"]
        assert [(m["provider"], m["status"], m["final"], m["to"]) for m in items] == [
            ("twilio", "delivered", True, "+15558675310")
        ]
        assert items[0]["report_count"] == 2
        events = api.get(f"/v1/messages/{items[0]['id']}/events").json()["items"]
        assert [(e["provider_status"], e["status"], e["deliveries"]) for e in events] == [
            ("sent", "sent", 2),
            ("delivered", "delivered", 1),
        ]
        failed = api.get(
            "/v1/messages", params={"provider_message_id": UNDELIVERED["MessageSid"]}
        ).json()["items"]
        assert [
            (m["provider"], m["status"], m["error_code"], m["error_message"]) for m in failed
        ] == [("twilio-main", "undelivered", "30003", "Unreachable destination handset")]


# --- sending --------------------------------------------------------------------------------

FROM = "+15017250604"
TO = "+15558675310"
CREATED = datetime(2026, 11, 23, 9, 58, 0, tzinfo=UTC)
ITEM = OutboxItem(
    message_id="msg_01M83W4W6P5BT4957GZMXWPSSY",
    provider="twilio",
    to=TO,
    body="Your code is 482913",
    sender=None,
    attempts=1,
    in_doubt=True,
    created_at=CREATED,
)
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def twilio_message(sid: str, body: str, created: datetime, **fields: Any) -> dict[str, Any]:
    """A Message resource as the API answers it (abridged from Twilio's docs)."""
    return {
        "account_sid": ACCOUNT_SID,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": format_datetime(created),
        "date_sent": None,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": FROM,
        "num_segments": "1",
        "sid": sid,
        "status": "queued",
        "to": TO,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
        **fields,
    }


class RecordingHttpClient(HttpClient):
    """The SDK's pluggable transport, keeping each request it is asked to make."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(logging.getLogger("twilio-sdk"), is_async=False)
        self.answer = answer
        self.requests: list[dict[str, Any]] = []

    def request(self, method: str, uri: str, **kwargs: Any) -> TwilioResponse:
        self.requests.append({"method": method, "uri": uri, **kwargs})
        return TwilioResponse(201 if method == "POST" else 200, json.dumps(self.answer))


def sender(**config: Any) -> Sender:
    config.setdefault("account_sid", ACCOUNT_SID)
    made = provider(sender=FROM, **config).sender("https://dlr.example.com/")
    assert made is not None
    return made


def test_a_twilio_provider_sends_once_it_has_an_account_sid() -> None:
    assert provider().sender() is None
    assert provider(account_sid=ACCOUNT_SID).sender() is not None
    # Verification off and no Auth Token: nothing to authenticate a send with.
    assert (
        provider(account_sid=ACCOUNT_SID, secrets=[], insecure_no_signature=True).sender() is None
    )
    with pytest.raises(ValidationError, match="account_sid: is required to send"):
        provider(sender=FROM)
    with pytest.raises(ValidationError, match="api_key: is not used by twilio"):
        provider(account_sid=ACCOUNT_SID, api_key="SK123")


def test_the_send_request_is_the_one_the_sdk_makes() -> None:
    sent = sender().send_request(ITEM)
    sdk = RecordingHttpClient(twilio_message("SM" + "a" * 32, ITEM.body, CREATED))
    Client(ACCOUNT_SID, AUTH_TOKEN, http_client=sdk).messages.create(
        to=TO, from_=FROM, body=ITEM.body, status_callback=PUBLIC_URL
    )
    made = sdk.requests[0]
    assert (sent.method, str(sent.url)) == (made["method"], made["uri"]) == ("POST", MESSAGES_URL)
    assert dict(parse_qsl(sent.content.decode())) == made["data"]
    assert sent.headers["content-type"] == FORM
    credential = base64.b64decode(sent.headers["authorization"].removeprefix("Basic "))
    user, _, password = credential.decode().partition(":")
    assert (user, password) == made["auth"] == (ACCOUNT_SID, AUTH_TOKEN)


def test_the_status_callback_is_the_url_our_webhook_verifies() -> None:
    callback = dict(parse_qsl(sender().send_request(ITEM).content.decode()))["StatusCallback"]
    assert callback == PUBLIC_URL
    # Twilio signs the StatusCallback URL it was given; we rebuild public_base_url + path.
    provider().verify(form_request(DOC_EXAMPLE, signed_url=callback), RECEIVED_AT.timestamp())
    without_public_url = provider(account_sid=ACCOUNT_SID).sender(None)
    assert without_public_url is not None
    assert b"StatusCallback" not in without_public_url.send_request(ITEM).content


def test_the_lookup_request_is_the_list_the_sdk_makes() -> None:
    looked = sender().lookup_request(ITEM)
    sdk = RecordingHttpClient({"messages": [], "next_page_uri": None})
    Client(ACCOUNT_SID, AUTH_TOKEN, http_client=sdk).messages.list(
        to=TO, from_=FROM, date_sent_after="2026-11-23", page_size=100
    )
    made = sdk.requests[0]
    assert (looked.method, made["method"]) == ("GET", "GET")
    assert str(looked.url).split("?")[0] == made["uri"] == MESSAGES_URL
    assert dict(looked.url.params) == {key: str(value) for key, value in made["params"].items()}


def test_reading_the_answers_to_a_send() -> None:
    read = sender().read_send
    created = twilio_message("SM" + "a" * 32, ITEM.body, CREATED)
    assert read(httpx.Response(201, json=created)) == Accepted("SM" + "a" * 32, "queued")
    invalid = {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400}
    assert read(httpx.Response(400, json=invalid)) == Rejected("21211", "Invalid 'To' Phone Number")
    blocked = {"code": 30004, "status": 400}  # no message: our table of titles
    assert read(httpx.Response(400, json=blocked)) == Rejected("30004", "Message blocked")
    assert isinstance(read(httpx.Response(401, json={"code": 20003})), Deferred)
    assert isinstance(read(httpx.Response(500)), Unknown)


def test_a_lookup_finds_the_earliest_message_with_our_body_since_we_accepted_it() -> None:
    page = {
        "messages": [
            twilio_message("SM" + "1" * 32, ITEM.body, CREATED + timedelta(seconds=30)),
            twilio_message("SM" + "2" * 32, ITEM.body, CREATED + timedelta(seconds=5)),
            twilio_message("SM" + "3" * 32, "another text", CREATED + timedelta(seconds=1)),
            twilio_message("SM" + "4" * 32, ITEM.body, CREATED - timedelta(hours=1)),
            twilio_message("SM" + "5" * 32, ITEM.body, CREATED, to="+15550000000"),
        ],
        "next_page_uri": None,
    }
    found = sender().read_lookup(ITEM, httpx.Response(200, json=page))
    assert found == Accepted("SM" + "2" * 32, "queued")
    assert sender().read_lookup(ITEM, httpx.Response(200, json={"messages": []})) == NoSuchMessage()
    assert isinstance(sender().read_lookup(ITEM, httpx.Response(503)), Deferred)
