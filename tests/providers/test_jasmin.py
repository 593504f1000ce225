"""Provider type ``jasmin``: config, Basic auth, DLR parsing, status table, ACK, end to end.

Jasmin signs nothing and ships no Python signer; the ``Authorization`` headers here are
made by httpx's own ``BasicAuth``. Parameters are the examples of Jasmin's "Receiving
DLR" page (``id`` 16fd2706-..., ``id_smsc`` 2567, dates ``1311022338``).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from conftest import Server, assert_problem, running_server, write_config
from pydantic import ValidationError

from receiver.config import load
from receiver.core.reports import Outcome
from receiver.core.status import Status
from receiver.errors import ConfigError, PayloadInvalid, SignatureError
from receiver.providers import PROVIDER_TYPES
from receiver.providers.base import InboundRequest
from receiver.providers.jasmin import STATUS, JasminConfig, JasminProvider, parse_smpp_date
from receiver.testing.base import SignedRequest
from receiver.testing.jasmin import jasmin_dlr, jasmin_request, smpp_date

CREDENTIAL = "jasmin-dlr:9f3c1e7a"
NEW_CREDENTIAL = "jasmin-dlr:rotated-2b8d"
RECEIVED_AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FORM = "application/x-www-form-urlencoded"
MSG_ID = "16fd2706-8baf-433b-82eb-8c7fada847da"

# The documented parameters, in the order Jasmin's DLRThrower builds them.
LEVEL_1 = {"id": MSG_ID, "level": "1", "message_status": "ESME_ROK"}
LEVEL_2 = {
    "id": MSG_ID,
    "level": "2",
    "message_status": "DELIVRD",
    "id_smsc": "2567",
    "sub": "1",
    "dlvrd": "1",
    "subdate": "1311022338",
    "donedate": "1311022338",
    "err": "0",
    "text": "Hello foo bar",
}


def httpx_basic(credential: str) -> str:
    """The Authorization header httpx (not our code) makes for ``user:password``."""
    user, _, password = credential.partition(":")
    request = httpx.Request("POST", "https://dlr.example.com/webhooks/jasmin")
    return next(httpx.BasicAuth(user, password).auth_flow(request)).headers["Authorization"]


def provider(**config: Any) -> JasminProvider:
    config.setdefault("secrets", [CREDENTIAL])
    return JasminProvider("jasmin", JasminConfig(type="jasmin", **config))


def inbound(
    params: dict[str, str] | str,
    *,
    method: str = "POST",
    query: str = "",
    authorization: str | None = None,
) -> InboundRequest:
    encoded = params if isinstance(params, str) else urlencode(params)
    if method == "GET":
        query_string, body, media_type = encoded, b"", FORM
    else:
        query_string, body, media_type = query, encoded.encode(), FORM
    return InboundRequest(
        method=method,
        url="https://dlr.example.com/webhooks/jasmin"
        + (f"?{query_string}" if query_string else ""),
        headers={
            "content-type": FORM,
            "authorization": authorization or httpx_basic(CREDENTIAL),
        },
        query_string=query_string.encode(),
        body=body,
        media_type=media_type,
        received_at=RECEIVED_AT,
    )


def level2(**changes: str) -> dict[str, str]:
    return {**LEVEL_2, **changes}


def without(params: dict[str, str], key: str) -> dict[str, str]:
    return {k: v for k, v in params.items() if k != key}


# --- the class and its config ---------------------------------------------------------------


def test_registered_with_its_class_attributes() -> None:
    assert PROVIDER_TYPES["jasmin"] is JasminProvider
    assert JasminProvider.config_model is JasminConfig
    assert frozenset({FORM}) == JasminProvider.media_types
    assert frozenset({"GET", "POST"}) == JasminProvider.methods


@pytest.mark.parametrize("secret", ["no-colon", ":pw", "user:", "user:\tpw"])
def test_a_secret_that_is_not_user_password_is_refused(secret: str) -> None:
    with pytest.raises(ValidationError, match=r"secrets\[0\]: must"):
        JasminConfig(type="jasmin", secrets=[secret])


def test_no_secrets_needs_insecure_no_signature() -> None:
    with pytest.raises(ValidationError, match="at least one secret"):
        JasminConfig(type="jasmin", allowed_ips=["192.0.2.10/32"])
    config = JasminConfig(type="jasmin", insecure_no_signature=True, allowed_ips=["192.0.2.10"])
    assert JasminProvider("j", config).verifies is False


@pytest.mark.parametrize("extra", [{"ack": "OK"}, {"secret": CREDENTIAL}, {"dlr_level": 2}])
def test_unknown_keys_are_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        JasminConfig(type="jasmin", secrets=[CREDENTIAL], **extra)
    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]


def test_config_file_errors_name_the_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, providers={"gw": {"type": "jasmin", "secrets": ["jasmin"]}})
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.key == "providers.gw.secrets[0]"
    path = write_config(tmp_path, providers={"gw": {"type": "jasmin"}})
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.key == "providers.gw.secrets"
    path = write_config(tmp_path, providers={"gw": {"type": "jasmin", "secrets": [CREDENTIAL]}})
    assert isinstance(load(path).providers["gw"], JasminProvider)


# --- verify: HTTP Basic ---------------------------------------------------------------------------


def test_verify_accepts_the_configured_credentials_by_get_and_post() -> None:
    provider().verify(inbound(LEVEL_2), now=0)
    provider().verify(inbound(LEVEL_2, method="GET"), now=0)


def test_verify_accepts_every_credential_of_a_rotation() -> None:
    p = provider(secrets=[CREDENTIAL, NEW_CREDENTIAL])
    p.verify(inbound(LEVEL_1, authorization=httpx_basic(NEW_CREDENTIAL)), now=0)


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (httpx_basic("jasmin-dlr:wrong"), "SIGNATURE_INVALID"),
        ("Digest username=jasmin-dlr", "SIGNATURE_MISSING"),
        ("Basic ???", "SIGNATURE_MALFORMED"),
    ],
    ids=["wrong-password", "other-scheme", "garbage"],
)
def test_verify_refuses_bad_credentials(authorization: str, code: str) -> None:
    with pytest.raises(SignatureError) as info:
        provider().verify(inbound(LEVEL_2, authorization=authorization), now=0)
    assert info.value.code == code


def test_verify_refuses_a_request_without_authorization() -> None:
    request = dataclasses.replace(inbound(LEVEL_2), headers={"content-type": FORM})
    with pytest.raises(SignatureError) as info:
        provider().verify(request, now=0)
    assert info.value.code == "SIGNATURE_MISSING"


def test_basic_auth_authenticates_the_sender_not_the_parameters() -> None:
    # Nothing in a Jasmin DLR is signed: changed parameters still verify (see the docs).
    provider().verify(inbound(level2(message_status="UNDELIV")), now=0)


# --- parse ----------------------------------------------------------------------------------------


def test_the_documented_level_1_receipt() -> None:
    (report,) = provider().parse(inbound(LEVEL_1))
    assert report.provider_message_id == MSG_ID
    assert (report.status, report.provider_status) == (Status.SENT, "ESME_ROK")
    assert report.occurred_at == RECEIVED_AT  # level 1 carries no date
    assert (report.to, report.error_code, report.error_message) == (None, None, None)


def test_the_documented_level_2_receipt() -> None:
    (report,) = provider().parse(inbound(LEVEL_2))
    assert report.provider_message_id == MSG_ID
    assert (report.status, report.provider_status) == (Status.DELIVERED, "DELIVRD")
    assert report.occurred_at == datetime(2013, 11, 2, 23, 38, tzinfo=UTC)
    assert report.error_code is None


def test_get_and_post_give_the_same_report() -> None:
    (by_post,) = provider().parse(inbound(LEVEL_2))
    (by_get,) = provider().parse(inbound(LEVEL_2, method="GET"))
    assert by_post == by_get


def test_the_dlr_urls_own_query_is_ignored() -> None:
    (report,) = provider().parse(inbound(LEVEL_2, query="tenant=acme&ref=order-8821"))
    assert report == provider().parse(inbound(LEVEL_2))[0]


def test_a_redelivery_gets_the_same_event_id() -> None:
    first = provider().parse(inbound(LEVEL_2))[0].event_id
    reordered = dict(reversed(list(LEVEL_2.items())))
    assert provider().parse(inbound(reordered))[0].event_id == first
    assert first.startswith("d_")


@pytest.mark.parametrize(
    "change",
    [
        {"id": "2f5b2f3e-0000-4000-8000-000000000001"},
        {"level": "3"},
        {"message_status": "UNDELIV"},
        {"donedate": "1311022339"},
    ],
    ids=["id", "level", "message_status", "donedate"],
)
def test_each_identifying_field_changes_the_event_id(change: dict[str, str]) -> None:
    base = provider().parse(inbound(LEVEL_2))[0].event_id
    assert provider().parse(inbound(level2(**change)))[0].event_id != base


def test_level_1_and_level_2_of_one_message_are_two_events() -> None:
    (sent,) = provider().parse(inbound(LEVEL_1))
    (delivered,) = provider().parse(inbound(LEVEL_2))
    assert sent.event_id != delivered.event_id
    assert sent.provider_message_id == delivered.provider_message_id


@pytest.mark.parametrize(
    ("err", "expected"),
    [("0", None), ("000", None), ("", None), ("069", "069"), ("1", "1")],
)
def test_err_becomes_the_error_code_unless_zero(err: str, expected: str | None) -> None:
    (report,) = provider().parse(inbound(level2(message_status="UNDELIV", err=err)))
    assert report.error_code == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1311022338", datetime(2013, 11, 2, 23, 38, tzinfo=UTC)),
        ("2611230959", datetime(2026, 11, 23, 9, 59, tzinfo=UTC)),
        ("261123095958", datetime(2026, 11, 23, 9, 59, 58, tzinfo=UTC)),
    ],
)
def test_donedate_is_read_as_utc(raw: str, expected: datetime) -> None:
    assert parse_smpp_date(raw) == expected
    (report,) = provider().parse(inbound(level2(donedate=raw)))
    assert report.occurred_at == expected


def test_an_empty_donedate_falls_back_to_the_arrival_time() -> None:
    (report,) = provider().parse(inbound(level2(donedate="")))
    assert report.occurred_at == RECEIVED_AT


# --- the status table, row by row -----------------------------------------------------------------


STATUS_ROWS = [
    # (level, message_status, our status, error_code)
    ("1", "ESME_ROK", Status.SENT, None),
    ("1", "ESME_RINVNUMDESTS", Status.FAILED, "ESME_RINVNUMDESTS"),
    ("1", "ESME_RTHROTTLED", Status.FAILED, "ESME_RTHROTTLED"),
    ("1", "ESME_RSYSERR", Status.FAILED, "ESME_RSYSERR"),
    ("2", "DELIVRD", Status.DELIVERED, None),
    ("2", "ACCEPTD", Status.SENT, None),
    ("2", "ENROUTE", Status.BUFFERED, None),
    ("2", "UNDELIV", Status.UNDELIVERED, None),
    ("2", "EXPIRED", Status.EXPIRED, None),
    ("2", "REJECTD", Status.REJECTED, None),
    ("2", "DELETED", Status.FAILED, None),
    ("2", "UNKNOWN", Status.UNKNOWN, None),
    ("3", "DELIVRD", Status.DELIVERED, None),
    ("3", "UNDELIV", Status.UNDELIVERED, None),
    # unmapped: kept with status None
    ("2", "DELIVERED", None, None),
    ("2", "delivrd", None, None),
    ("1", "ESME_", None, None),
    ("1", "OK", None, None),
]


@pytest.mark.parametrize(("level", "word", "expected", "error_code"), STATUS_ROWS)
def test_status_mapping(
    level: str, word: str, expected: Status | None, error_code: str | None
) -> None:
    params = (
        {**LEVEL_1, "message_status": word}
        if level == "1"
        else level2(level=level, message_status=word, err="000")
    )
    (report,) = provider().parse(inbound(params))
    assert report.status == expected
    assert report.provider_status == word
    assert report.error_code == error_code


def test_every_table_row_is_covered_and_documented() -> None:
    assert set(STATUS) <= {row[1] for row in STATUS_ROWS}
    doc = (Path(__file__).parents[2] / "docs" / "providers" / "jasmin.md").read_text()
    for word in STATUS:
        assert f"`{word}`" in doc


# --- invalid requests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ("", "id"),
        (without(LEVEL_2, "id"), "id"),
        (level2(id=""), "id"),
        (level2(id="abc\x00def"), "id"),
        (without(LEVEL_2, "level"), "level"),
        (level2(level="4"), "level"),
        (level2(level="two"), "level"),
        (without(LEVEL_2, "message_status"), "message_status"),
        (level2(message_status=""), "message_status"),
        (level2(donedate="13110223"), "donedate"),
        (level2(donedate="1313022338"), "donedate"),
        (level2(donedate="2026-11-23"), "donedate"),
        (urlencode(LEVEL_2) + "&id=another", "id"),
        (urlencode(LEVEL_2) + "&message_status=UNDELIV", "message_status"),
    ],
    ids=[
        "empty",
        "no-id",
        "empty-id",
        "control-char-id",
        "no-level",
        "level-4",
        "level-word",
        "no-status",
        "empty-status",
        "short-donedate",
        "month-13",
        "iso-donedate",
        "two-ids",
        "two-statuses",
    ],
)
def test_an_invalid_receipt_names_the_field(params: dict[str, str] | str, field: str) -> None:
    for method in ("POST", "GET"):
        with pytest.raises(PayloadInvalid) as info:
            provider().parse(inbound(params, method=method))
        assert info.value.field == field


def test_answer_is_exactly_ack_jasmin() -> None:
    answer = provider().answer(Outcome(received=1, duplicates=1))
    assert (answer.status, answer.body, answer.media_type) == (200, b"ACK/Jasmin", "text/plain")


# --- the builder ----------------------------------------------------------------------------------


def test_builder_levels_and_order() -> None:
    done = datetime(2026, 11, 23, 9, 59, 30, tzinfo=UTC)
    assert jasmin_dlr(message_id=MSG_ID, message_status="ESME_ROK") == LEVEL_1
    params = jasmin_dlr(message_id=MSG_ID, message_status="DELIVRD", donedate=done)
    assert list(params) == list(LEVEL_2)
    assert (params["level"], params["donedate"], params["dlvrd"]) == ("2", "2611230959", "001")
    assert smpp_date(done) == "2611230959"
    assert jasmin_dlr(message_id=MSG_ID, message_status="UNDELIV", level=3)["level"] == "3"


def test_builder_requests_verify_and_parse() -> None:
    params = jasmin_dlr(message_id=MSG_ID, message_status="UNDELIV", err="069")
    post = jasmin_request(CREDENTIAL, params, provider="gw")
    assert (post.method, post.path) == ("POST", "/webhooks/gw")
    assert post.headers["authorization"] == httpx_basic(CREDENTIAL)
    get = jasmin_request(CREDENTIAL, params, provider="gw", method="get")
    assert (get.method, get.body) == ("GET", b"")
    assert get.path == "/webhooks/gw?" + urlencode(params)
    reports = []
    for request in (post, get):
        _, _, query = request.path.partition("?")
        item = InboundRequest(
            request.method,
            "https://x" + request.path,
            request.headers,
            query.encode(),
            request.body,
            FORM,
            RECEIVED_AT,
        )
        provider().verify(item, now=0)
        reports += provider().parse(item)
    assert reports[0] == reports[1]
    assert (reports[0].status, reports[0].error_code) == (Status.UNDELIVERED, "069")
    with pytest.raises(ValueError, match="GET or POST"):
        jasmin_request(CREDENTIAL, params, method="PUT")


# --- end to end through `receiver serve` ---------------------------------------------------------


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """No trusted proxies: the TCP peer (127.0.0.1) is the caller."""
    with running_server(
        tmp_path_factory,
        "jasmin-direct",
        providers={
            "jasmin": {"type": "jasmin", "secrets": [CREDENTIAL]},
            "gw-elsewhere": {
                "type": "jasmin",
                "secrets": [CREDENTIAL],
                "allowed_ips": ["10.0.0.0/8"],
            },
            "gw-local": {
                "type": "jasmin",
                "secrets": [CREDENTIAL],
                "allowed_ips": ["127.0.0.1/32"],
            },
            "gw-ip-only": {
                "type": "jasmin",
                "insecure_no_signature": True,
                "allowed_ips": ["127.0.0.1/32"],
            },
            "gw-forwarded": {
                "type": "jasmin",
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
        "jasmin-proxied",
        settings={"trusted_proxies": ["127.0.0.1/32"]},
        providers={
            "gw-forwarded": {
                "type": "jasmin",
                "secrets": [CREDENTIAL],
                "allowed_ips": ["203.0.113.0/24"],
            },
        },
    ) as server:
        yield server


@pytest.fixture(scope="module")
def api(direct: Server) -> Iterator[httpx.Client]:
    with direct.api(direct.staff_token("jasmin-tests")) as client:
        yield client


def new_id() -> str:
    return str(uuid.uuid4())


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


def assert_ack(answer: httpx.Response) -> None:
    assert answer.status_code == 200, answer.text
    assert answer.content == b"ACK/Jasmin"
    assert answer.headers["content-type"].split(";")[0] == "text/plain"


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_e2e_level_1_then_level_2_acknowledged_visible_and_deduplicated(
    direct, api, method
) -> None:
    msg_id = new_id()
    done = (datetime.now(UTC) - timedelta(minutes=2)).replace(second=0, microsecond=0)
    submit = jasmin_request(
        CREDENTIAL, jasmin_dlr(message_id=msg_id, message_status="ESME_ROK"), method=method
    )
    receipt = jasmin_request(
        CREDENTIAL,
        jasmin_dlr(message_id=msg_id, message_status="DELIVRD", donedate=done),
        method=method,
    )
    assert_ack(direct.post(submit))
    assert message(api, "jasmin", msg_id)["status"] == "sent"
    assert_ack(direct.post(receipt))
    record = message(api, "jasmin", msg_id)
    assert (record["status"], record["final"], record["to"]) == ("delivered", True, None)

    assert_ack(direct.post(receipt))  # a resend is acknowledged too, and counted once
    events = timeline(api, record)
    # Oldest first by occurred_at: the receipt's donedate is two minutes ago, while the
    # level 1 receipt carries no date and so occurred when it arrived.
    assert [(e["provider_status"], e["status"], e["deliveries"]) for e in events] == [
        ("DELIVRD", "delivered", 2),
        ("ESME_ROK", "sent", 1),
    ]
    delivered = next(e for e in events if e["provider_status"] == "DELIVRD")
    assert delivered["occurred_at"].startswith(done.strftime("%Y-%m-%dT%H:%M:00"))
    assert message(api, "jasmin", msg_id)["report_count"] == 2


def test_e2e_an_undelivered_receipt_keeps_its_error_code(direct, api) -> None:
    msg_id = new_id()
    params = jasmin_dlr(message_id=msg_id, message_status="UNDELIV", err="069")
    assert_ack(direct.post(jasmin_request(CREDENTIAL, params)))
    record = message(api, "jasmin", msg_id)
    assert (record["status"], record["error_code"]) == ("undelivered", "069")


@pytest.mark.parametrize(
    ("credential", "code"), [("jasmin-dlr:wrong", "SIGNATURE_INVALID"), (None, "SIGNATURE_MISSING")]
)
def test_e2e_bad_credentials_are_a_401_problem_not_an_ack(direct, api, credential, code) -> None:
    msg_id = new_id()
    answer = direct.post(
        jasmin_request(credential, jasmin_dlr(message_id=msg_id, message_status="DELIVRD"))
    )
    assert_problem(answer, 401, code)
    assert api.get("/v1/messages", params={"provider_message_id": msg_id}).json()["items"] == []


def test_e2e_an_invalid_receipt_is_a_400_naming_the_field(direct) -> None:
    params = jasmin_dlr(message_id=new_id(), message_status="DELIVRD") | {"level": "9"}
    body = assert_problem(
        direct.post(jasmin_request(CREDENTIAL, params, method="GET")), 400, "PAYLOAD_INVALID"
    )
    assert "level" in body["detail"]


def test_e2e_other_methods_and_content_types_are_refused(direct) -> None:
    request = jasmin_request(CREDENTIAL, jasmin_dlr(message_id=new_id(), message_status="DELIVRD"))
    assert_problem(
        direct.post(dataclasses.replace(request, method="PUT")), 405, "METHOD_NOT_ALLOWED"
    )
    as_json = dataclasses.replace(
        request, headers={**request.headers, "content-type": "application/json"}
    )
    assert_problem(direct.post(as_json), 415, "CONTENT_TYPE_UNSUPPORTED")


def test_e2e_allowed_ips_refuses_a_caller_outside_the_list(direct) -> None:
    request = jasmin_request(
        CREDENTIAL,
        jasmin_dlr(message_id=new_id(), message_status="DELIVRD"),
        provider="gw-elsewhere",
    )
    body = assert_problem(direct.post(request), 401, "SOURCE_NOT_ALLOWED")
    assert "127.0.0.1" in body["detail"]


def test_e2e_allowed_ips_admits_a_caller_in_the_list(direct, api) -> None:
    msg_id = new_id()
    request = jasmin_request(
        CREDENTIAL, jasmin_dlr(message_id=msg_id, message_status="DELIVRD"), provider="gw-local"
    )
    assert_ack(direct.post(request))
    assert message(api, "gw-local", msg_id)["status"] == "delivered"


def test_e2e_ip_allow_list_alone_with_insecure_no_signature(direct, api) -> None:
    msg_id = new_id()
    request = jasmin_request(
        None,
        jasmin_dlr(message_id=msg_id, message_status="DELIVRD"),
        provider="gw-ip-only",
        method="GET",
    )
    assert_ack(direct.post(request))
    assert message(api, "gw-ip-only", msg_id)["status"] == "delivered"


def forwarded(request: SignedRequest, address: str) -> SignedRequest:
    return dataclasses.replace(request, headers={**request.headers, "x-forwarded-for": address})


def test_e2e_x_forwarded_for_counts_from_a_trusted_proxy(proxied) -> None:
    request = jasmin_request(
        CREDENTIAL,
        jasmin_dlr(message_id=new_id(), message_status="DELIVRD"),
        provider="gw-forwarded",
    )
    assert_ack(proxied.post(forwarded(request, "203.0.113.7")))
    assert_problem(proxied.post(forwarded(request, "198.51.100.9")), 401, "SOURCE_NOT_ALLOWED")


def test_e2e_x_forwarded_for_is_ignored_without_trusted_proxies(direct) -> None:
    request = jasmin_request(
        CREDENTIAL,
        jasmin_dlr(message_id=new_id(), message_status="DELIVRD"),
        provider="gw-forwarded",
    )
    body = assert_problem(direct.post(forwarded(request, "203.0.113.7")), 401, "SOURCE_NOT_ALLOWED")
    assert "127.0.0.1" in body["detail"]
