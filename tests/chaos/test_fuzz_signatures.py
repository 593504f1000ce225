"""Hypothesis against every signature scheme in ``receiver.core.signatures``, in process.

Each scheme gets arbitrary headers, bodies, URLs and parameters, and requests that are
correctly signed with a key we hold but carry arbitrary signed times: timestamp headers
of any text, JWT time claims of any JSON value (huge integers, NaN, strings, null).
Whatever comes in, the only error that may come out is ``SignatureError``, and a request
that verifies was signed within the tolerance window.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jwt.api_jws import PyJWS

from receiver.core.signatures import (
    basic_auth,
    messagebird_jwt,
    plivo,
    sinch,
    standard_webhooks,
    telnyx_ed25519,
    twilio,
    vonage,
)
from receiver.errors import SignatureError

TOLERANCE = 300
SECRET = "a-shared-secret-of-at-least-32-bytes"
WHSEC = standard_webhooks.decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
TELNYX = Ed25519PrivateKey.generate()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

latin1 = st.text(st.characters(max_codepoint=255, exclude_characters="\r\n\x00"), max_size=60)
bodies = st.binary(max_size=120)
urls = st.one_of(
    st.just("https://dlr.example.com/webhooks/p?a=1&b=2"),
    st.builds("https://dlr.example.com/webhooks/p?{}".format, latin1),
    latin1,
)
params = st.lists(st.tuples(st.text(max_size=10), st.text(max_size=20)), max_size=4)
signed_times = st.one_of(
    st.integers(-(10**14), 10**14).map(str),
    st.integers(int(time.time()) - 2 * TOLERANCE, int(time.time()) + 2 * TOLERANCE).map(str),
    st.sampled_from(["999999999999", "0", "-1", "1e9", " 1700000000", "1700000000.5", ""]),
    latin1,
)
claims = st.one_of(
    st.integers(),
    st.integers(int(time.time()) - 2 * TOLERANCE, int(time.time()) + 2 * TOLERANCE),
    st.sampled_from([10**400, -(10**400), 2**63, 253402300800, -62135596801]),
    st.floats(),
    st.none(),
    st.booleans(),
    st.text(max_size=10),
)


def headers_with(*names: str) -> st.SearchStrategy[dict[str, str]]:
    """Lower-case header names, the scheme's own among them, with any latin-1 values."""
    return st.dictionaries(st.sampled_from([*names, "x-other"]) | st.text(max_size=8), latin1)


def only_signature_errors(check: Callable[[], Any]) -> Any:
    """What ``check`` returns, or None if it raised SignatureError."""
    try:
        return check()
    except SignatureError:
        return None


def fresh(moment: float) -> bool:
    return abs(moment - time.time()) <= TOLERANCE + 60


@FUZZ
@given(body=bodies, extra=headers_with("webhook-signature"), stamp=signed_times, msg_id=latin1)
@example(body=b"", extra={}, stamp="\u00b2", msg_id="")  # a digit to isdigit(), not to int()
def test_standard_webhooks(body: bytes, extra: dict[str, str], stamp: str, msg_id: str) -> None:
    headers = {"webhook-id": msg_id, "webhook-timestamp": stamp} | extra
    if stamp.isascii() and stamp.isdigit() and "webhook-signature" not in extra:
        headers["webhook-signature"] = standard_webhooks.signature(WHSEC, msg_id, int(stamp), body)
    signed = only_signature_errors(
        lambda: standard_webhooks.verify(
            body, headers, [WHSEC], now=time.time(), tolerance_seconds=TOLERANCE
        )
    )
    assert signed is None or fresh(signed.timestamp)


@FUZZ
@given(body=bodies, extra=headers_with(sinch.SIGNATURE_HEADER), stamp=signed_times, nonce=latin1)
def test_sinch(body: bytes, extra: dict[str, str], stamp: str, nonce: str) -> None:
    headers = {sinch.NONCE_HEADER: nonce, sinch.TIMESTAMP_HEADER: stamp} | extra
    if sinch.SIGNATURE_HEADER not in extra:
        headers[sinch.SIGNATURE_HEADER] = sinch.signature(SECRET, body, nonce, stamp)
    signed = only_signature_errors(
        lambda: sinch.verify(body, headers, [SECRET], now=time.time(), tolerance_seconds=TOLERANCE)
    )
    assert signed is None or fresh(signed.timestamp)


@FUZZ
@given(body=bodies, extra=headers_with(telnyx_ed25519.SIGNATURE_HEADER), stamp=signed_times)
def test_telnyx_ed25519(body: bytes, extra: dict[str, str], stamp: str) -> None:
    headers = {telnyx_ed25519.TIMESTAMP_HEADER: stamp} | extra
    if telnyx_ed25519.SIGNATURE_HEADER not in extra:
        # The header's text as sent; signed_message itself takes only what verify lets by.
        signature = TELNYX.sign(stamp.encode("latin-1") + b"|" + body)
        headers[telnyx_ed25519.SIGNATURE_HEADER] = base64.b64encode(signature).decode()
    key = TELNYX.public_key()
    timestamp = only_signature_errors(
        lambda: telnyx_ed25519.verify(
            body, headers, [key], now=time.time(), tolerance_seconds=TOLERANCE
        )
    )
    assert timestamp is None or fresh(timestamp)


@FUZZ
@given(
    url=urls,
    body=bodies,
    token_claims=st.dictionaries(
        st.sampled_from(["iss", "nbf", "exp", "url_hash", "payload_hash", "jti"]), claims
    ),
    raw_token=st.one_of(st.none(), latin1),
)
def test_messagebird_jwt(
    url: str, body: bytes, token_claims: dict[str, Any], raw_token: str | None
) -> None:
    # Mostly a token that verifies but for the drawn claims: right issuer and hashes.
    payload = {
        "iss": messagebird_jwt.ISSUER,
        "url_hash": messagebird_jwt.url_hash(url),
        "payload_hash": messagebird_jwt.payload_hash(body) if body else None,
    } | token_claims
    token = raw_token
    if token is None:
        token = PyJWS().encode(json.dumps(payload).encode(), SECRET, algorithm="HS256")
    verified = only_signature_errors(
        lambda: messagebird_jwt.verify(
            token, url=url, body=body, keys=[SECRET], now=time.time(), tolerance_seconds=TOLERANCE
        )
    )
    if verified is not None:
        assert verified.not_before <= time.time() + TOLERANCE + 60
        assert verified.expires > time.time() - TOLERANCE - 60


@FUZZ
@given(body=bodies, issued_at=claims, claimed_hash=st.one_of(st.none(), latin1), raw=latin1)
def test_vonage_messages(body: bytes, issued_at: Any, claimed_hash: str | None, raw: str) -> None:
    payload = {"iat": issued_at, "payload_hash": claimed_hash or vonage.payload_hash(body)}
    token = jwt.encode(payload, SECRET * 2, algorithm="HS256")
    for candidate in (token, raw):
        verified = only_signature_errors(
            lambda candidate=candidate: vonage.verify_messages(
                body, candidate, [SECRET * 2], now=time.time(), tolerance_seconds=TOLERANCE
            )
        )
        assert verified is None or fresh(verified["iat"])
    assert only_signature_errors(lambda: vonage.bearer_token({"authorization": raw})) in (
        None,
        raw.strip().partition(" ")[2].strip(),
    )


@FUZZ
@given(
    fields=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5),
    stamp=signed_times,
    method=st.sampled_from(list(vonage.DIGEST_HEX_LENGTH)),
    sig=st.one_of(st.none(), latin1),
)
def test_vonage_sms(fields: dict[str, str], stamp: str, method: Any, sig: str | None) -> None:
    fields = fields | {"timestamp": stamp}
    fields["sig"] = sig if sig is not None else vonage.sms_signature(fields, SECRET, method)
    timestamp = only_signature_errors(
        lambda: vonage.verify_sms(
            fields, [SECRET], method, now=time.time(), tolerance_seconds=TOLERANCE
        )
    )
    assert timestamp is None or fresh(timestamp)


@FUZZ
@given(
    url=urls,
    form=params,
    extra=headers_with(*plivo.V3_SIGNATURE_HEADERS, *plivo.V2_SIGNATURE_HEADERS),
    nonce=latin1,
    method=st.sampled_from(["GET", "POST"]),
    version=st.sampled_from(["v3", "v2"]),
)
def test_plivo(
    url: str,
    form: list[tuple[str, str]],
    extra: dict[str, str],
    nonce: str,
    method: str,
    version: str,
) -> None:
    if version == "v3":
        headers = {plivo.V3_NONCE_HEADER: nonce, plivo.V3_SIGNATURE_HEADERS[0]: ""}
        headers[plivo.V3_SIGNATURE_HEADERS[0]] = plivo.sign_v3(SECRET, method, url, nonce, form)
    else:
        headers = {plivo.V2_NONCE_HEADER: nonce}
        headers[plivo.V2_SIGNATURE_HEADERS[0]] = plivo.sign_v2(SECRET, url, nonce)
    for candidate in (headers, headers | extra, extra):
        only_signature_errors(
            lambda candidate=candidate: plivo.verify(
                candidate, method=method, url=url, form_params=form, tokens=[SECRET]
            )
        )


@FUZZ
@given(
    url=urls,
    form=params,
    body=st.one_of(st.none(), bodies),
    extra=headers_with(twilio.SIGNATURE_HEADER, twilio.SETTINGS_HEADER),
    algorithm=st.sampled_from([twilio.HMAC_SHA1, twilio.HMAC_SHA256]),
)
def test_twilio(
    url: str, form: list[tuple[str, str]], body: bytes | None, extra: dict[str, str], algorithm: str
) -> None:
    signed = {twilio.SIGNATURE_HEADER: twilio.signature(SECRET, url, form, algorithm=algorithm)}
    for headers in (signed, signed | extra, extra):
        only_signature_errors(
            lambda headers=headers: twilio.verify(
                url, headers, [SECRET], params=form, json_body=body
            )
        )


@FUZZ
@given(authorization=st.one_of(latin1, st.builds("Basic {}".format, latin1)))
def test_basic_auth(authorization: str) -> None:
    only_signature_errors(
        lambda: basic_auth.verify({"authorization": authorization}, ["user:s3cret-pass"])
    )
