"""Provider type ``infobip``: config, Basic auth, parsing, status table, and end to end.

Infobip publishes no Python signer we may install (its SDK downgrades pydantic), and its
Basic credentials sign nothing: the ``Authorization`` headers here are made by httpx's own
``BasicAuth``, an implementation independent of ours. Payloads are the documented example
of "Receive outbound SMS message report" (two reports, ``doneAt`` like
``2019-11-09T16:00:00.000+0000``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Server, assert_problem, running_server, unique, write_config
from pydantic import ValidationError

from receiver.config import load
from receiver.core.reports import Outcome
from receiver.core.signatures import basic_auth
from receiver.core.status import Status
from receiver.errors import ConfigError, PayloadInvalid, SignatureError
from receiver.providers import PROVIDER_TYPES
from receiver.providers.base import InboundRequest
from receiver.providers.infobip import (
    KNOWN_STATUSES,
    STATUS_BY_NAME,
    InfobipConfig,
    InfobipProvider,
    parse_infobip_time,
)
from receiver.testing.infobip import infobip_request, infobip_result, infobip_time

CREDENTIAL = "infobip-dlr:6a0b3f9e1c"
NEW_CREDENTIAL = "infobip-dlr:rotated-5d2e"
RECEIVED_AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
JSON_TYPE = "application/json"

# The documented request sample (two reports of one bulk).
DOCUMENTED = {
    "results": [
        {
            "bulkId": "BULK-ID-123-xyz",
            "messageId": "MESSAGE-ID-123-xyz",
            "to": "41793026727",
            "sentAt": "2019-11-09T16:00:00.000+0000",
            "doneAt": "2019-11-09T16:00:00.000+0000",
            "smsCount": 1,
            "callbackData": "callbackData",
            "price": {"pricePerMessage": 0.01, "currency": "EUR"},
            "status": {
                "groupId": 3,
                "groupName": "DELIVERED",
                "id": 5,
                "name": "DELIVERED_TO_HANDSET",
                "description": "Message delivered to handset",
            },
            "error": {
                "groupId": 0,
                "groupName": "Ok",
                "id": 0,
                "name": "NO_ERROR",
                "description": "No Error",
                "permanent": False,
            },
            "entityId": "promotional-traffic-entity",
            "applicationId": "marketing-automation-application",
        },
        {
            "bulkId": "BULK-ID-123-xyz",
            "messageId": "12db39c3-7822-4e72-a3ec-c87442c0ffc5",
            "to": "41793026834",
            "sentAt": "2019-11-09T17:00:00.000+0000",
            "doneAt": "2019-11-09T17:00:00.000+0000",
            "smsCount": 1,
            "price": {"pricePerMessage": 0.01, "currency": "EUR"},
            "status": {
                "groupId": 3,
                "groupName": "DELIVERED",
                "id": 5,
                "name": "DELIVERED_TO_HANDSET",
                "description": "Message delivered to handset",
            },
            "error": {
                "groupId": 0,
                "groupName": "Ok",
                "id": 0,
                "name": "NO_ERROR",
                "description": "No Error",
                "permanent": False,
            },
        },
    ]
}


def httpx_basic(credential: str) -> str:
    """The Authorization header httpx (not our code) makes for ``user:password``."""
    user, _, password = credential.partition(":")
    request = httpx.Request("POST", "https://dlr.example.com/webhooks/infobip")
    return next(httpx.BasicAuth(user, password).auth_flow(request)).headers["Authorization"]


def provider(**config: Any) -> InfobipProvider:
    config.setdefault("secrets", [CREDENTIAL])
    return InfobipProvider("infobip", InfobipConfig(type="infobip", **config))


def inbound(
    payload: Any, *, authorization: str | None = None, credential: str = CREDENTIAL
) -> InboundRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"content-type": "application/json"}
    headers["authorization"] = authorization or httpx_basic(credential)
    return InboundRequest(
        method="POST",
        url="https://dlr.example.com/webhooks/infobip",
        headers=headers,
        query_string=b"",
        body=body,
        media_type="application/json",
        received_at=RECEIVED_AT,
    )


def one(result: dict[str, Any]) -> dict[str, Any]:
    return {"results": [result]}


def documented_result(**changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(DOCUMENTED["results"][0])
    result.update(changes)
    return result


# --- the class and its config ---------------------------------------------------------------


def test_registered_with_its_class_attributes() -> None:
    assert PROVIDER_TYPES["infobip"] is InfobipProvider
    assert InfobipProvider.config_model is InfobipConfig
    assert frozenset({"application/json"}) == InfobipProvider.media_types
    assert frozenset({"POST"}) == InfobipProvider.methods


def test_config_defaults_and_rotation() -> None:
    config = InfobipConfig(type="infobip", secrets=[CREDENTIAL, NEW_CREDENTIAL])
    assert config.secrets == [CREDENTIAL, NEW_CREDENTIAL]
    assert config.allowed_ips == []
    assert config.insecure_no_signature is False


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("no-colon", "must be 'user:password'"),
        (":password-only", "must be 'user:password'"),
        ("user-only:", "must be 'user:password'"),
        ("user:pass\nword", "must not contain control characters"),
    ],
)
def test_a_secret_that_is_not_user_password_is_refused(secret: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=r"secrets\[1\]: " + problem):
        InfobipConfig(type="infobip", secrets=[CREDENTIAL, secret])


def test_a_password_may_contain_colons() -> None:
    p = provider(secrets=["user:pa:ss"])
    p.verify(inbound(DOCUMENTED, credential="user:pa:ss"), now=0)


def test_no_secrets_needs_insecure_no_signature() -> None:
    with pytest.raises(ValidationError, match="at least one secret"):
        InfobipConfig(type="infobip")
    config = InfobipConfig(type="infobip", insecure_no_signature=True, allowed_ips=["192.0.2.0/24"])
    assert InfobipProvider("ib", config).verifies is False


@pytest.mark.parametrize(
    "extra",
    [{"secret": CREDENTIAL}, {"username": "infobip"}, {"hmac_secret": "x"}],
    ids=["secret-singular", "username", "hmac"],
)
def test_unknown_keys_are_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        InfobipConfig(type="infobip", secrets=[CREDENTIAL], **extra)
    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]


def test_bad_allowed_ips_are_refused() -> None:
    with pytest.raises(ValidationError, match="allowed_ips"):
        InfobipConfig(type="infobip", secrets=[CREDENTIAL], allowed_ips=["not-a-network"])


def test_wrong_type_is_refused() -> None:
    with pytest.raises(ValidationError):
        InfobipConfig(type="jasmin", secrets=[CREDENTIAL])  # type: ignore[arg-type]


def test_config_file_errors_name_the_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, providers={"ib": {"type": "infobip", "secrets": ["nocolon"]}})
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.key == "providers.ib.secrets[0]"
    assert "user:password" in info.value.problem
    path = write_config(tmp_path, providers={"ib": {"type": "infobip", "secrets": [CREDENTIAL]}})
    assert isinstance(load(path).providers["ib"], InfobipProvider)


# --- verify: HTTP Basic -------------------------------------------------------------------------


def test_our_basic_header_is_the_one_httpx_makes() -> None:
    assert basic_auth.header(CREDENTIAL) == httpx_basic(CREDENTIAL)
    request = infobip_request(CREDENTIAL, DOCUMENTED["results"])
    assert request.headers["authorization"] == httpx_basic(CREDENTIAL)


def test_verify_accepts_the_configured_credentials() -> None:
    provider().verify(inbound(DOCUMENTED), now=0)


def test_verify_accepts_every_credential_of_a_rotation() -> None:
    p = provider(secrets=[CREDENTIAL, NEW_CREDENTIAL])
    p.verify(inbound(DOCUMENTED, credential=NEW_CREDENTIAL), now=0)
    p.verify(inbound(DOCUMENTED, credential=CREDENTIAL), now=0)


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (httpx_basic("infobip-dlr:wrong-password"), "SIGNATURE_INVALID"),
        (httpx_basic("someone-else:6a0b3f9e1c"), "SIGNATURE_INVALID"),
        ("Bearer 6a0b3f9e1c", "SIGNATURE_MISSING"),
        ("Basic", "SIGNATURE_MISSING"),
        ("Basic not*base64", "SIGNATURE_MALFORMED"),
    ],
    ids=["wrong-password", "wrong-user", "bearer", "empty", "garbage"],
)
def test_verify_refuses_bad_credentials(authorization: str, code: str) -> None:
    with pytest.raises(SignatureError) as info:
        provider().verify(inbound(DOCUMENTED, authorization=authorization), now=0)
    assert info.value.code == code
    assert CREDENTIAL not in info.value.detail


def test_verify_refuses_a_request_without_authorization() -> None:
    request = dataclasses.replace(inbound(DOCUMENTED), headers={"content-type": JSON_TYPE})
    with pytest.raises(SignatureError) as info:
        provider().verify(request, now=0)
    assert info.value.code == "SIGNATURE_MISSING"


def test_basic_auth_authenticates_the_sender_not_the_body() -> None:
    # Basic credentials cover no bytes of the request: a changed body still verifies.
    # Integrity rests on TLS (and the merge rule makes replays harmless); say so in docs.
    tampered = documented_result(status={"name": "REJECTED_NETWORK", "groupName": "REJECTED"})
    provider().verify(inbound(one(tampered)), now=0)


def test_no_timestamp_is_signed_so_any_clock_verifies() -> None:
    for now in (0.0, 1e10):
        provider().verify(inbound(DOCUMENTED), now=now)


# --- parse ----------------------------------------------------------------------------------------


def test_the_documented_example_parses_into_two_reports() -> None:
    first, second = provider().parse(inbound(DOCUMENTED))
    assert first.provider_message_id == "MESSAGE-ID-123-xyz"
    assert first.status is Status.DELIVERED
    assert first.provider_status == "DELIVERED_TO_HANDSET"
    assert first.occurred_at == datetime(2019, 11, 9, 16, 0, tzinfo=UTC)
    assert first.to == "+41793026727"
    assert (first.error_code, first.error_message) == (None, None)
    assert second.provider_message_id == "12db39c3-7822-4e72-a3ec-c87442c0ffc5"
    assert second.occurred_at == datetime(2019, 11, 9, 17, 0, tzinfo=UTC)
    assert second.to == "+41793026834"
    assert first.event_id != second.event_id
    assert first.event_id.startswith("d_")


def test_a_redelivery_gets_the_same_event_ids() -> None:
    first = [r.event_id for r in provider().parse(inbound(DOCUMENTED))]
    body = json.dumps(DOCUMENTED, indent=2, sort_keys=True).encode()  # other bytes, same reports
    again = [r.event_id for r in provider().parse(inbound(body))]
    assert first == again


@pytest.mark.parametrize(
    "change",
    [
        {
            "status": {
                "groupId": 3,
                "groupName": "DELIVERED",
                "id": 2,
                "name": "DELIVERED_TO_OPERATOR",
            }
        },
        {"error": {"groupId": 1, "groupName": "HANDSET_ERRORS", "id": 27, "name": "EC_ABSENT"}},
        {"doneAt": "2019-11-09T16:00:05.000+0000"},
        {"messageId": "MESSAGE-ID-124-xyz"},
    ],
    ids=["status-id", "error-id", "done-at", "message-id"],
)
def test_each_identifying_field_changes_the_event_id(change: dict[str, Any]) -> None:
    base = provider().parse(inbound(one(documented_result())))[0].event_id
    other = provider().parse(inbound(one(documented_result(**change))))[0].event_id
    assert base != other


def test_fields_that_identify_nothing_keep_the_event_id() -> None:
    base = provider().parse(inbound(one(documented_result())))[0].event_id
    changed = documented_result(price={"pricePerMessage": 0.02, "currency": "USD"}, smsCount=2)
    assert provider().parse(inbound(one(changed)))[0].event_id == base


def test_an_error_becomes_error_code_and_message() -> None:
    result = documented_result(
        status={
            "groupId": 2,
            "groupName": "UNDELIVERABLE",
            "id": 9,
            "name": "UNDELIVERABLE_NOT_DELIVERED",
        },
        error={
            "groupId": 1,
            "groupName": "HANDSET_ERRORS",
            "id": 27,
            "name": "EC_ABSENT_SUBSCRIBER",
            "description": "Absent Subscriber",
            "permanent": False,
        },
    )
    (report,) = provider().parse(inbound(one(result)))
    assert report.status is Status.UNDELIVERED
    assert (report.error_code, report.error_message) == ("27", "EC_ABSENT_SUBSCRIBER")


@pytest.mark.parametrize(
    "error",
    [
        {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR"},
        {"id": 0},
        {"name": "NO_ERROR"},
    ],
)
def test_no_error_is_no_error_code(error: dict[str, Any]) -> None:
    (report,) = provider().parse(inbound(one(documented_result(error=error))))
    assert (report.error_code, report.error_message) == (None, None)


def test_a_report_without_error_object_or_times() -> None:
    result = documented_result()
    for key in ("error", "doneAt", "sentAt", "to", "bulkId", "price", "smsCount"):
        del result[key]
    (report,) = provider().parse(inbound(one(result)))
    assert report.occurred_at == RECEIVED_AT
    assert report.to is None
    assert report.error_code is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2019-11-09T16:00:00.000+0000", datetime(2019, 11, 9, 16, 0, tzinfo=UTC)),
        ("2019-04-09T16:01:56.494-0300", datetime(2019, 4, 9, 19, 1, 56, 494000, tzinfo=UTC)),
        ("2019-04-09T16:01:56.494+05:30", datetime(2019, 4, 9, 10, 31, 56, 494000, tzinfo=UTC)),
        ("2026-11-23T09:59:58Z", datetime(2026, 11, 23, 9, 59, 58, tzinfo=UTC)),
        (
            "2026-11-23T09:59:58.123456789+0000",
            datetime(2026, 11, 23, 9, 59, 58, 123456, tzinfo=UTC),
        ),
        ("2026-11-23T09:59:58", datetime(2026, 11, 23, 9, 59, 58, tzinfo=UTC)),
    ],
)
def test_done_at_formats_become_utc(raw: str, expected: datetime) -> None:
    assert parse_infobip_time(raw) == expected
    (report,) = provider().parse(inbound(one(documented_result(doneAt=raw))))
    assert report.occurred_at == expected
    assert report.occurred_at.tzinfo is UTC


def test_our_builder_writes_infobips_time_format() -> None:
    moment = datetime(2026, 11, 23, 9, 59, 58, 123000, tzinfo=UTC)
    assert infobip_time(moment) == "2026-11-23T09:59:58.123+0000"
    assert parse_infobip_time(infobip_time(moment)) == moment


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("41793026727", "+41793026727"),
        ("+41793026727", "+41793026727"),
        (" 639171234567 ", "+639171234567"),
        ("InfoSMS", None),
        ("0041793026727", None),
        ("12345", None),
    ],
)
def test_to_becomes_e164_or_nothing(raw: str, expected: str | None) -> None:
    (report,) = provider().parse(inbound(one(documented_result(to=raw))))
    assert report.to == expected


# --- the status table, row by row -----------------------------------------------------------------


STATUS_ROWS = [
    # (status name, group name, our status)
    ("PENDING_ACCEPTED", "PENDING", Status.QUEUED),
    ("PENDING_ENROUTE", "PENDING", Status.SENT),
    ("PENDING_WAITING_DELIVERY", "PENDING", Status.SENT),
    ("DELIVERED_TO_OPERATOR", "DELIVERED", Status.SENT),
    ("DELIVERED_TO_HANDSET", "DELIVERED", Status.DELIVERED),
    ("UNDELIVERABLE_REJECTED_OPERATOR", "UNDELIVERABLE", Status.UNDELIVERED),
    ("UNDELIVERABLE_NOT_DELIVERED", "UNDELIVERABLE", Status.UNDELIVERED),
    ("EXPIRED_EXPIRED", "EXPIRED", Status.EXPIRED),
    ("EXPIRED_DLR_UNKNOWN", "EXPIRED", Status.EXPIRED),
    # names this module does not list: their group decides
    ("REJECTED_NETWORK", "REJECTED", Status.REJECTED),
    ("REJECTED_DESTINATION", "REJECTED", Status.REJECTED),
    ("PENDING_SOMETHING_NEW", "PENDING", Status.QUEUED),
    ("UNDELIVERABLE_SOMETHING_NEW", "UNDELIVERABLE", Status.UNDELIVERED),
    ("EXPIRED_SOMETHING_NEW", "EXPIRED", Status.EXPIRED),
    # unmapped: kept with status None
    ("DELIVERED_SOMETHING_NEW", "DELIVERED", None),
    ("MYSTERY", None, None),
    ("MYSTERY", "NEW_GROUP", None),
]


@pytest.mark.parametrize(("name", "group", "expected"), STATUS_ROWS)
def test_status_mapping(name: str, group: str | None, expected: Status | None) -> None:
    status: dict[str, Any] = {"name": name, "description": "as documented"}
    if group is not None:
        status["groupName"] = group
    if name in KNOWN_STATUSES:
        status["id"], known_group = KNOWN_STATUSES[name]
        assert known_group == group
    (report,) = provider().parse(inbound(one(documented_result(status=status))))
    assert report.status == expected
    assert report.provider_status == name


def test_every_named_row_is_covered_and_documented() -> None:
    assert set(STATUS_BY_NAME) <= {row[0] for row in STATUS_ROWS}
    assert set(STATUS_BY_NAME) <= set(KNOWN_STATUSES)
    doc = (Path(__file__).parents[2] / "docs" / "providers" / "infobip.md").read_text()
    for name, _, _ in STATUS_ROWS[:11]:
        assert f"`{name}`" in doc


def test_lower_case_words_map_too() -> None:
    status = {"name": "delivered_to_handset", "groupName": "delivered"}
    (report,) = provider().parse(inbound(one(documented_result(status=status))))
    assert report.status is Status.DELIVERED
    assert report.provider_status == "delivered_to_handset"


# --- invalid payloads -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[]", "body"),
        (b'{"result": []}', "results"),
        (b'{"results": "x"}', "results"),
        (b'{"results": []}', "results"),
        (
            one({k: v for k, v in DOCUMENTED["results"][0].items() if k != "messageId"}),
            "results[0].messageId",
        ),
        (one(documented_result(messageId="")), "results[0].messageId"),
        (one(documented_result(messageId=123)), "results[0].messageId"),
        (
            one({k: v for k, v in DOCUMENTED["results"][0].items() if k != "status"}),
            "results[0].status",
        ),
        (
            one(documented_result(status={"groupName": "DELIVERED", "id": 5})),
            "results[0].status.name",
        ),
        (one(documented_result(status={"name": "X", "id": "five"})), "results[0].status.id"),
        (one(documented_result(doneAt="09/11/2019 16:00")), "results[0].doneAt"),
        (one(documented_result(doneAt="2019-13-09T16:00:00.000+0000")), "results[0].doneAt"),
        ({"results": [documented_result(), {"messageId": "m2"}]}, "results[1].status"),
        ({"results": [documented_result()] * 1001}, "results"),
    ],
    ids=[
        "not-json",
        "array",
        "no-results",
        "results-not-array",
        "results-empty",
        "no-message-id",
        "empty-message-id",
        "numeric-message-id",
        "no-status",
        "status-without-name",
        "status-id-not-int",
        "done-at-format",
        "done-at-month-13",
        "second-item-bad",
        "too-many",
    ],
)
def test_an_invalid_payload_names_the_field(body: Any, field: str) -> None:
    with pytest.raises(PayloadInvalid) as info:
        provider().parse(inbound(body))
    assert info.value.field == field
    assert info.value.status == 400


def test_answer_is_the_contracts_json_counts() -> None:
    answer = provider().answer(Outcome(received=2, applied=1, duplicates=1))
    assert answer.status == 200
    assert answer.media_type == "application/json"
    assert json.loads(answer.body) == {
        "received": 2,
        "applied": 1,
        "duplicates": 1,
        "superseded": 0,
    }


# --- the builder ----------------------------------------------------------------------------------


def test_builder_makes_a_request_that_verifies_and_parses() -> None:
    done = datetime(2026, 11, 23, 9, 59, 58, tzinfo=UTC)
    results = [
        infobip_result(message_id="m-1", done_at=done),
        infobip_result(
            message_id="m-2",
            status="REJECTED_NETWORK",
            group_name="REJECTED",
            status_id=6,
            error_id=2052,
            error_name="EC_SOME_ERROR",
            done_at=done,
        ),
    ]
    request = infobip_request(CREDENTIAL, results, provider="ib")
    assert request.path == "/webhooks/ib"
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    item = InboundRequest(
        "POST", "https://x/webhooks/ib", request.headers, b"", request.body, JSON_TYPE, RECEIVED_AT
    )
    provider().verify(item, now=0)
    first, second = provider().parse(item)
    assert (first.status, first.occurred_at, first.to) == (Status.DELIVERED, done, "+41793026727")
    assert (second.status, second.error_code, second.error_message) == (
        Status.REJECTED,
        "2052",
        "EC_SOME_ERROR",
    )
    assert json.loads(request.body)["results"][1]["status"]["groupId"] == 5


def test_builder_without_credentials_sends_no_authorization() -> None:
    request = infobip_request(None, infobip_result(message_id="m-1"))
    assert "authorization" not in request.headers
    assert len(json.loads(request.body)["results"]) == 1


# --- end to end through `receiver serve` ---------------------------------------------------------


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """No trusted proxies: the TCP peer (127.0.0.1) is the caller."""
    with running_server(
        tmp_path_factory,
        "infobip-direct",
        providers={
            "infobip": {"type": "infobip", "secrets": [CREDENTIAL, NEW_CREDENTIAL]},
            "ib-elsewhere": {
                "type": "infobip",
                "secrets": [CREDENTIAL],
                "allowed_ips": ["10.0.0.0/8"],
            },
            "ib-local": {
                "type": "infobip",
                "secrets": [CREDENTIAL],
                "allowed_ips": ["127.0.0.1/32"],
            },
            "ib-ip-only": {
                "type": "infobip",
                "insecure_no_signature": True,
                "allowed_ips": ["127.0.0.1/32"],
            },
            "ib-forwarded": {
                "type": "infobip",
                "secrets": [CREDENTIAL],
                "allowed_ips": ["203.0.113.0/24"],
            },
        },
    ) as server:
        yield server


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Behind a trusted proxy on 127.0.0.1: X-Forwarded-For names the caller."""
    with running_server(
        tmp_path_factory,
        "infobip-proxied",
        settings={"trusted_proxies": ["127.0.0.1/32"]},
        providers={
            "ib-forwarded": {
                "type": "infobip",
                "secrets": [CREDENTIAL],
                "allowed_ips": ["203.0.113.0/24"],
            },
        },
    ) as server:
        yield server


@pytest.fixture(scope="module")
def api(direct: Server) -> Iterator[httpx.Client]:
    with direct.api(direct.staff_token("infobip-tests", "sender")) as client:
        yield client


def message(api: httpx.Client, provider: str, provider_message_id: str) -> dict[str, Any]:
    answer = api.get(
        "/v1/messages", params={"provider": provider, "provider_message_id": provider_message_id}
    )
    assert answer.status_code == 200, answer.text
    (item,) = answer.json()["items"]
    return item


def timeline(api: httpx.Client, record: dict[str, Any]) -> list[dict[str, Any]]:
    answer = api.get(f"/v1/messages/{record['id']}/events")
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def test_e2e_a_batch_is_committed_visible_and_its_redelivery_is_duplicate(direct, api) -> None:
    first, second = unique("ib"), unique("ib")
    done = (datetime.now(UTC) - timedelta(seconds=30)).replace(microsecond=0)
    results = [
        infobip_result(
            message_id=first, status="PENDING_ENROUTE", done_at=done - timedelta(seconds=20)
        ),
        infobip_result(message_id=first, to="41793026727", done_at=done),
        infobip_result(
            message_id=second,
            status="UNDELIVERABLE_NOT_DELIVERED",
            to="41793026834",
            error_id=27,
            error_name="EC_ABSENT_SUBSCRIBER",
            done_at=done,
        ),
    ]
    request = infobip_request(CREDENTIAL, results)
    answer = direct.post(request)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == {"received": 3, "applied": 3, "duplicates": 0, "superseded": 0}

    record = message(api, "infobip", first)
    assert (record["status"], record["final"], record["to"]) == ("delivered", True, "+41793026727")
    failed = message(api, "infobip", second)
    assert (failed["status"], failed["error_code"], failed["error_message"]) == (
        "undelivered",
        "27",
        "EC_ABSENT_SUBSCRIBER",
    )

    again = direct.post(request)
    assert again.status_code == 200, again.text
    assert again.json() == {"received": 3, "applied": 0, "duplicates": 3, "superseded": 0}
    events = timeline(api, record)
    assert [(e["provider_status"], e["status"], e["deliveries"]) for e in events] == [
        ("PENDING_ENROUTE", "sent", 2),
        ("DELIVERED_TO_HANDSET", "delivered", 2),
    ]
    assert message(api, "infobip", first)["report_count"] == 2


def test_e2e_the_documented_example_with_a_rotated_credential(direct, api) -> None:
    request = dataclasses.replace(
        infobip_request(NEW_CREDENTIAL, DOCUMENTED["results"]),
        body=json.dumps(DOCUMENTED).encode(),
    )
    answer = direct.post(request)
    assert answer.status_code == 200, answer.text
    assert answer.json()["received"] == 2
    record = message(api, "infobip", "MESSAGE-ID-123-xyz")
    assert record["status"] == "delivered"
    (event,) = timeline(api, record)
    assert event["occurred_at"].startswith("2019-11-09T16:00:00")


@pytest.mark.parametrize(
    ("credential", "code"),
    [("infobip-dlr:wrong", "SIGNATURE_INVALID"), (None, "SIGNATURE_MISSING")],
)
def test_e2e_bad_credentials_are_a_401_problem(direct, api, credential, code) -> None:
    message_id = unique("ib")
    answer = direct.post(infobip_request(credential, infobip_result(message_id=message_id)))
    body = assert_problem(answer, 401, code)
    assert CREDENTIAL.split(":")[1] not in answer.text
    assert body["status"] == 401
    listed = api.get("/v1/messages", params={"provider_message_id": message_id}).json()
    assert listed["items"] == []


def test_e2e_an_invalid_payload_is_a_400_naming_the_field(direct) -> None:
    request = infobip_request(
        CREDENTIAL, [{"messageId": unique("ib"), "status": {"groupName": "PENDING"}}]
    )
    body = assert_problem(direct.post(request), 400, "PAYLOAD_INVALID")
    assert "results[0].status.name" in body["detail"]


def test_e2e_xml_reports_are_refused_with_415(direct) -> None:
    request = infobip_request(CREDENTIAL, infobip_result(message_id=unique("ib")))
    xml = dataclasses.replace(
        request, headers={**request.headers, "content-type": "application/xml"}
    )
    assert_problem(direct.post(xml), 415, "CONTENT_TYPE_UNSUPPORTED")


def test_e2e_allowed_ips_refuses_a_caller_outside_the_list(direct) -> None:
    # 127.0.0.1 is not in 10.0.0.0/8, so even the right credentials are refused.
    request = infobip_request(
        CREDENTIAL, infobip_result(message_id=unique("ib")), provider="ib-elsewhere"
    )
    body = assert_problem(direct.post(request), 401, "SOURCE_NOT_ALLOWED")
    assert "127.0.0.1" in body["detail"]


def test_e2e_allowed_ips_admits_a_caller_in_the_list(direct, api) -> None:
    message_id = unique("ib")
    request = infobip_request(
        CREDENTIAL, infobip_result(message_id=message_id), provider="ib-local"
    )
    answer = direct.post(request)
    assert answer.status_code == 200, answer.text
    assert message(api, "ib-local", message_id)["status"] == "delivered"
    # The allow-list is checked before, not instead of, the credentials.
    wrong = infobip_request(
        "infobip-dlr:wrong", infobip_result(message_id=unique("ib")), provider="ib-local"
    )
    assert_problem(direct.post(wrong), 401, "SIGNATURE_INVALID")


def test_e2e_ip_allow_list_alone_with_insecure_no_signature(direct, api) -> None:
    message_id = unique("ib")
    answer = direct.post(
        infobip_request(None, infobip_result(message_id=message_id), provider="ib-ip-only")
    )
    assert answer.status_code == 200, answer.text
    assert message(api, "ib-ip-only", message_id)["status"] == "delivered"
    assert "ib-ip-only" in direct.log_path.read_text()  # the start-up warning names it


def forwarded(request: Any, address: str) -> Any:
    return dataclasses.replace(request, headers={**request.headers, "x-forwarded-for": address})


def test_e2e_x_forwarded_for_counts_from_a_trusted_proxy(proxied) -> None:
    request = infobip_request(
        CREDENTIAL, infobip_result(message_id=unique("ib")), provider="ib-forwarded"
    )
    answer = proxied.post(forwarded(request, "203.0.113.7"))
    assert answer.status_code == 200, answer.text
    # A forwarded caller outside the list is refused though the proxy itself is trusted.
    assert_problem(proxied.post(forwarded(request, "198.51.100.9")), 401, "SOURCE_NOT_ALLOWED")


def test_e2e_x_forwarded_for_is_ignored_without_trusted_proxies(direct) -> None:
    request = infobip_request(
        CREDENTIAL, infobip_result(message_id=unique("ib")), provider="ib-forwarded"
    )
    body = assert_problem(direct.post(forwarded(request, "203.0.113.7")), 401, "SOURCE_NOT_ALLOWED")
    assert "127.0.0.1" in body["detail"]


def test_the_network_comes_from_mccmnc_and_a_strange_one_is_ignored() -> None:
    named = infobip_result(message_id="m-net-1") | {"mccMnc": "22801"}
    odd = infobip_result(message_id="m-net-2") | {"mccMnc": "n/a"}
    first, second = provider().parse(inbound({"results": [named, odd]}))
    assert first.network == "228-01"
    assert second.network is None  # never a reason to refuse the report
