"""``Provider.resign``: a captured request signed afresh for a new URL and clock
(``receiver replay --resign``, README "Commands").

Every case builds a request with ``receiver.testing`` at an old time and for another
URL, stores it as a capture would (lower-case names, no ``authorization``), re-signs it
and checks that the provider's own ``verify`` accepts it and ``parse`` reads the same
reports, while the capture itself no longer verifies.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import ServerFactory
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from receiver.errors import CannotResign, ReceiverError, RetryLater, SignatureError
from receiver.providers.base import InboundRequest, Provider, WebhookRequest
from receiver.providers.bird import BirdConfig, BirdProvider
from receiver.providers.infobip import InfobipConfig, InfobipProvider
from receiver.providers.jasmin import JasminConfig, JasminProvider
from receiver.providers.plivo import PlivoConfig, PlivoProvider
from receiver.providers.sendcomms import SendCommsConfig, SendCommsProvider
from receiver.providers.sinch import SinchConfig, SinchProvider
from receiver.providers.standard import StandardConfig, StandardProvider
from receiver.providers.telnyx import TelnyxConfig, TelnyxProvider
from receiver.providers.twilio import TwilioConfig, TwilioProvider
from receiver.providers.vonage import VonageConfig, VonageProvider
from receiver.testing import (
    bird_report,
    bird_request,
    infobip_request,
    infobip_result,
    jasmin_dlr,
    jasmin_request,
    plivo_report,
    plivo_request,
    sendcomms_event,
    sendcomms_request,
    sinch_batch_report,
    sinch_recipient_report,
    sinch_request,
    sinch_status,
    standard_report,
    standard_request,
    telnyx_event,
    telnyx_public_key,
    telnyx_request,
    twilio_report,
    twilio_request,
    vonage_message_status,
    vonage_messages_request,
    vonage_sms_report,
    vonage_sms_request,
)

NOW = 1_795_000_000  # 2026-11-18T08:26:40Z: when the replay runs
OLD = NOW - 10 * 86_400  # when the captured request was sent: far beyond any tolerance
OLD_DT = datetime.fromtimestamp(OLD, UTC)
OLD_BASE = "https://old-host.example.net"
NEW_BASE = "https://dlr.example.com/"  # the trailing slash is not doubled

WHSEC = "whsec_" + base64.b64encode(bytes(range(32))).decode()
WHSEC_OLD = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
TOKEN = "f3a1c9d2e8b74a6f9c0d1e2f3a4b5c6d"  # a Twilio/Plivo auth token
SECRET = "Kx8mQ2vT9pL4wZ7nR3sY6uB1cF5hJ0dG"  # an HMAC secret of 32 characters
BASIC = "receiver:s3cret-Passw0rd"
PRIVATE_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))

Case = Callable[[], tuple[Provider, WebhookRequest]]


@dataclass(frozen=True)
class Scheme:
    """How a case's capture must fail at NOW: ``stale`` when the scheme signs a time."""

    case: Case
    stale: bool


def standard_case() -> tuple[Provider, WebhookRequest]:
    data = [
        standard_report("prov-1", "delivered", occurred_at=OLD_DT, to="+639171234567"),
        standard_report("prov-2", "failed", occurred_at=OLD_DT, error_code="E1"),
    ]
    config = StandardConfig(type="standard", secrets=[WHSEC, WHSEC_OLD])
    request = standard_request(WHSEC_OLD, data, provider="acme", timestamp=OLD)
    return StandardProvider("acme", config), request


def twilio_form_case() -> tuple[Provider, WebhookRequest]:
    params = twilio_report("SM" + "a" * 32, "delivered", to="+15558675310")
    request = twilio_request(
        TOKEN, params, public_base_url=OLD_BASE, provider="tw", query="tenant=7&x=a%20b"
    )
    return TwilioProvider("tw", TwilioConfig(type="twilio", secrets=[TOKEN])), request


def twilio_json_case() -> tuple[Provider, WebhookRequest]:
    params = twilio_report("SM" + "b" * 32, "undelivered", error_code="30003")
    request = twilio_request(
        TOKEN, params, public_base_url=OLD_BASE, provider="tw", query="t=1", json_body=True
    )
    return TwilioProvider("tw", TwilioConfig(type="twilio", secrets=[TOKEN])), request


def vonage_sms_case(transport: Any, method: Any) -> Case:
    def case() -> tuple[Provider, WebhookRequest]:
        report = vonage_sms_report(
            "0B00000127FDBC63",
            "delivered",
            msisdn="447547232824",
            err_code="0",
            scts="2611130910",
            message_timestamp=OLD_DT,
            client_ref="order&id=9",
        )
        request = vonage_sms_request(
            SECRET,
            report,
            provider="vg",
            signature_method=method,
            transport=transport,
            timestamp=OLD,
        )
        config = VonageConfig(type="vonage", secrets=[SECRET], signature_method=method)
        return VonageProvider("vg", config), request

    return case


def vonage_messages_case() -> tuple[Provider, WebhookRequest]:
    payload = vonage_message_status(
        "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab", "delivered", timestamp=OLD_DT
    )
    request = vonage_messages_request(SECRET, payload, provider="vg", issued_at=OLD)
    return VonageProvider("vg", VonageConfig(type="vonage", secrets=[SECRET])), request


def plivo_case(method: Any) -> Case:
    def case() -> tuple[Provider, WebhookRequest]:
        report = plivo_report("2b7c8a42-5d1f-4c1e-9a4b-8f0e6d3c2b1a", "delivered", sequence=3)
        request = plivo_request(
            TOKEN, report, provider="pl", public_base_url=OLD_BASE, method=method, query="k=v"
        )
        return PlivoProvider("pl", PlivoConfig(type="plivo", secrets=[TOKEN])), request

    return case


def sinch_hmac_case() -> tuple[Provider, WebhookRequest]:
    report = sinch_recipient_report(
        batch_id="01W4FFL35P4NC4K35SMSBATCH9",
        recipient="12017777777",
        status="Delivered",
        code=0,
        at=OLD_DT,
    )
    request = sinch_request(report, secret=SECRET, timestamp=OLD)
    return SinchProvider("sinch", SinchConfig(type="sinch", auth="hmac", secrets=[SECRET])), request


def sinch_basic_case() -> tuple[Provider, WebhookRequest]:
    report = sinch_batch_report(
        batch_id="01W4FFL35P4NC4K35SMSBATCH9",
        statuses=[sinch_status(status="Delivered", code=0, recipients=["12017777777"])],
    )
    request = sinch_request(report, credentials=BASIC)
    return SinchProvider("sinch", SinchConfig(type="sinch", auth="basic", secrets=[BASIC])), request


def infobip_case() -> tuple[Provider, WebhookRequest]:
    results = [infobip_result(message_id="ib-1", done_at=OLD_DT, sent_at=OLD_DT)]
    request = infobip_request(BASIC, results)
    return InfobipProvider("infobip", InfobipConfig(type="infobip", secrets=[BASIC])), request


def jasmin_case(method: str) -> Case:
    def case() -> tuple[Provider, WebhookRequest]:
        dlr = jasmin_dlr(message_id="b4c9c7b0-1f2e-4d3c", message_status="DELIVRD", donedate=OLD_DT)
        request = jasmin_request(BASIC, dlr, method=method)
        return JasminProvider("jasmin", JasminConfig(type="jasmin", secrets=[BASIC])), request

    return case


def bird_case(method: str) -> Case:
    def case() -> tuple[Provider, WebhookRequest]:
        report = bird_report(message_id="b2f1c0de", status="delivered", status_datetime=OLD_DT)
        request = bird_request(
            signing_key=SECRET,
            report=report,
            public_base_url=OLD_BASE,
            provider="bird",
            method=method,
            now=OLD,
        )
        return BirdProvider("bird", BirdConfig(type="bird", secrets=[SECRET])), request

    return case


def sendcomms_case() -> tuple[Provider, WebhookRequest]:
    event = sendcomms_event("sms.delivered", "sms_mjhw8xkw_6f97ab63ff91", timestamp=OLD_DT)
    # Nothing signed depends on the URL or the time: the capture fails because the
    # secret that signed it was rotated out since.
    config = SendCommsConfig(type="sendcomms", secrets=[SECRET])
    request = sendcomms_request("a-rotated-out-webhook-secret", event)
    return SendCommsProvider("sendcomms", config), request


SCHEMES: dict[str, Scheme] = {
    "standard": Scheme(standard_case, stale=True),
    "twilio-form": Scheme(twilio_form_case, stale=False),
    "twilio-json": Scheme(twilio_json_case, stale=False),
    "vonage-sms-form-md5hash": Scheme(vonage_sms_case("form", "md5hash"), stale=True),
    "vonage-sms-json-sha256": Scheme(vonage_sms_case("json", "sha256"), stale=True),
    "vonage-sms-query-sha512": Scheme(vonage_sms_case("query", "sha512"), stale=True),
    "vonage-messages": Scheme(vonage_messages_case, stale=True),
    "plivo-post": Scheme(plivo_case("POST"), stale=False),
    "plivo-get": Scheme(plivo_case("GET"), stale=False),
    "sinch-hmac": Scheme(sinch_hmac_case, stale=True),
    "sinch-basic": Scheme(sinch_basic_case, stale=False),
    "infobip": Scheme(infobip_case, stale=False),
    "jasmin-post": Scheme(jasmin_case("POST"), stale=False),
    "jasmin-get": Scheme(jasmin_case("GET"), stale=False),
    "bird-get": Scheme(bird_case("GET"), stale=True),
    "bird-post": Scheme(bird_case("POST"), stale=True),
    "sendcomms": Scheme(sendcomms_case, stale=False),
}


def captured(request: WebhookRequest) -> WebhookRequest:
    """The request as the store keeps it: lower-case names, no ``authorization``, and
    the transport headers the edge saw."""
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
    headers |= {"host": "old-host.example.net", "content-length": str(len(request.body))}
    headers["x-request-note"] = "kept"
    return WebhookRequest(request.path, request.body, headers, request.method)


def inbound(request: WebhookRequest, base_url: str) -> InboundRequest:
    """``request`` as the edge hands it to a provider, received at NOW via ``base_url``."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    return InboundRequest(
        method=request.method,
        url=base_url.rstrip("/") + request.path,
        headers=headers,
        query_string=request.path.partition("?")[2].encode("latin-1"),
        body=request.body,
        media_type=headers.get("content-type", "").partition(";")[0].strip().lower(),
        received_at=datetime.fromtimestamp(NOW, UTC),
    )


@pytest.mark.parametrize("name", list(SCHEMES))
def test_resigned_request_verifies_at_the_new_url_and_time(name: str) -> None:
    provider, original = SCHEMES[name].case()
    capture = captured(original)

    resigned = provider.resign(capture, public_base_url=NEW_BASE, now=NOW)

    new = inbound(resigned, NEW_BASE)
    provider.verify(new, NOW)
    reports = provider.parse(new)
    assert reports
    assert reports == provider.parse(inbound(original, OLD_BASE))
    assert resigned.method == original.method
    assert resigned.path.partition("?")[0] == original.path.partition("?")[0]
    assert "host" not in resigned.headers
    assert "content-length" not in resigned.headers
    assert resigned.headers["x-request-note"] == "kept"


@pytest.mark.parametrize("name", list(SCHEMES))
def test_the_capture_itself_fails_verify_at_the_new_url_and_time(name: str) -> None:
    provider, original = SCHEMES[name].case()
    expected: type[ReceiverError] = SignatureError
    if name == "vonage-messages":
        expected = RetryLater  # unsigned Messages callbacks are asked for again
    with pytest.raises(expected):
        provider.verify(inbound(captured(original), NEW_BASE), NOW)


@pytest.mark.parametrize("name", [name for name, scheme in SCHEMES.items() if scheme.stale])
def test_the_original_signature_is_stale_at_now(name: str) -> None:
    provider, original = SCHEMES[name].case()
    provider.verify(inbound(original, OLD_BASE), OLD)  # authentic when sent
    with pytest.raises(SignatureError) as caught:
        provider.verify(inbound(original, OLD_BASE), NOW)
    assert caught.value.code == "TIMESTAMP_STALE"


def test_standard_keeps_webhook_id_and_body_and_signs_with_the_first_secret() -> None:
    provider, original = standard_case()
    resigned = provider.resign(captured(original), public_base_url=NEW_BASE, now=NOW)
    assert resigned.body == original.body
    assert resigned.headers["webhook-id"] == original.headers["webhook-id"]
    assert resigned.headers["webhook-timestamp"] == str(NOW)
    only_old = StandardProvider("acme", StandardConfig(type="standard", secrets=[WHSEC_OLD]))
    with pytest.raises(SignatureError):
        only_old.verify(inbound(resigned, NEW_BASE), NOW)


def test_vonage_sms_resign_replaces_timestamp_nonce_and_sig_only() -> None:
    provider, original = vonage_sms_case("query", "sha512")()
    resigned = provider.resign(captured(original), public_base_url=NEW_BASE, now=NOW)
    before = dict(inbound(original, OLD_BASE).params())
    after = dict(inbound(resigned, NEW_BASE).params())
    assert after["timestamp"] == str(NOW)
    assert after["nonce"] != before["nonce"]
    assert after["sig"] != before["sig"]
    changed = {"timestamp", "nonce", "sig"}
    assert {k: v for k, v in after.items() if k not in changed} == {
        k: v for k, v in before.items() if k not in changed
    }


def test_telnyx_cannot_be_resigned() -> None:
    config = TelnyxConfig(type="telnyx", public_key=[telnyx_public_key(PRIVATE_KEY)])
    provider = TelnyxProvider("telnyx", config)
    event = telnyx_event("40385f64-5717-4562-b3fc-2c963f66afa6", "delivered")
    request = captured(telnyx_request(PRIVATE_KEY, event, timestamp=OLD))
    with pytest.raises(CannotResign, match="public key"):
        provider.resign(request, public_base_url=NEW_BASE, now=NOW)


@pytest.mark.parametrize(
    "provider",
    [
        StandardProvider("s", StandardConfig(type="standard", insecure_no_signature=True)),
        TelnyxProvider("t", TelnyxConfig(type="telnyx", insecure_no_signature=True)),
        TwilioProvider("w", TwilioConfig(type="twilio", insecure_no_signature=True)),
    ],
    ids=["standard", "telnyx", "twilio"],
)
def test_insecure_providers_replay_the_capture_unchanged(provider: Provider) -> None:
    capture = captured(standard_request(WHSEC, standard_report("p", "delivered")))
    assert provider.resign(capture, public_base_url=NEW_BASE, now=NOW) is capture


def test_end_to_end_standard(server_factory: ServerFactory) -> None:
    server = server_factory()
    secret = server.secret()
    sent = standard_request(
        secret, standard_report("prov-e2e", "delivered"), timestamp=OLD, event_id="msg_e2e_1"
    )
    capture = captured(sent)
    assert server.post(sent).status_code == 401  # stale

    provider = StandardProvider("default", StandardConfig(type="standard", secrets=[secret]))
    resigned = provider.resign(capture, public_base_url=server.base_url, now=time.time())
    answer = server.post(resigned)
    assert answer.status_code == 200, answer.text
    assert answer.json()["received"] == 1


def test_end_to_end_twilio(server_factory: ServerFactory) -> None:
    public = "https://dlr.example.com"
    server = server_factory(
        settings={"public_base_url": public},
        providers={"tw": {"type": "twilio", "secrets": [TOKEN]}},
    )
    params = twilio_report("SM" + "c" * 32, "delivered", to="+15558675310")
    sent = twilio_request(TOKEN, params, public_base_url=OLD_BASE, provider="tw")
    assert server.post(sent).status_code == 401  # signed for another URL

    provider = TwilioProvider("tw", TwilioConfig(type="twilio", secrets=[TOKEN]))
    resigned = provider.resign(captured(sent), public_base_url=public, now=NOW)
    answer = server.post(resigned)
    assert answer.status_code == 200, answer.text
    assert answer.json()["received"] == 1
