"""Provider type ``relayos``: config, parse, status map, event ids, the sender's requests
and answers, templates, the builder and the fake RelayOS API (no ``receiver serve``;
that is ``test_relayos_e2e.py``)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import write_config

from receiver.config import load
from receiver.core.reports import derived_event_id
from receiver.core.status import Status
from receiver.errors import ConfigError, PayloadInvalid
from receiver.providers import PROVIDER_TYPES
from receiver.providers.base import (
    JSON,
    Accepted,
    Deferred,
    InboundRequest,
    Rejected,
    Unknown,
)
from receiver.providers.relayos import (
    KEY_LIFETIME,
    STATUS_MAP,
    RelayOSConfig,
    RelayOSProvider,
    RelayOSSender,
    parse_occurred_at,
)
from receiver.records import OutboxItem, Template
from receiver.testing import relayos_report, relayos_request
from receiver.testing.fake_relayos import Drop, Fail, FakeRelayOS, Reject, Throttle

TOKEN = "tok_" + "R3l4y0s" * 4
API_KEY = "rly_live_4f9c2a7d51e84b0c96ad2f4e7b1c3d58"
RECEIVED_AT = datetime(2026, 5, 14, 14, 22, 30, tzinfo=UTC)

# The webhooks guide's example payload, as documented.
DOC_EXAMPLE = {
    "event": "message.delivered",
    "message_id": "msg_01hwz3k8j2fxqbv9r4tp6d",
    "to": "+5511999998888",
    "template": "lembrete_consulta",
    "status": "DELIVERED",
    "meta_message_id": "wamid.HBgLNTUxMTk5OTk5ODg4FQIAERgSM...",
    "occurred_at": "2026-05-14T14:22:10Z",
}
TEMPLATE = Template("lembrete_consulta", "pt_BR", {"1": "João Silva", "2": "14h"})
ITEM = OutboxItem(
    message_id="msg_01JD8Z0W6G4Y3K9Q2R5T7V1X3B",
    provider="relayos",
    to="+5511999998888",
    body=None,
    sender=None,
    attempts=1,
    in_doubt=False,
    created_at=RECEIVED_AT,
    template=TEMPLATE,
)


def provider(**keys: Any) -> RelayOSProvider:
    table = {"type": "relayos", "url_token": TOKEN, **keys}
    return RelayOSProvider("relayos", RelayOSConfig.model_validate(table))


def sender(**keys: Any) -> RelayOSSender:
    made = provider(api_key=API_KEY, **keys).sender()
    assert isinstance(made, RelayOSSender)
    return made


def inbound(payload: Any) -> InboundRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return InboundRequest(
        method="POST",
        url=f"https://dlr.example.com/webhooks/relayos?token={TOKEN}",
        headers={"content-type": JSON},
        query_string=f"token={TOKEN}".encode(),
        body=body,
        media_type=JSON,
        received_at=RECEIVED_AT,
    )


def parse_one(payload: Any) -> Any:
    [report] = provider().parse(inbound(payload))
    return report


# --------------------------------------------------------------------------- config


def test_relayos_is_a_registered_template_only_type() -> None:
    assert PROVIDER_TYPES["relayos"] is RelayOSProvider
    assert RelayOSProvider.send_content == frozenset({"template"})
    config = RelayOSProvider.config_model.model_validate({"type": "relayos", "url_token": "t" * 24})
    with pytest.raises(ValueError, match="WhatsApp number"):
        RelayOSProvider("wa", config).check_sender("ACME")


@pytest.mark.parametrize(
    ("keys", "field", "problem"),
    [
        ({}, "url_token", "reports of this type are not signed"),
        ({"secrets": ["s3cret-s3cret-s3cret"]}, "secrets", "signs no reports"),
        ({"url_token": TOKEN, "sender": "ACME"}, "sender", "metaPhoneNumberId"),
        ({"url_token": TOKEN, "api_key": "sk_live_abcdefghijkl"}, "api_key", "rly_live_"),
        ({"url_token": TOKEN, "api_key": API_KEY + " "}, "api_key", "rly_live_"),
        (
            {
                "url_token": TOKEN,
                "api_key": API_KEY,
                "api_base_url": "https://api.relayos.com.br/v1",
            },
            "api_base_url",
            "without the version prefix",
        ),
        ({"url_token": TOKEN, "rate_per_second": 5}, "api_key", "is required to send"),
        ({"url_token": "short"}, "url_token", ""),
        ({"url_token": TOKEN, "tenant": "x"}, "tenant", "not a known key"),
    ],
    ids=[
        "neither-token-nor-ips",
        "secrets",
        "sender",
        "not-a-relayos-key",
        "key-with-whitespace",
        "versioned-base-url",
        "half-a-send-setup",
        "short-token",
        "unknown-key",
    ],
)
def test_bad_configs_are_refused_naming_the_key(
    tmp_path: Path, keys: dict[str, Any], field: str, problem: str
) -> None:
    path = write_config(tmp_path, providers={"relayos": {"type": "relayos", **keys}})
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.key == f"providers.relayos.{field}"
    assert problem in caught.value.problem
    assert API_KEY not in str(caught.value)


@pytest.mark.parametrize(
    "keys",
    [
        {"url_token": TOKEN},
        {"allowed_ips": ["203.0.113.0/24"]},
        {"url_token": TOKEN, "allowed_ips": ["203.0.113.7/32"]},
        {"insecure_no_signature": True},
    ],
    ids=["token", "addresses", "both", "explicitly-open"],
)
def test_reports_are_guarded_by_a_token_or_addresses(tmp_path: Path, keys: dict[str, Any]) -> None:
    path = write_config(tmp_path, providers={"relayos": {"type": "relayos", **keys}})
    loaded = load(path).providers["relayos"]
    assert loaded.kind == "relayos"
    assert loaded.sender() is None  # no api_key: receives only


def test_an_api_key_alone_sends_through_the_documented_host() -> None:
    made = sender()
    request = made.send_request(ITEM)
    assert str(request.url) == "https://api.relayos.com.br/v1/messages"
    custom = sender(api_base_url="http://127.0.0.1:8081/")
    assert str(custom.send_request(ITEM).url) == "http://127.0.0.1:8081/v1/messages"


# --------------------------------------------------------------------------- parse


def test_the_documented_example_is_a_delivered_report() -> None:
    report = parse_one(DOC_EXAMPLE)
    assert report.provider_message_id == "msg_01hwz3k8j2fxqbv9r4tp6d"
    assert report.status is Status.DELIVERED
    assert report.provider_status == "DELIVERED"
    assert report.occurred_at == datetime(2026, 5, 14, 14, 22, 10, tzinfo=UTC)
    assert report.to == "+5511999998888"
    assert report.error_code is None and report.message_reference is None
    assert report.event_id == derived_event_id(
        "msg_01hwz3k8j2fxqbv9r4tp6d", "DELIVERED", "2026-05-14T14:22:10+00:00"
    )


@pytest.mark.parametrize(
    ("event", "status", "expected"),
    [
        ("message.sent", "SENT", Status.SENT),
        ("message.delivered", "DELIVERED", Status.DELIVERED),
        ("message.read", "READ", Status.DELIVERED),  # READ counts as delivered
        ("message.failed", "FAILED", Status.FAILED),
        ("message.queued", "QUEUED", Status.QUEUED),
        ("message.deleted", "DELETED", None),  # a word we do not know: kept, changes nothing
        ("message.read", "read", Status.DELIVERED),  # case is not meaning
    ],
)
def test_the_status_map(event: str, status: str, expected: Status | None) -> None:
    report = parse_one({**DOC_EXAMPLE, "event": event, "status": status})
    assert report.status is expected
    assert report.provider_status == status


def test_every_documented_word_is_mapped() -> None:
    assert set(STATUS_MAP) == {"QUEUED", "SENT", "DELIVERED", "READ", "FAILED"}


def test_without_status_the_event_names_it() -> None:
    payload = {k: v for k, v in DOC_EXAMPLE.items() if k != "status"}
    report = parse_one({**payload, "event": "message.read"})
    assert (report.provider_status, report.status) == ("READ", Status.DELIVERED)


def test_event_ids_are_deterministic_and_tell_reports_apart() -> None:
    first = parse_one(DOC_EXAMPLE)
    again = parse_one(dict(reversed(list(DOC_EXAMPLE.items()))))  # a redelivery
    same_moment = parse_one({**DOC_EXAMPLE, "occurred_at": "2026-05-14T11:22:10-03:00"})
    read = parse_one({**DOC_EXAMPLE, "event": "message.read", "status": "READ"})
    later = parse_one({**DOC_EXAMPLE, "occurred_at": "2026-05-14T14:22:11Z"})
    other = parse_one({**DOC_EXAMPLE, "message_id": "msg_01hwz4m2gxf7ws3u9rp8zd5cne"})
    assert first.event_id == again.event_id == same_moment.event_id
    assert len({first.event_id, read.event_id, later.event_id, other.event_id}) == 4


def test_without_occurred_at_the_report_is_dated_on_arrival() -> None:
    payload = {k: v for k, v in DOC_EXAMPLE.items() if k != "occurred_at"}
    report = parse_one(payload)
    assert report.occurred_at == RECEIVED_AT
    assert report.event_id == derived_event_id(DOC_EXAMPLE["message_id"], "DELIVERED", None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-05-14T14:22:10Z", datetime(2026, 5, 14, 14, 22, 10, tzinfo=UTC)),
        ("2026-05-14T14:22:10.250Z", datetime(2026, 5, 14, 14, 22, 10, 250000, tzinfo=UTC)),
        ("2026-05-14T11:22:10-03:00", datetime(2026, 5, 14, 14, 22, 10, tzinfo=UTC)),
        ("2026-05-14T14:22:10", datetime(2026, 5, 14, 14, 22, 10, tzinfo=UTC)),  # UTC
    ],
)
def test_occurred_at_is_read_as_utc(raw: str, expected: datetime) -> None:
    assert parse_occurred_at(raw) == expected


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"not json", "body"),
        (b"[]", "body"),
        ({**DOC_EXAMPLE, "message_id": ""}, "message_id"),
        ({k: v for k, v in DOC_EXAMPLE.items() if k != "message_id"}, "message_id"),
        ({k: v for k, v in DOC_EXAMPLE.items() if k not in ("status", "event")}, "status"),
        ({**DOC_EXAMPLE, "occurred_at": "yesterday"}, "occurred_at"),
        ({**DOC_EXAMPLE, "status": 3}, "status"),
    ],
    ids=["not-json", "not-an-object", "empty-id", "no-id", "no-status", "bad-time", "bad-status"],
)
def test_invalid_payloads_name_the_field(payload: Any, field: str) -> None:
    with pytest.raises(PayloadInvalid) as caught:
        provider().parse(inbound(payload))
    assert caught.value.field == field


def test_a_number_that_is_not_e164_is_left_out() -> None:
    assert parse_one({**DOC_EXAMPLE, "to": "5511999998888"}).to == "+5511999998888"
    assert parse_one({**DOC_EXAMPLE, "to": "not a number"}).to is None


def test_verify_accepts_anything_the_edge_let_through_and_resign_keeps_it() -> None:
    request = relayos_request(DOC_EXAMPLE, url_token="REDACTED", provider="relayos")
    relayos = provider()
    relayos.verify(inbound(DOC_EXAMPLE), 0.0)  # nothing is signed: the edge checks the token
    resigned = relayos.resign(request, public_base_url="https://dlr.example.com", now=0.0)
    assert resigned == request


# --------------------------------------------------------------------------- builder


def test_the_builder_makes_the_documented_shape_with_the_token() -> None:
    at = datetime(2026, 5, 14, 14, 22, 10, tzinfo=UTC)
    report = relayos_report("msg_01hwz3k8j2fxqbv9r4tp6d", "READ", occurred_at=at)
    assert set(report) == set(DOC_EXAMPLE)
    assert report["event"] == "message.read"
    assert report["occurred_at"] == "2026-05-14T14:22:10Z"
    assert report["meta_message_id"].startswith("wamid.")
    request = relayos_request(report, url_token=TOKEN, provider="relayos")
    assert request.path == f"/webhooks/relayos?token={TOKEN}"
    assert request.headers == {"content-type": "application/json"}
    assert relayos_request(report).path == "/webhooks/default"
    assert parse_one(json.loads(request.body)).status is Status.DELIVERED


# --------------------------------------------------------------------------- templates


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        (Template("lembrete_consulta", None), "language: is required"),
        (Template("lembrete_consulta", "pt-BR"), "language: 'pt-BR'"),
        (Template("Lembrete Consulta", "pt_BR"), "id: must be"),
        (Template("lembrete_consulta", "pt_BR", {"name": "João"}), "variables: 'name'"),
        (Template("lembrete_consulta", "pt_BR", {"0": "João"}), "variables: '0'"),
    ],
)
def test_templates_relayos_cannot_send_are_refused(template: Template, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        provider().check_template(template)


@pytest.mark.parametrize(
    "template",
    [
        TEMPLATE,
        Template("hello_world", "en_US"),
        Template("order_confirmation", "en", {"1": "Ana", "2": "8821", "10": "x"}),
    ],
)
def test_templates_relayos_sends(template: Template) -> None:
    provider().check_template(template)


# --------------------------------------------------------------------------- sending


def test_the_send_request_is_the_documented_one() -> None:
    request = sender().send_request(ITEM)
    assert request.method == "POST"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["idempotency-key"] == ITEM.message_id
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "to": "+5511999998888",
        "template": "lembrete_consulta",
        "language": "pt_BR",
        "variables": {"1": "João Silva", "2": "14h"},
    }


def test_every_attempt_carries_the_same_key_and_body() -> None:
    made = sender()
    retry = replace(ITEM, attempts=3, in_doubt=True)
    first, again = made.send_request(ITEM), made.send_request(retry)
    assert first.headers["idempotency-key"] == again.headers["idempotency-key"]
    assert first.content == again.content


def test_a_template_without_variables_sends_none() -> None:
    item = replace(ITEM, template=Template("hello_world", "en_US"))
    payload = json.loads(sender().send_request(item).content)
    assert payload == {"to": "+5511999998888", "template": "hello_world", "language": "en_US"}


def test_a_send_in_doubt_is_settled_by_resending_under_the_key_for_24_hours() -> None:
    made = sender()
    in_doubt = replace(ITEM, in_doubt=True)
    assert made.lookup_request(in_doubt) is None
    assert made.idempotency_lifetime == KEY_LIFETIME == timedelta(hours=24)


ANSWER = {
    "id": "msg_01hwz3k9fxe5vr2t8qn6yc4bmd",
    "status": "QUEUED",
    "to": "+5511999998888",
    "template": "lembrete_consulta",
    "queuedAt": "2026-05-14T10:30:00Z",
}


@pytest.mark.parametrize("status", [200, 202])
def test_200_and_202_both_mean_queued(status: int) -> None:
    result = sender().read_send(httpx.Response(status, json=ANSWER))
    assert result == Accepted("msg_01hwz3k9fxe5vr2t8qn6yc4bmd", "QUEUED")


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            httpx.Response(400, json={"error": {"code": "VALIDATION_ERROR", "message": "x"}}),
            Rejected("VALIDATION_ERROR", "x"),
        ),
        (
            httpx.Response(422, json={"code": "TEMPLATE_NOT_APPROVED", "message": "pending"}),
            Rejected("TEMPLATE_NOT_APPROVED", "pending"),
        ),
        (
            httpx.Response(400, json={"error": "language is required"}),
            Rejected(None, "language is required"),
        ),
        (httpx.Response(400, text="<html>bad</html>"), Rejected(None, "HTTP 400 Bad Request")),
        (httpx.Response(401, json={"error": "revoked"}), Deferred("HTTP 401 Unauthorized")),
        (
            httpx.Response(429, headers={"retry-after": "7"}),
            Deferred("HTTP 429 Too Many Requests", "7"),
        ),
        (httpx.Response(502), Unknown("HTTP 502 Bad Gateway")),
        (
            httpx.Response(202, json={"status": "QUEUED"}),
            Unknown("HTTP 202 Accepted without a readable message id"),
        ),
    ],
    ids=["error-object", "flat", "error-string", "not-json", "401", "429", "502", "2xx-without-id"],
)
def test_reading_the_answers_to_a_send(response: httpx.Response, expected: object) -> None:
    assert sender().read_send(response) == expected


# --------------------------------------------------------------------------- the fake


def post(
    fake: FakeRelayOS, payload: dict[str, Any], key: str | None, **headers: str
) -> httpx.Response:
    auth = {"authorization": f"Bearer {fake.api_key}"}
    if key is not None:
        auth["idempotency-key"] = key
    return httpx.post(f"{fake.base_url}/v1/messages", json=payload, headers={**auth, **headers})


SEND = {"to": "+5511999998888", "template": "lembrete_consulta", "language": "pt_BR"}


@pytest.mark.parametrize("success_status", [200, 202])
def test_relayos_replaying_a_key_answers_the_original_and_queues_nothing(
    success_status: int,
) -> None:
    with FakeRelayOS(success_status=success_status) as fake:
        first = post(fake, {**SEND, "variables": {"1": "João"}}, "pedido-42-lembrete")
        again = post(fake, {**SEND, "to": "+5521988887777"}, "pedido-42-lembrete")  # another body
        other = post(fake, SEND, "pedido-43-lembrete")

        assert first.status_code == again.status_code == success_status
        assert again.json() == first.json()  # same id, status and queuedAt
        assert other.json()["id"] != first.json()["id"]
        assert [m.to for m in fake.messages] == ["+5511999998888", "+5511999998888"]
        assert fake.message_for_key("pedido-42-lembrete").variables == {"1": "João"}
        assert fake.calls_with_key("pedido-42-lembrete") == 2


def test_the_fake_refuses_what_relayos_refuses() -> None:
    with FakeRelayOS() as fake:
        wrong_key = httpx.post(
            f"{fake.base_url}/v1/messages",
            json=SEND,
            headers={"authorization": "Bearer rly_live_x"},
        )
        no_language = post(fake, {**SEND, "language": None}, "k-1")
        after_refusal = post(fake, SEND, "k-1")  # a refused call does not use up the key

        assert wrong_key.status_code == 401
        assert no_language.status_code == 400
        assert "language" in no_language.json()["error"]["message"]
        assert after_refusal.status_code == 202
        assert len(fake.messages) == 1


def test_the_fake_faults() -> None:
    with FakeRelayOS() as fake:
        fake.on_send(Throttle("3"), Fail(500), Fail(503, record=True), Drop(), Reject(422))
        throttled = post(fake, SEND, "k-throttle")
        before = post(fake, SEND, "k-before")
        after = post(fake, SEND, "k-after")
        with pytest.raises(httpx.RemoteProtocolError):
            post(fake, SEND, "k-dropped")
        rejected = post(fake, SEND, "k-rejected")

        assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "3")
        assert before.status_code == 500 and after.status_code == 503
        assert rejected.status_code == 422
        queued = {message.idempotency_key for message in fake.messages}
        assert queued == {"k-after", "k-dropped"}  # taken, though the answer was lost
        assert post(fake, SEND, "k-dropped").json()["id"] == fake.message_for_key("k-dropped").id
        assert post(fake, SEND, "k-before").status_code == 202  # the key was still free
        assert len(fake.messages) == 3


def test_on_new_keys_faults_first_attempts_only() -> None:
    with FakeRelayOS() as fake:
        fake.on_new_keys(Fail(500), None, Fail(500))
        answers = [post(fake, SEND, key).status_code for key in ("a", "a", "b", "c", "d")]
        assert answers == [500, 202, 202, 500, 202]


def test_lookups_and_the_project_setup_as_documented() -> None:
    with FakeRelayOS() as fake:
        auth = {"authorization": f"Bearer {fake.api_key}"}
        sent = post(fake, SEND, "k-1").json()
        one = httpx.get(f"{fake.base_url}/v1/messages/{sent['id']}", headers=auth)
        missing = httpx.get(f"{fake.base_url}/v1/messages/msg_nope", headers=auth)
        listed = httpx.get(f"{fake.base_url}/v1/messages", headers=auth)
        incomplete = httpx.put(
            f"{fake.base_url}/v1/projects/me/meta-credentials",
            json={"callbackUrl": "https://dlr.example.com/webhooks/relayos"},
            headers=auth,
        )
        saved = httpx.put(
            f"{fake.base_url}/v1/projects/me/meta-credentials",
            json={
                "metaPhoneNumberId": "1234567890",
                "metaAccessToken": "EAAG...",
                "callbackUrl": "https://dlr.example.com/webhooks/relayos",
            },
            headers=auth,
        )

        assert one.json() == {**sent, "status": "QUEUED"}
        assert missing.status_code == 404
        assert listed.json() == [one.json()]
        assert incomplete.status_code == 400
        assert saved.json()["callbackUrl"] == "https://dlr.example.com/webhooks/relayos"
        assert fake.callback_url == "https://dlr.example.com/webhooks/relayos"
        assert "metaAccessToken" not in saved.json()
