"""Standard Webhooks v1 verification (README "HTTP API", PROVIDERS.md vector)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from receiver.core.signatures.standard_webhooks import (
    SignedHeaders,
    decode_secret,
    signature,
    verify,
)
from receiver.errors import SignatureError

# The published vector.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

KEY = decode_secret(SECRET)
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
OTHER_KEY = decode_secret(OTHER_SECRET)
TOLERANCE = 300

DELIVERED_BODY = json.dumps(
    {
        "type": "message.status",
        "data": {
            "message_id": "prov-123",
            "status": "delivered",
            "occurred_at": "2026-11-23T09:59:58Z",
            "to": "+639171234567",
            "error_code": None,
            "error_message": None,
        },
    }
).encode()


def headers(
    msg_id: str = MSG_ID, timestamp: int | str = TIMESTAMP, sig: str = EXPECTED
) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": sig}


def check(
    body: bytes = BODY,
    hdrs: Mapping[str, str] | None = None,
    keys: list[bytes] | None = None,
    *,
    now: float = TIMESTAMP,
    tolerance_seconds: int = TOLERANCE,
) -> SignedHeaders:
    return verify(
        body,
        headers() if hdrs is None else hdrs,
        [KEY] if keys is None else keys,
        now=now,
        tolerance_seconds=tolerance_seconds,
    )


def rejected(code: str, **kwargs: object) -> SignatureError:
    with pytest.raises(SignatureError) as info:
        check(**kwargs)  # type: ignore[arg-type]
    exc = info.value
    assert type(exc) is SignatureError
    assert exc.code == code
    assert exc.status == 401
    assert exc.reason == code.lower()
    assert EXPECTED.removeprefix("v1,") not in exc.detail
    return exc


# --- the published vector ---------------------------------------------------------------


def test_published_vector_signature() -> None:
    assert signature(KEY, MSG_ID, TIMESTAMP, BODY) == EXPECTED


def test_published_vector_verifies() -> None:
    assert check() == SignedHeaders(msg_id=MSG_ID, timestamp=TIMESTAMP)


def test_published_vector_agrees_with_reference_package() -> None:
    when = datetime.fromtimestamp(TIMESTAMP, UTC)
    assert Webhook(SECRET).sign(MSG_ID, when, BODY.decode()) == EXPECTED


# --- interoperability with the official package -------------------------------------------


@pytest.mark.parametrize(
    ("secret", "msg_id", "body"),
    [
        pytest.param(SECRET, "msg_2p8xKz0bQm7dN1vR", DELIVERED_BODY, id="delivered-report"),
        pytest.param(
            "whsec_" + base64.b64encode(bytes(range(16))).decode(),
            "01JD8Q6ZK3V9T2M4N5P6R7S8W9",
            json.dumps(
                {
                    "type": "message.status",
                    "data": {
                        "message_id": "prov-9",
                        "status": "undelivered",
                        "error_code": "30003",
                        "error_message": "Número fuera de servicio",
                    },
                },
                ensure_ascii=False,
            ).encode(),
            id="16-byte-key-non-ascii-body",
        ),
        pytest.param(
            "whsec_" + base64.b64encode(bytes(range(64))).decode().rstrip("="),
            "evt_batch_0042",
            b'{"type":"message.status","data":[{"message_id":"a","status":"sent"}]}',
            id="64-byte-key-unpadded-batch",
        ),
        pytest.param(OTHER_SECRET, "msg_empty_body", b"", id="empty-body"),
    ],
)
def test_reference_package_signature_verifies(secret: str, msg_id: str, body: bytes) -> None:
    timestamp = 1795514398
    official = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body.decode())
    key = decode_secret(secret)
    assert signature(key, msg_id, timestamp, body) == official
    assert check(body, headers(msg_id, timestamp, official), [key], now=timestamp) == (
        SignedHeaders(msg_id=msg_id, timestamp=timestamp)
    )


def test_reference_package_verifies_our_signature() -> None:
    timestamp = int(time.time())
    sig = signature(KEY, "msg_live_check", timestamp, DELIVERED_BODY)
    parsed = Webhook(SECRET).verify(DELIVERED_BODY, headers("msg_live_check", timestamp, sig))
    assert parsed["data"]["status"] == "delivered"


# --- rotation and several signatures ---------------------------------------------------------


@pytest.mark.parametrize("signing_key", [KEY, OTHER_KEY], ids=["old-key", "new-key"])
def test_rotation_either_key_signs(signing_key: bytes) -> None:
    sig = signature(signing_key, MSG_ID, TIMESTAMP, BODY)
    assert check(hdrs=headers(sig=sig), keys=[KEY, OTHER_KEY]).msg_id == MSG_ID
    assert check(hdrs=headers(sig=sig), keys=[OTHER_KEY, KEY]).msg_id == MSG_ID


def test_signature_by_a_retired_key_is_invalid() -> None:
    rejected("SIGNATURE_INVALID", keys=[OTHER_KEY])


def test_no_keys_is_invalid() -> None:
    rejected("SIGNATURE_INVALID", keys=[])


WRONG = "v1," + base64.b64encode(bytes(32)).decode()
NEW_SIG = signature(OTHER_KEY, MSG_ID, TIMESTAMP, BODY)


@pytest.mark.parametrize(
    "sig_header",
    [
        pytest.param(f"{WRONG} {EXPECTED}", id="wrong-then-valid"),
        pytest.param(f"{EXPECTED} {WRONG}", id="valid-then-wrong"),
        pytest.param(f"{NEW_SIG} {EXPECTED}", id="sender-signs-with-both-keys"),
        pytest.param(f"v2,{EXPECTED[3:]} {EXPECTED}", id="unknown-version-skipped"),
        pytest.param(f"v1,not-base64! {EXPECTED}", id="bad-base64-entry-skipped"),
        pytest.param(f"nocomma {EXPECTED}", id="entry-without-comma-skipped"),
        pytest.param(f"v1, {EXPECTED}", id="empty-entry-skipped"),
        pytest.param(f"  {EXPECTED}  {WRONG} ", id="extra-spaces"),
    ],
)
def test_one_valid_signature_among_several_is_enough(sig_header: str) -> None:
    assert check(hdrs=headers(sig=sig_header)) == SignedHeaders(MSG_ID, TIMESTAMP)


def test_several_signatures_none_valid_is_invalid() -> None:
    rejected("SIGNATURE_INVALID", hdrs=headers(sig=f"{WRONG} {NEW_SIG}"))


# --- tolerance --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [TIMESTAMP - TOLERANCE, TIMESTAMP - 1, TIMESTAMP, TIMESTAMP + 1, TIMESTAMP + TOLERANCE],
    ids=["future-at-boundary", "future-1s", "exact", "past-1s", "stale-at-boundary"],
)
def test_within_tolerance_accepted(now: float) -> None:
    assert check(now=now).timestamp == TIMESTAMP


@pytest.mark.parametrize(
    ("now", "code"),
    [
        (TIMESTAMP + TOLERANCE + 1, "TIMESTAMP_STALE"),
        (TIMESTAMP + TOLERANCE + 0.001, "TIMESTAMP_STALE"),
        (TIMESTAMP + 86_400, "TIMESTAMP_STALE"),
        (TIMESTAMP - TOLERANCE - 1, "TIMESTAMP_FUTURE"),
        (TIMESTAMP - TOLERANCE - 0.001, "TIMESTAMP_FUTURE"),
        (TIMESTAMP - 86_400, "TIMESTAMP_FUTURE"),
    ],
)
def test_outside_tolerance_rejected(now: float, code: str) -> None:
    exc = rejected(code, now=now)
    assert str(TOLERANCE) in exc.detail


def test_tolerance_is_the_injected_one() -> None:
    assert check(now=TIMESTAMP + 60, tolerance_seconds=60).timestamp == TIMESTAMP
    rejected("TIMESTAMP_STALE", now=TIMESTAMP + 61, tolerance_seconds=60)
    rejected("TIMESTAMP_FUTURE", now=TIMESTAMP - 61, tolerance_seconds=60)


def test_freshness_checked_before_the_signature() -> None:
    # A stale request with a wrong signature says "stale", never "invalid".
    rejected("TIMESTAMP_STALE", hdrs=headers(sig=WRONG), now=TIMESTAMP + 3600)


# --- malformed headers ---------------------------------------------------------------------------


def without(name: str) -> dict[str, str]:
    h = headers()
    del h[name]
    return h


FULLWIDTH_TIMESTAMP = "".join(chr(0xFF10 + int(d)) for d in str(TIMESTAMP))

MALFORMED = [
    # missing or empty headers
    pytest.param(without("webhook-id"), "SIGNATURE_MISSING", id="no-id"),
    pytest.param(without("webhook-timestamp"), "SIGNATURE_MISSING", id="no-timestamp"),
    pytest.param(without("webhook-signature"), "SIGNATURE_MISSING", id="no-signature"),
    pytest.param({}, "SIGNATURE_MISSING", id="no-headers"),
    pytest.param(headers(msg_id=""), "SIGNATURE_MISSING", id="empty-id"),
    pytest.param(headers(timestamp=""), "SIGNATURE_MISSING", id="empty-timestamp"),
    pytest.param(headers(sig=""), "SIGNATURE_MISSING", id="empty-signature"),
    # timestamps
    pytest.param(headers(timestamp="yesterday"), "SIGNATURE_MALFORMED", id="ts-word"),
    pytest.param(headers(timestamp="-1614265330"), "SIGNATURE_MALFORMED", id="ts-negative"),
    pytest.param(headers(timestamp="+1614265330"), "SIGNATURE_MALFORMED", id="ts-plus"),
    pytest.param(headers(timestamp="1614265330.0"), "SIGNATURE_MALFORMED", id="ts-float"),
    pytest.param(headers(timestamp="1.61426533e9"), "SIGNATURE_MALFORMED", id="ts-exponent"),
    pytest.param(headers(timestamp="9" * 20), "SIGNATURE_MALFORMED", id="ts-huge"),
    pytest.param(headers(timestamp="1614265330000"), "SIGNATURE_MALFORMED", id="ts-millis"),
    pytest.param(headers(timestamp=" 1614265330"), "SIGNATURE_MALFORMED", id="ts-lead-space"),
    pytest.param(headers(timestamp="1614265330 "), "SIGNATURE_MALFORMED", id="ts-trail-space"),
    pytest.param(headers(timestamp="1614265330\n"), "SIGNATURE_MALFORMED", id="ts-newline"),
    pytest.param(headers(timestamp="1_614_265_330"), "SIGNATURE_MALFORMED", id="ts-underscores"),
    pytest.param(headers(timestamp=FULLWIDTH_TIMESTAMP), "SIGNATURE_MALFORMED", id="ts-fullwidth"),
    pytest.param(headers(timestamp="0x6037bc72"), "SIGNATURE_MALFORMED", id="ts-hex"),
    # signature entries
    pytest.param(headers(sig=EXPECTED[3:]), "SIGNATURE_MALFORMED", id="sig-no-comma"),
    pytest.param(headers(sig="v1" + EXPECTED[3:]), "SIGNATURE_MALFORMED", id="sig-no-comma-v1"),
    pytest.param(headers(sig="v2," + EXPECTED[3:]), "SIGNATURE_MALFORMED", id="sig-v2"),
    pytest.param(headers(sig="V1," + EXPECTED[3:]), "SIGNATURE_MALFORMED", id="sig-V1-upper"),
    pytest.param(headers(sig="v1a," + EXPECTED[3:]), "SIGNATURE_MALFORMED", id="sig-v1a-asym"),
    pytest.param(headers(sig="v1,not base64!"), "SIGNATURE_MALFORMED", id="sig-bad-base64"),
    pytest.param(headers(sig="v1,g0hM9SsE+OTPJTG"), "SIGNATURE_MALFORMED", id="sig-padding"),
    pytest.param(
        headers(sig="v1," + EXPECTED[3:].replace("+", "-").replace("/", "_")),
        "SIGNATURE_MALFORMED",
        id="sig-urlsafe-base64",
    ),
    pytest.param(headers(sig="v1,"), "SIGNATURE_MALFORMED", id="sig-empty-v1"),
    pytest.param(headers(sig=","), "SIGNATURE_MALFORMED", id="sig-comma-only"),
    pytest.param(headers(sig="   "), "SIGNATURE_MALFORMED", id="sig-only-spaces"),
    pytest.param(headers(sig="v1, v2, ,"), "SIGNATURE_MALFORMED", id="sig-empty-entries"),
    # well-formed but wrong
    pytest.param(headers(sig=WRONG), "SIGNATURE_INVALID", id="sig-wrong"),
    pytest.param(headers(sig="v1,YWJj"), "SIGNATURE_INVALID", id="sig-short-digest"),
    pytest.param(
        headers(sig=EXPECTED[:10] + ("A" if EXPECTED[10] != "A" else "B") + EXPECTED[11:]),
        "SIGNATURE_INVALID",
        id="sig-one-char-changed",
    ),
    pytest.param(
        headers(msg_id="msg_p5jXN8AQM9LWM0D4loKWxJel"), "SIGNATURE_INVALID", id="other-id"
    ),
    pytest.param(headers(timestamp=TIMESTAMP + 1), "SIGNATURE_INVALID", id="other-timestamp"),
    # webhook-id
    pytest.param(headers(msg_id="m" * 256), "SIGNATURE_MALFORMED", id="id-256-chars"),
    pytest.param(headers(msg_id="msg_1\n"), "SIGNATURE_MALFORMED", id="id-newline"),
    pytest.param(headers(msg_id="msg\x00_1"), "SIGNATURE_MALFORMED", id="id-nul"),
    pytest.param(headers(msg_id="msg\x7f_1"), "SIGNATURE_MALFORMED", id="id-del"),
    pytest.param(headers(msg_id="msg\t1"), "SIGNATURE_MALFORMED", id="id-tab"),
]


@pytest.mark.parametrize(("hdrs", "code"), MALFORMED)
def test_bad_headers_raise_signature_error(hdrs: dict[str, str], code: str) -> None:
    rejected(code, hdrs=hdrs)


@pytest.mark.parametrize(
    "body",
    [
        b'{"test": 2432232315}',
        b'{"test": 2432232314} ',
        b'{"test":2432232314}',
        b"",
        BODY + b"\n",
    ],
)
def test_tampered_body_is_invalid(body: bytes) -> None:
    rejected("SIGNATURE_INVALID", body=body)


def test_id_of_255_chars_is_accepted() -> None:
    msg_id = "m" * 255
    sig = signature(KEY, msg_id, TIMESTAMP, BODY)
    assert check(hdrs=headers(msg_id=msg_id, sig=sig)).msg_id == msg_id


def test_twelve_digit_timestamp_is_well_formed_but_in_the_future() -> None:
    rejected("TIMESTAMP_FUTURE", hdrs=headers(timestamp="999999999999"))


@given(
    msg_id=st.text(max_size=40),
    timestamp=st.one_of(st.text(max_size=20), st.integers().map(str)),
    sig=st.one_of(
        st.text(max_size=80),
        st.lists(st.sampled_from(["v1", "v2", "", "v1,", EXPECTED[:20], "====", "v1,===="])).map(
            " ".join
        ),
    ),
)
def test_any_header_values_give_signature_error_or_pass(
    msg_id: str, timestamp: str, sig: str
) -> None:
    try:
        check(hdrs={"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": sig})
    except SignatureError as exc:
        assert type(exc) is SignatureError
        assert exc.code in {
            "SIGNATURE_MISSING",
            "SIGNATURE_MALFORMED",
            "SIGNATURE_INVALID",
            "TIMESTAMP_STALE",
            "TIMESTAMP_FUTURE",
        }
    else:  # only the real signature could pass, and hypothesis cannot guess it
        pytest.fail(f"accepted {msg_id!r} {timestamp!r} {sig!r}")


# --- decode_secret --------------------------------------------------------------------------------

KEY16 = bytes.fromhex("9c921bae2b14ff5ea19957c439aa0a22")


def test_decode_published_secret() -> None:
    assert base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == KEY
    assert len(KEY) == 24


@pytest.mark.parametrize(
    "secret",
    ["whsec_nJIbrisU/16hmVfEOaoKIg==", "whsec_nJIbrisU/16hmVfEOaoKIg"],
    ids=["padded", "unpadded"],
)
def test_decode_secret_with_or_without_padding(secret: str) -> None:
    assert decode_secret(secret) == KEY16


def test_decode_secret_one_pad_char_missing() -> None:
    key = bytes(range(17))  # base64 ends in a single "="
    encoded = base64.b64encode(key).decode()
    assert encoded.endswith("=") and not encoded.endswith("==")
    assert decode_secret("whsec_" + encoded) == key
    assert decode_secret("whsec_" + encoded.rstrip("=")) == key


@pytest.mark.parametrize(
    ("secret", "match"),
    [
        pytest.param("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", id="no-prefix"),
        pytest.param("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", id="upper-prefix"),
        pytest.param("whsec-MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", id="dash-prefix"),
        pytest.param(" whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", id="leading-space"),
        pytest.param("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!", "base64", id="bad-char"),
        pytest.param("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ", "base64", id="trailing-space"),
        pytest.param("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwA", "base64", id="length-mod-4-is-1"),
        pytest.param("whsec_MfKQ9r8G=KYqrTwjUPD8ILPZIo2LaLaSw", "base64", id="padding-inside"),
        pytest.param("whsec_", "16 bytes", id="empty"),
        pytest.param("whsec_" + base64.b64encode(bytes(15)).decode(), "16 bytes", id="15-byte-key"),
        pytest.param("whsec_c2VjcmV0", "16 bytes", id="6-byte-key"),
    ],
)
def test_decode_secret_rejects(secret: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        decode_secret(secret)
    assert type(info.value) is ValueError


def test_decode_secret_accepts_16_byte_key() -> None:
    assert decode_secret("whsec_" + base64.b64encode(bytes(16)).decode()) == bytes(16)
