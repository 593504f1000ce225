"""Provider type ``telnyx``: Ed25519 signatures, delivery-update events, end to end.

Telnyx publishes no signer (its SDK only verifies), so requests are signed with
``cryptography`` and, for the cross-checks, with PyNaCl (the SDK's own Ed25519 library);
the official ``telnyx`` SDK (4.189, ``client.webhooks.unwrap`` and
``telnyx.lib.webhook_verification``) must accept what our builder makes. Those checks
need ``telnyx[webhooks]`` (PyNaCl) and are skipped without it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from receiver.config import load
from receiver.core.reports import Outcome, Report
from receiver.core.signatures import telnyx_ed25519
from receiver.core.status import Status
from receiver.errors import ConfigError, PayloadInvalid, SignatureError
from receiver.providers import PROVIDER_TYPES
from receiver.providers.base import InboundRequest
from receiver.providers.telnyx import STATUS_MAP, TelnyxConfig, TelnyxProvider
from receiver.testing.telnyx import telnyx_event, telnyx_public_key, telnyx_request

PRIVATE_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC_KEY = telnyx_public_key(PRIVATE_KEY)
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(100, 132)))
OTHER_PUBLIC_KEY = telnyx_public_key(OTHER_KEY)
SENT_AT = 1_795_000_000  # 2026-11-18T08:26:40Z, the telnyx-timestamp header
RECEIVED_AT = datetime.fromtimestamp(SENT_AT + 1, UTC)
URL = "https://dlr.example.com/webhooks/telnyx"

# After the documented message.finalized example ("Receiving Webhooks for Messaging",
# "Delivery status payload": a Telnyx long code to a T-Mobile long code): its event id,
# timestamps and cost are the docs'; the other fields follow the deliveryUpdate schema.
FINALIZED = {
    "data": {
        "event_type": "message.finalized",
        "id": "4ee8c3a6-4995-4309-a3c6-38e3db9ea4be",
        "occurred_at": "2019-12-09T21:32:14.148+00:00",
        "payload": {
            "completed_at": "2019-12-09T21:32:14.148+00:00",
            "cost": {"amount": "0.0051", "currency": "USD"},
            "cost_breakdown": {
                "carrier_fee": {"amount": "0.00305", "currency": "USD"},
                "rate": {"amount": "0.00205", "currency": "USD"},
            },
            "direction": "outbound",
            "encoding": "GSM-7",
            "errors": [],
            "from": {
                "carrier": "Telnyx",
                "line_type": "Wireless",
                "phone_number": "+13125550000",
            },
            "id": "ac012fa9-2e6a-4a2f-9e5c-4ea2e2d8d7f1",
            "media": [],
            "messaging_profile_id": "bf6307bd-884d-4c1f-b6ea-c62b8c495d3c",
            "organization_id": "9d76d591-1b7e-4a52-b1a0-3bb5f8b4d2b4",
            "parts": 1,
            "received_at": "2019-12-09T21:32:13.596+00:00",
            "record_type": "message",
            "sent_at": "2019-12-09T21:32:13.613+00:00",
            "tags": [],
            "text": "Hello there!",
            "to": [
                {
                    "carrier": "T-MOBILE USA, INC.",
                    "line_type": "Wireless",
                    "phone_number": "+13125550001",
                    "status": "delivered",
                }
            ],
            "type": "SMS",
            "valid_until": "2019-12-09T22:32:13.596+00:00",
            "webhook_failover_url": None,
            "webhook_url": "https://dlr.example.com/webhooks/telnyx",
        },
        "record_type": "event",
    },
    "meta": {"attempt": 1, "delivered_to": "https://dlr.example.com/webhooks/telnyx"},
}

# The documented deliveryUpdate callback (API reference), a message.sent event; its
# occurred_at is the placeholder "date-time" there, so a real stamp stands in.
SENT = {
    "data": {
        "record_type": "event",
        "id": "86f58db9-0fe3-4adc-9d1f-46e66e6e9323",
        "event_type": "message.sent",
        "occurred_at": "2019-01-23T18:10:02.574Z",
        "payload": {
            "record_type": "message",
            "direction": "outbound",
            "id": "40385f64-5717-4562-b3fc-2c963f66afa6",
            "type": "MMS",
            "messaging_profile_id": "4000eba1-a0c0-4563-9925-b25e842a7cb6",
            "organization_id": "b448f9cc-a842-4784-98e9-03c1a5872950",
            "from": {"phone_number": "+18445550001", "carrier": "TELNYX LLC", "line_type": "VoIP"},
            "to": [
                {
                    "phone_number": "+18665550001",
                    "status": "queued",
                    "carrier": "T-MOBILE USA, INC.",
                    "line_type": "Wireless",
                }
            ],
            "cc": [],
            "text": "Hello, World!",
            "subject": "From Telnyx!",
            "media": [
                {
                    "url": "https://www.example.com/media/AW3F4fFD_400x400.png",
                    "content_type": None,
                    "sha256": None,
                    "size": None,
                }
            ],
            "webhook_url": "https://www.example.com/hooks",
            "webhook_failover_url": "https://backup.example.com/hooks",
            "encoding": "GSM-7",
            "parts": 1,
            "tags": ["Greetings"],
            "cost": {"amount": 0.0051, "currency": "USD"},
            "cost_breakdown": {
                "carrier_fee": {"amount": 0.00305, "currency": "USD"},
                "rate": {"amount": 0.00205, "currency": "USD"},
            },
            "tcr_campaign_id": "TCPA3X7",
            "tcr_campaign_billable": True,
            "tcr_campaign_registered": "REGISTERED",
            "received_at": "2019-01-23T18:10:02.574Z",
            "sent_at": None,
            "completed_at": None,
            "valid_until": None,
            "errors": [],
        },
    },
    "meta": {"attempt": 1, "delivered_to": "https://www.example.com/hooks"},
}

# An inbound text (message.received): not a delivery report.
RECEIVED = {
    "data": {
        "event_type": "message.received",
        "id": "b301ed3f-1490-491f-995f-6e64e69674d4",
        "occurred_at": "2026-11-18T08:26:38.000+00:00",
        "payload": {
            "direction": "inbound",
            "from": {
                "carrier": "T-Mobile USA",
                "line_type": "Wireless",
                "phone_number": "+13125550002",
            },
            "id": "84cca175-9755-4859-b67f-4730d7f58aa3",
            "text": "STOP",
            "to": [{"phone_number": "+18445550001", "status": "webhook_delivered"}],
            "type": "SMS",
        },
        "record_type": "event",
    },
    "meta": {"attempt": 1, "delivered_to": URL},
}


def provider(**config: Any) -> TelnyxProvider:
    config.setdefault("public_key", PUBLIC_KEY)
    return TelnyxProvider("telnyx", TelnyxConfig(type="telnyx", **config))


def inbound(
    payload: Any,
    *,
    key: Ed25519PrivateKey = PRIVATE_KEY,
    timestamp: int = SENT_AT,
    headers: dict[str, str] | None = None,
) -> InboundRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signed = telnyx_request(key, body, timestamp=timestamp)
    return InboundRequest(
        method="POST",
        url=URL,
        headers={**signed.headers, **(headers or {})},
        query_string=b"",
        body=signed.body,
        media_type="application/json",
        received_at=RECEIVED_AT,
    )


def with_payload(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    event = json.loads(json.dumps(base))
    event["data"]["payload"].update(changes)
    return event


def with_data(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    event = json.loads(json.dumps(base))
    event["data"].update(changes)
    return event


def recipient(number: str, status: str) -> dict[str, str]:
    return {"phone_number": number, "status": status, "carrier": "Verizon", "line_type": "Wireless"}


# --- the class and its config ---------------------------------------------------------------


def test_registered_with_its_attributes() -> None:
    assert PROVIDER_TYPES["telnyx"] is TelnyxProvider
    assert TelnyxProvider.config_model is TelnyxConfig
    assert frozenset({"application/json"}) == TelnyxProvider.media_types
    assert frozenset({"POST"}) == TelnyxProvider.methods


def test_config_defaults_and_single_key_becomes_a_list() -> None:
    config = TelnyxConfig(type="telnyx", public_key=PUBLIC_KEY)
    assert config.public_key == [PUBLIC_KEY]
    assert config.secrets == []
    assert config.tolerance_seconds == 300
    assert provider().verifies is True


def test_config_key_list_and_whitespace() -> None:
    config = TelnyxConfig.model_validate(
        {"type": "telnyx", "public_key": [f"  {PUBLIC_KEY}\n", OTHER_PUBLIC_KEY]}
    )
    assert config.public_key == [PUBLIC_KEY, OTHER_PUBLIC_KEY]


def test_config_is_frozen() -> None:
    config = TelnyxConfig(type="telnyx", public_key=PUBLIC_KEY)
    with pytest.raises(ValidationError):
        config.public_key = [OTHER_PUBLIC_KEY]  # type: ignore[misc]


def test_public_key_required_instead_of_secrets() -> None:
    with pytest.raises(ValidationError, match="public_key: is required"):
        TelnyxConfig(type="telnyx")
    with pytest.raises(ValidationError, match="insecure_no_signature"):
        TelnyxConfig(type="telnyx")


def test_secrets_refused_with_a_pointer_to_public_key() -> None:
    with pytest.raises(ValidationError, match="secrets: telnyx signs with Ed25519"):
        TelnyxConfig(type="telnyx", public_key=PUBLIC_KEY, secrets=["whsec_abc"])


def test_insecure_needs_no_key() -> None:
    p = provider(public_key=None, insecure_no_signature=True)
    assert p.verifies is False
    assert p.parse(inbound(FINALIZED))[0].status is Status.DELIVERED


@pytest.mark.parametrize(
    ("key", "match"),
    [
        pytest.param("not a key!", "must be the base64 of a 32-byte", id="not-base64"),
        pytest.param(base64.b64encode(b"x" * 16).decode(), "not of 16 bytes", id="16-bytes"),
        pytest.param(base64.b64encode(b"x" * 64).decode(), "not of 64 bytes", id="64-bytes"),
        pytest.param(bytes(range(32)).hex(), "must be the base64", id="hex"),
        pytest.param(PUBLIC_KEY.rstrip("="), "must be the base64", id="unpadded"),
        pytest.param(PUBLIC_KEY.replace("+", "-").replace("/", "_") + "-", "base64", id="urlsafe"),
        pytest.param("", "must be the base64", id="empty"),
        pytest.param([], "at least one key", id="empty-list"),
        pytest.param([PUBLIC_KEY, "nope"], r"\[1\] must be the base64", id="second-bad"),
        pytest.param(42, "public_key", id="number"),
    ],
)
def test_bad_public_key_rejected(key: Any, match: str) -> None:
    with pytest.raises(ValidationError, match=match) as info:
        TelnyxConfig(type="telnyx", public_key=key)
    assert info.value.errors()[0]["loc"][0] == "public_key"


@pytest.mark.parametrize("extra", [{"public_keys": [PUBLIC_KEY]}, {"signing_key": "x"}])
def test_unknown_key_rejected(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        TelnyxConfig(type="telnyx", public_key=PUBLIC_KEY, **extra)
    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]


@pytest.mark.parametrize("type_", ["standard", "Telnyx", ""])
def test_wrong_type_rejected(type_: str) -> None:
    with pytest.raises(ValidationError):
        TelnyxConfig(type=type_, public_key=PUBLIC_KEY)  # type: ignore[arg-type]


def write_toml(tmp_path: Path, table: str) -> Path:
    path = tmp_path / "receiver.toml"
    path.write_text(f'session_secret = "{"s" * 40}"\n\n[providers.tx]\ntype = "telnyx"\n{table}\n')
    return path


def test_config_file_with_telnyx_provider(tmp_path: Path) -> None:
    config = load(write_toml(tmp_path, f'public_key = "{PUBLIC_KEY}"\ntolerance_seconds = 60'))
    built = config.providers["tx"]
    assert isinstance(built, TelnyxProvider)
    assert built.config.tolerance_seconds == 60


@pytest.mark.parametrize(
    ("table", "key", "says"),
    [
        ("", "providers.tx.public_key", "is required"),
        ('public_key = "abc"', "providers.tx.public_key", "32-byte Ed25519 public key"),
        (f'public_key = "{PUBLIC_KEY}"\nsecrets = ["x"]', "providers.tx.secrets", "Ed25519"),
        (f'public_key = "{PUBLIC_KEY}"\npublickey = "x"', "providers.tx.publickey", "not a known"),
    ],
)
def test_config_file_errors_name_the_key(tmp_path: Path, table: str, key: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(write_toml(tmp_path, table))
    assert info.value.key == key
    assert says in info.value.problem


# --- the signature scheme -------------------------------------------------------------------


def test_sign_matches_the_published_construction() -> None:
    body = b'{"data": {}}'
    signature = base64.b64decode(telnyx_ed25519.sign(PRIVATE_KEY, SENT_AT, body))
    PRIVATE_KEY.public_key().verify(signature, f"{SENT_AT}|".encode() + body)
    assert len(signature) == 64


def test_public_key_text_is_the_raw_key_in_base64() -> None:
    raw = base64.b64decode(PUBLIC_KEY)
    assert raw == PRIVATE_KEY.public_key().public_bytes_raw()
    assert len(PUBLIC_KEY) == 44
    assert telnyx_ed25519.public_key_text(PRIVATE_KEY.public_key()) == PUBLIC_KEY


def test_verify_accepts_a_documented_event() -> None:
    provider().verify(inbound(FINALIZED), now=SENT_AT + 2)


def test_verify_tries_every_configured_key() -> None:
    p = provider(public_key=[OTHER_PUBLIC_KEY, PUBLIC_KEY])
    p.verify(inbound(FINALIZED), now=SENT_AT)
    p.verify(inbound(FINALIZED, key=OTHER_KEY), now=SENT_AT)


def signature_error(request: InboundRequest, *, now: float = SENT_AT, **config: Any) -> str:
    with pytest.raises(SignatureError) as info:
        provider(**config).verify(request, now=now)
    assert info.value.status == 401
    return info.value.code


def test_wrong_key_refused() -> None:
    assert signature_error(inbound(FINALIZED, key=OTHER_KEY)) == "SIGNATURE_INVALID"


def test_tampered_body_refused() -> None:
    request = inbound(FINALIZED)
    tampered = request.body.replace(b'"delivered"', b'"delivery_failed"')
    assert tampered != request.body
    assert signature_error(dataclasses.replace(request, body=tampered)) == "SIGNATURE_INVALID"


def test_reencoded_body_refused() -> None:
    request = inbound(FINALIZED)
    compact = json.dumps(json.loads(request.body), separators=(",", ":")).encode()
    assert signature_error(dataclasses.replace(request, body=compact)) == "SIGNATURE_INVALID"


def test_timestamp_is_signed() -> None:
    request = inbound(FINALIZED)
    moved = {**request.headers, "telnyx-timestamp": str(SENT_AT + 1)}
    assert signature_error(dataclasses.replace(request, headers=moved)) == "SIGNATURE_INVALID"


def test_leading_zero_timestamp_is_signed_as_sent() -> None:
    body = json.dumps(FINALIZED).encode()
    signature = base64.b64encode(PRIVATE_KEY.sign(f"0{SENT_AT}|".encode() + body)).decode()
    headers = {"telnyx-timestamp": f"0{SENT_AT}", "telnyx-signature-ed25519": signature}
    request = dataclasses.replace(inbound(FINALIZED), headers=headers)
    provider().verify(request, now=SENT_AT)


def test_stale_and_future_timestamps_refused() -> None:
    p = provider(tolerance_seconds=60)
    p.verify(inbound(FINALIZED), now=SENT_AT + 60)
    p.verify(inbound(FINALIZED), now=SENT_AT - 60)
    assert signature_error(inbound(FINALIZED), now=SENT_AT + 61, tolerance_seconds=60) == (
        "TIMESTAMP_STALE"
    )
    assert signature_error(inbound(FINALIZED), now=SENT_AT - 61, tolerance_seconds=60) == (
        "TIMESTAMP_FUTURE"
    )


@pytest.mark.parametrize("drop", ["telnyx-timestamp", "telnyx-signature-ed25519"])
def test_missing_header_refused(drop: str) -> None:
    request = inbound(FINALIZED)
    headers = {k: v for k, v in request.headers.items() if k != drop}
    assert signature_error(dataclasses.replace(request, headers=headers)) == "SIGNATURE_MISSING"


def test_empty_headers_count_as_missing() -> None:
    request = inbound(FINALIZED, headers={"telnyx-signature-ed25519": "  "})
    assert signature_error(request) == "SIGNATURE_MISSING"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("telnyx-timestamp", "soon"),
        ("telnyx-timestamp", "1795000000.5"),
        ("telnyx-timestamp", "-1795000000"),
        ("telnyx-timestamp", "9" * 30),
        ("telnyx-signature-ed25519", "not base64!"),
        ("telnyx-signature-ed25519", base64.b64encode(b"s" * 32).decode()),
        ("telnyx-signature-ed25519", base64.b64encode(b"s" * 65).decode()),
        ("telnyx-signature-ed25519", "v1," + base64.b64encode(b"s" * 64).decode()),
        ("telnyx-signature-ed25519", base64.urlsafe_b64encode(b"\xff" * 64).decode()),
        ("telnyx-signature-ed25519", base64.b64encode(b"s" * 64).decode().rstrip("=")),
    ],
)
def test_malformed_header_refused(header: str, value: str) -> None:
    request = inbound(FINALIZED, headers={header: value})
    assert signature_error(request) == "SIGNATURE_MALFORMED"


def test_pynacl_signature_verifies() -> None:
    """A signature made by PyNaCl, the library Telnyx's SDK verifies with."""
    signing = pytest.importorskip("nacl.signing", reason="telnyx[webhooks] (PyNaCl) missing")
    key = signing.SigningKey(bytes(range(32)))
    assert base64.b64encode(bytes(key.verify_key)).decode() == PUBLIC_KEY
    body = json.dumps(SENT).encode()
    signature = key.sign(f"{SENT_AT}|".encode() + body).signature
    headers = {
        "telnyx-timestamp": str(SENT_AT),
        "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
    }
    request = dataclasses.replace(inbound(SENT), headers=headers, body=body)
    provider().verify(request, now=SENT_AT)


# --- the official SDK accepts what the builder makes ----------------------------------------


def sdk_client() -> Any:
    pytest.importorskip("nacl", reason="telnyx[webhooks] (PyNaCl) is needed by the SDK")
    import telnyx

    return telnyx.Telnyx(api_key="KEY_test_not_used", public_key=PUBLIC_KEY, max_retries=0)


def test_sdk_unwrap_accepts_builder_request() -> None:
    client = sdk_client()
    event = telnyx_event("40385f64-5717-4562-b3fc-2c963f66afa6", "delivered")
    request = telnyx_request(PRIVATE_KEY, event)  # signed now: the SDK reads the clock
    unwrapped = client.webhooks.unwrap(request.body.decode(), headers=request.headers)
    assert unwrapped.data.event_type == "message.finalized"
    assert unwrapped.data.payload.id == "40385f64-5717-4562-b3fc-2c963f66afa6"
    assert unwrapped.data.payload.to[0].status == "delivered"


def test_sdk_verifier_accepts_builder_request_and_refuses_tampering() -> None:
    sdk_client()
    from telnyx.lib.webhook_verification import WebhookVerificationError, verify_webhook_signature

    request = telnyx_request(PRIVATE_KEY, SENT)
    verify_webhook_signature(request.body, request.headers, PUBLIC_KEY)
    with pytest.raises(WebhookVerificationError):
        verify_webhook_signature(request.body + b" ", request.headers, PUBLIC_KEY)
    with pytest.raises(WebhookVerificationError):
        verify_webhook_signature(request.body, request.headers, OTHER_PUBLIC_KEY)


def test_sdk_and_we_agree_on_a_capitalised_header_request() -> None:
    """Telnyx sends ``Telnyx-Signature-Ed25519``; HTTP header names are case-insensitive."""
    client = sdk_client()
    request = telnyx_request(PRIVATE_KEY, FINALIZED)
    capitalised = {k.title(): v for k, v in request.headers.items()}
    assert "Telnyx-Signature-Ed25519" in capitalised
    client.webhooks.unwrap(request.body.decode(), headers=capitalised)
    lowered = {k.lower(): v for k, v in capitalised.items()}
    ours = dataclasses.replace(inbound(FINALIZED), headers=lowered, body=request.body)
    provider().verify(ours, now=time.time())


# --- parse ----------------------------------------------------------------------------------


def test_parse_documented_finalized_event() -> None:
    assert provider().parse(inbound(FINALIZED)) == [
        Report(
            event_id="4ee8c3a6-4995-4309-a3c6-38e3db9ea4be",
            provider_message_id="ac012fa9-2e6a-4a2f-9e5c-4ea2e2d8d7f1",
            status=Status.DELIVERED,
            provider_status="delivered",
            occurred_at=datetime(2019, 12, 9, 21, 32, 14, 148_000, tzinfo=UTC),
            to="+13125550001",
        )
    ]


def test_parse_documented_sent_event() -> None:
    (report,) = provider().parse(inbound(SENT))
    assert report == Report(
        event_id="86f58db9-0fe3-4adc-9d1f-46e66e6e9323",
        provider_message_id="40385f64-5717-4562-b3fc-2c963f66afa6",
        status=Status.QUEUED,
        provider_status="queued",
        occurred_at=datetime(2019, 1, 23, 18, 10, 2, 574_000, tzinfo=UTC),
        to="+18665550001",
    )


def test_parse_failure_with_errors() -> None:
    # Telnyx's spam-filter error, as its MDRs and webhooks state it.
    event = with_payload(
        FINALIZED,
        to=[recipient("+13125550001", "delivery_failed")],
        errors=[
            {
                "code": "40002",
                "title": "Blocked as spam - temporary",
                "detail": "The message was flagged by a SPAM filter and was not delivered. "
                "This is a temporary condition.",
            },
            {"code": "40008", "title": "Undeliverable"},
        ],
    )
    (report,) = provider().parse(inbound(event))
    assert report.status is Status.UNDELIVERED
    assert report.error_code == "40002"
    assert report.error_message == (
        "Blocked as spam - temporary: The message was flagged by a SPAM filter and was not "
        "delivered. This is a temporary condition."
    )


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (
            {"code": 40300, "title": "Blocked due to STOP message"},
            "40300",
            "Blocked due to STOP message",
        ),
        ({"code": "40001", "title": "Not routable", "detail": None}, "40001", "Not routable"),
        ({"code": "10007", "title": None, "detail": "x" * 5000}, "10007", "x" * 1000),
        ({"code": "40006"}, "40006", None),
    ],
)
def test_error_fields(error: dict[str, Any], code: str, message: str | None) -> None:
    event = with_payload(FINALIZED, errors=[error], to=[recipient("+13125550001", "expired")])
    (report,) = provider().parse(inbound(event))
    assert report.error_code == code
    assert report.error_message == message


STATUS_ROWS = [
    ("scheduled", Status.QUEUED),
    ("queued", Status.QUEUED),
    ("sending", Status.SENT),
    ("sent", Status.SENT),
    ("delivered", Status.DELIVERED),
    ("read", Status.DELIVERED),
    ("delivery_failed", Status.UNDELIVERED),
    ("sending_failed", Status.FAILED),
    ("cancelled", Status.FAILED),
    ("expired", Status.EXPIRED),
    ("delivery_unconfirmed", Status.UNKNOWN),
    ("webhook_delivered", None),
    ("Delivered", None),
    ("DELIVRD", None),
    ("failed", None),
]


@pytest.mark.parametrize(("word", "status"), STATUS_ROWS)
def test_status_mapping_row_by_row(word: str, status: Status | None) -> None:
    event = with_payload(FINALIZED, to=[recipient("+13125550001", word)])
    (report,) = provider().parse(inbound(event))
    assert report.status is status
    assert report.provider_status == word


def test_status_table_is_covered() -> None:
    assert {word for word, status in STATUS_ROWS if status is not None} == set(STATUS_MAP)


def test_redelivery_has_the_same_event_id() -> None:
    first = with_data(FINALIZED)
    again = json.loads(json.dumps(FINALIZED))
    again["meta"] = {"attempt": 2, "delivered_to": "https://failover.example.com/telnyx"}
    one = provider().parse(inbound(first, timestamp=SENT_AT))
    two = provider().parse(inbound(again, timestamp=SENT_AT + 90))
    assert inbound(first).body != inbound(again).body
    assert one == two


def test_several_recipients_one_report_each() -> None:
    event = with_payload(
        SENT,
        to=[recipient("+18665550001", "sent"), recipient("+18665550002", "sending_failed")],
        cc=[recipient("+18665550003", "queued"), {"status": "queued"}],
    )
    reports = provider().parse(inbound(event))
    event_id = SENT["data"]["id"]  # type: ignore[index]
    assert [r.event_id for r in reports] == [
        f"{event_id}:+18665550001",
        f"{event_id}:+18665550002",
        f"{event_id}:+18665550003",
        f"{event_id}:3",
    ]
    assert {r.provider_message_id for r in reports} == {"40385f64-5717-4562-b3fc-2c963f66afa6"}
    assert [r.status for r in reports] == [
        Status.SENT,
        Status.FAILED,
        Status.QUEUED,
        Status.QUEUED,
    ]
    assert [r.to for r in reports] == ["+18665550001", "+18665550002", "+18665550003", None]


@pytest.mark.parametrize(
    ("number", "to"),
    [
        ("+447700900123", "+447700900123"),
        ("447700900123", "+447700900123"),
        # not phone numbers: no `to`, as for every provider (the raw body keeps them)
        ("12345", None),
        ("alpha-id", None),
    ],
)
def test_recipient_number(number: str, to: str | None) -> None:
    event = with_payload(FINALIZED, to=[recipient(number, "delivered")])
    assert provider().parse(inbound(event))[0].to == to


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-11-18T16:26:39.250+08:00",
        "2026-11-18T08:26:39.250Z",
        "2026-11-18T08:26:39.250+00:00",
        "2026-11-18T08:26:39.250",  # naive: Telnyx stamps are UTC
    ],
)
def test_occurred_at_in_utc(stamp: str) -> None:
    (report,) = provider().parse(inbound(with_data(FINALIZED, occurred_at=stamp)))
    assert report.occurred_at == datetime(2026, 11, 18, 8, 26, 39, 250_000, tzinfo=UTC)
    assert report.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("occurred_at", [None, "absent"])
def test_occurred_at_defaults_to_received_at(occurred_at: str | None) -> None:
    event = with_data(FINALIZED, occurred_at=occurred_at)
    if occurred_at == "absent":
        del event["data"]["occurred_at"]
    assert provider().parse(inbound(event))[0].occurred_at == RECEIVED_AT


def test_message_read_event_is_a_status_event() -> None:
    event = with_data(with_payload(FINALIZED, to=[recipient("+13125550001", "read")]))
    event["data"]["event_type"] = "message.read"
    assert provider().parse(inbound(event))[0].status is Status.DELIVERED


@pytest.mark.parametrize(
    "event",
    [
        RECEIVED,
        with_data(FINALIZED, event_type="call.initiated", payload={"call_control_id": "v3:x"}),
        with_data(FINALIZED, event_type="message.received", payload=None),
        with_data(FINALIZED, event_type="10dlc.campaign.update", payload="not a message"),
    ],
    ids=["inbound-text", "voice", "no-payload", "other-product"],
)
def test_other_events_acknowledged_without_reports(event: dict[str, Any]) -> None:
    p = provider()
    request = inbound(event)
    p.verify(request, now=SENT_AT)
    assert p.parse(request) == []


# --- parse: invalid payloads ----------------------------------------------------------------

INVALID = [
    pytest.param(b"{not json", "body", "not valid JSON", id="invalid-json"),
    pytest.param(b"", "body", "not valid JSON", id="empty-body"),
    pytest.param(b"\xff\xfe{}", "body", "not valid JSON", id="not-utf8"),
    pytest.param([FINALIZED], "body", "object", id="top-level-array"),
    pytest.param({"meta": {"attempt": 1}}, "data", "required", id="no-data"),
    pytest.param({"data": []}, "data", None, id="data-array"),
    pytest.param(with_data(FINALIZED, event_type=None), "data.event_type", None, id="type-null"),
    pytest.param(with_data(FINALIZED, id=""), "data.id", "at least 1", id="event-id-empty"),
    pytest.param(with_data(FINALIZED, id=7), "data.id", "string", id="event-id-number"),
    pytest.param(
        with_data(FINALIZED, occurred_at="date-time"), "data.occurred_at", None, id="placeholder"
    ),
    pytest.param(with_data(FINALIZED, payload=None), "data.payload", None, id="payload-null"),
    pytest.param(with_payload(FINALIZED, id=None), "data.payload.id", None, id="message-id-null"),
    pytest.param(
        with_payload(FINALIZED, id="x" * 256), "data.payload.id", "at most 255", id="long-id"
    ),
    pytest.param(with_payload(FINALIZED, to=[]), "data.payload.to", "at least 1", id="no-to"),
    pytest.param(
        with_payload(FINALIZED, to="+13125550001"), "data.payload.to", "list", id="to-string"
    ),
    pytest.param(
        with_payload(FINALIZED, to=[{"phone_number": "+13125550001"}]),
        "data.payload.to[0].status",
        "required",
        id="no-status",
    ),
    pytest.param(
        with_payload(FINALIZED, to=[recipient("+1312", "sent"), {"status": 3}]),
        "data.payload.to[1].status",
        "string",
        id="numeric-status",
    ),
    pytest.param(
        with_payload(FINALIZED, cc=[{"phone_number": "+13125550009"}]),
        "data.payload.cc[0].status",
        "required",
        id="cc-no-status",
    ),
    pytest.param(
        with_payload(FINALIZED, errors=[{"title": "Undeliverable"}]),
        "data.payload.errors[0].code",
        "required",
        id="error-no-code",
    ),
]


@pytest.mark.parametrize(("payload", "field", "says"), INVALID)
def test_invalid_payload_names_the_field(payload: Any, field: str, says: str | None) -> None:
    with pytest.raises(PayloadInvalid) as info:
        provider().parse(inbound(payload))
    assert info.value.status == 400
    assert info.value.field == field
    assert info.value.detail.startswith(f"{field}: ")
    if says is not None:
        assert says in info.value.detail


def test_missing_event_type_and_id() -> None:
    for key in ("event_type", "id"):
        event = json.loads(json.dumps(FINALIZED))
        del event["data"][key]
        with pytest.raises(PayloadInvalid) as info:
            provider().parse(inbound(event))
        assert info.value.field == f"data.{key}"


def test_answer_is_the_json_counts() -> None:
    answer = provider().answer(Outcome(received=2, applied=1, duplicates=1))
    assert answer.status == 200
    assert json.loads(answer.body) == {
        "received": 2,
        "applied": 1,
        "duplicates": 1,
        "superseded": 0,
    }


# --- end to end through `receiver serve` ----------------------------------------------------


def test_end_to_end(server_factory: Any) -> None:
    server = server_factory(providers={"telnyx": {"type": "telnyx", "public_key": PUBLIC_KEY}})
    message_id = "a0b1c2d3-0000-4000-8000-00000000e2e1"
    occurred = datetime.now(UTC).replace(microsecond=0)
    finalized = telnyx_event(
        message_id,
        "delivery_failed",
        to="+447700900123",
        event_id="e2e-finalized-1",
        occurred_at=occurred,
        errors=[{"code": "40008", "title": "Undeliverable", "detail": "Handset unreachable."}],
    )

    first = server.post(telnyx_request(PRIVATE_KEY, finalized))
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 1, "applied": 1, "duplicates": 0, "superseded": 0}

    # Telnyx retries (meta.attempt 2, signed again later): recognised as a duplicate.
    finalized["meta"]["attempt"] = 2
    again = server.post(telnyx_request(PRIVATE_KEY, finalized))
    assert again.json() == {"received": 1, "applied": 0, "duplicates": 1, "superseded": 0}

    # message.sent arriving late changes nothing (lower rank), but is kept.
    sent = telnyx_event(
        message_id, "sent", to="+447700900123", event_id="e2e-sent-1", occurred_at=occurred
    )
    late = server.post(telnyx_request(PRIVATE_KEY, sent))
    assert late.json() == {"received": 1, "applied": 0, "duplicates": 0, "superseded": 1}

    # An inbound text on the same URL: 200, nothing recorded.
    inbound_text = server.post(telnyx_request(PRIVATE_KEY, RECEIVED))
    assert inbound_text.status_code == 200
    assert inbound_text.json()["received"] == 0

    forged = server.post(telnyx_request(OTHER_KEY, finalized))
    assert forged.status_code == 401
    assert forged.headers["content-type"].startswith("application/problem+json")
    assert forged.json()["code"] == "SIGNATURE_INVALID"

    stale = server.post(telnyx_request(PRIVATE_KEY, finalized, timestamp=int(time.time()) - 900))
    assert stale.status_code == 401
    assert stale.json()["code"] == "TIMESTAMP_STALE"

    broken = server.post(telnyx_request(PRIVATE_KEY, with_payload(FINALIZED, to=[])))
    assert broken.status_code == 400
    assert broken.json()["field"] == "data.payload.to"

    form = telnyx_request(PRIVATE_KEY, finalized)
    form.headers["content-type"] = "application/x-www-form-urlencoded"
    assert server.post(form).status_code == 415

    with server.api(server.staff_token("telnyx-e2e", "sender")) as api:
        found = api.get(
            "/v1/messages", params={"provider": "telnyx", "provider_message_id": message_id}
        )
        assert found.status_code == 200, found.text
        (message,) = found.json()["items"]
        assert message["status"] == "undelivered"
        assert message["final"] is True
        assert message["to"] == "+447700900123"
        assert message["error_code"] == "40008"
        assert message["error_message"] == "Undeliverable: Handset unreachable."
        events = api.get(f"/v1/messages/{message['id']}/events").json()["items"]
    by_id = {event["event_id"]: event for event in events}
    assert set(by_id) == {"e2e-finalized-1", "e2e-sent-1"}
    assert by_id["e2e-finalized-1"]["provider_status"] == "delivery_failed"
    assert by_id["e2e-finalized-1"]["outcome"] == "applied"
    assert by_id["e2e-finalized-1"]["deliveries"] == 2
    assert by_id["e2e-sent-1"]["outcome"] == "superseded"
    assert httpx.get(server.base_url + "/healthz").status_code == 200
