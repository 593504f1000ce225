"""``POST /v1/messages`` (README "Sending") against a real ``receiver serve`` process.

One server serves most of the module; every test sends to its own fresh number with its
own keys and references, so tests never see each other's messages. The sending
provider's ``api_base_url`` points at a closed loopback port: nothing here is sent on.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    Server,
    ServerFactory,
    assert_problem,
    new_whsec,
    stored_rows,
    write_config,
)

SENDING = {
    "type": "standard",
    "secrets": [new_whsec()],
    "api_base_url": "http://127.0.0.1:9",
    "api_key": "test-api-key",
    "sender": "ACME",
}
PROVIDERS = {"acme": SENDING, "inbound": {"type": "standard", "secrets": [new_whsec()]}}
ROOMY = {"send_rate_limits": {"sender": {"per_second": 1000, "burst": 1000}}}
RATE = re.compile(r'"send";r=(\d+);t=(\d+)')


# --- fixtures and helpers ----------------------------------------------------------


@pytest.fixture(scope="module")
def api_server(
    tmp_path_factory: pytest.TempPathFactory, backend_settings: dict[str, Any]
) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("send-api")
    server = Server(workdir, write_config(workdir, {**ROOMY, **backend_settings}, PROVIDERS))
    server.start()
    yield server
    server.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def sender_token(api_server: Server) -> str:
    return api_server.staff_token("module-sender", "sender")


@pytest.fixture(scope="module")
def api(api_server: Server, sender_token: str) -> Iterator[httpx.Client]:
    with api_server.api(sender_token) as client:
        yield client


def new_number() -> str:
    return f"+63917{secrets.randbelow(10**7):07d}"


def new_key() -> str:
    return str(uuid.uuid4())


def new_reference() -> str:
    return f"order-{uuid.uuid4().hex[:16]}"


def message(**fields: Any) -> dict[str, Any]:
    return {"to": new_number(), "body": "Your order is on its way", **fields}


def send(client: httpx.Client, body: Any, key: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post("/v1/messages", json=body, headers=headers, **kwargs)


def rows(server: Server, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows ``sql`` reads from the server's store, as tuples."""
    return [tuple(row.values()) for row in stored_rows(server, sql, params)]


# --- the happy path ----------------------------------------------------------------


def test_a_send_is_accepted_and_committed_with_its_outbox_row(api, api_server):
    body = message(client_reference=f"  {new_reference()}  ")
    answer = send(api, body, new_key())

    assert answer.status_code == 202, answer.text
    assert answer.headers["content-type"] == "application/json"
    sent = answer.json()
    assert answer.headers["location"] == f"/v1/messages/{sent['id']}"
    assert "idempotent-replayed" not in answer.headers
    assert sent["id"].startswith("msg_")
    assert sent["status"] == "queued"
    assert sent["final"] is False
    assert sent["provider"] == "acme"  # the only provider that can send
    assert sent["provider_message_id"] is None
    assert sent["to"] == body["to"]
    assert sent["sender"] == "ACME"  # the provider's configured sender
    assert sent["client_reference"] == body["client_reference"].strip()
    assert sent["segments"] == 1
    assert sent["encoding"] == "GSM-7"
    assert sent["report_count"] == 0

    looked_up = api.get(answer.headers["location"])
    assert looked_up.status_code == 200
    assert looked_up.json() == {k: v for k, v in sent.items() if k != "encoding"}

    db = api_server
    assert rows(db, "SELECT status, client_reference FROM messages WHERE id = ?", sent["id"]) == [
        ("queued", sent["client_reference"])
    ]
    assert rows(db, "SELECT provider, body FROM outbox WHERE message_id = ?", sent["id"]) == [
        ("acme", body["body"])
    ]
    events = api.get(f"/v1/messages/{sent['id']}/events").json()["items"]
    assert [(e["event_id"], e["source"], e["status"]) for e in events] == [
        (f"out:{sent['id']}:accepted", "outbound", "queued")
    ]


def test_the_named_provider_and_sender_are_used(api):
    answer = send(api, message(provider="acme", sender="Shop 42"), new_key())
    assert answer.status_code == 202, answer.text
    assert (answer.json()["provider"], answer.json()["sender"]) == ("acme", "Shop 42")


def test_a_client_reference_alone_is_enough(api, api_server):
    body = message(client_reference=new_reference())
    answer = send(api, body)  # no Idempotency-Key

    assert answer.status_code == 202, answer.text
    sent = answer.json()
    assert answer.headers["location"] == f"/v1/messages/{sent['id']}"
    assert (sent["to"], sent["client_reference"], sent["status"]) == (
        body["to"],
        body["client_reference"],
        "queued",
    )
    looked_up = api.get(answer.headers["location"])
    assert looked_up.status_code == 200
    assert looked_up.json() == {k: v for k, v in sent.items() if k != "encoding"}
    assert rows(api_server, "SELECT body FROM outbox WHERE message_id = ?", sent["id"]) == [
        (body["body"],)
    ]
    # The reference is what tells a repeat from a new message.
    again = assert_problem(send(api, body), 409, "CONFLICT")
    assert again["existing_message_id"] == sent["id"]


# --- who may send ------------------------------------------------------------------


def test_a_viewer_may_not_send_and_a_token_is_required(api_server):
    with api_server.api(api_server.staff_token("send-viewer", "viewer")) as viewer:
        assert_problem(send(viewer, message(), new_key()), 403, "FORBIDDEN")
    answer = httpx.post(api_server.base_url + "/v1/messages", json=message())
    assert_problem(answer, 401, "UNAUTHORIZED")
    assert answer.headers["www-authenticate"].startswith("Bearer")
    with api_server.api("rcv_not-a-token") as stranger:
        assert_problem(send(stranger, message(), new_key()), 401, "UNAUTHORIZED")


def test_an_admin_may_send(api_server):
    with api_server.api(api_server.staff_token("send-admin", "admin")) as admin:
        assert send(admin, message(), new_key()).status_code == 202


# --- validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "problem"),
    [
        ("0917 123 4567", "to: '0917 123 4567' is not in E.164 form (+<country code><number>)"),
        ("09171234567", "to: '09171234567' is not in E.164 form (+<country code><number>)"),
        ("639171234567", "to: '639171234567' is not in E.164 form (+<country code><number>)"),
        ("+63 917 123 4567", "to: '+63 917 123 4567' is not in E.164 form"),
        ("+63917123456789012", "to: '+63917123456789012' is not in E.164 form"),
        ("+6391712345", "to: '+6391712345' is not a valid phone number"),
        ("+999123456789", "to: '+999123456789' is not a valid phone number"),
        ("", "to: '' is not in E.164 form"),
    ],
)
def test_to_must_be_a_valid_e164_number(api, to, problem):
    answer = send(api, message(to=to), new_key())
    body = assert_problem(answer, 422, "REQUEST_INVALID")
    assert body["field"] == "to"
    assert body["detail"].startswith(problem), body["detail"]


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"sendr": "ACME"}, "sendr", "Extra inputs are not permitted"),
        ({"body": ""}, "body", "at least 1 character"),
        ({"body": 42}, "body", "valid string"),
        ({"to": None}, "to", "valid string"),
        ({"client_reference": " short-ref "}, "client_reference", "12-128 characters"),
        ({"client_reference": "x" * 129}, "client_reference", "12-128 characters"),
        ({"sender": "A very long sender"}, "sender", "alphanumeric sender id"),
        ({"sender": "12"}, "sender", "alphanumeric sender id"),
        ({"body": "a" * 1531}, "body", "takes 11 SMS segments in GSM-7; at most 10"),
        ({"body": "ж" * 671}, "body", "takes 11 SMS segments in UCS-2; at most 10"),
    ],
)
def test_an_invalid_body_is_a_422_naming_the_field(api, changes, field, problem):
    body = assert_problem(send(api, message(**changes), new_key()), 422, "REQUEST_INVALID")
    assert body["field"] == field
    assert problem in body["detail"]


def test_a_missing_field_is_named(api):
    body = assert_problem(send(api, {"to": new_number()}, new_key()), 422, "REQUEST_INVALID")
    assert (body["field"], body["detail"]) == ("body", "body: is required")


@pytest.mark.parametrize(
    ("payload", "field", "problem"),
    [
        (
            {"body": "Hi", "template": {"id": "TPL1"}},
            "template",
            "send a body or a template, not both",
        ),
        ({"template": {"id": ""}}, "template.id", "at least 1 character"),
        ({"template": {"id": "TPL1", "colour": "blue"}}, "template.colour", "not permitted"),
        ({"template": {"id": "TPL1", "variables": {"1": 7}}}, "template.variables.1", "string"),
        # standard providers send text: a template does not fit the provider
        ({"template": {"id": "TPL1"}}, "template", "(type standard) sends text"),
    ],
)
def test_a_template_that_does_not_fit_is_named(api, payload, field, problem):
    body = assert_problem(
        send(api, {"to": new_number(), **payload}, new_key()), 422, "REQUEST_INVALID"
    )
    assert body["field"] == field
    assert problem in body["detail"]


def test_malformed_json_wrong_media_type_and_huge_bodies(api):
    key = {"Idempotency-Key": new_key()}
    json_type = {**key, "content-type": "application/json"}
    answer = api.post("/v1/messages", content=b'{"to": ', headers=json_type)
    assert assert_problem(answer, 400, "PAYLOAD_INVALID")["field"] == "body"
    answer = api.post("/v1/messages", content=b"to=%2B639171234567", headers=key)
    assert_problem(answer, 415, "CONTENT_TYPE_UNSUPPORTED")
    huge = json.dumps(message(body="a" * 300_000)).encode()
    assert_problem(api.post("/v1/messages", content=huge, headers=json_type), 413, "BODY_TOO_LARGE")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("a" * 160, (1, "GSM-7"), id="160 gsm"),
        pytest.param("a" * 161, (2, "GSM-7"), id="161 gsm"),
        pytest.param("Total: €5 [incl. ~tax] {ok}" + "a" * 127, (1, "GSM-7"), id="ext fits"),
        pytest.param("Total: €5 [incl. ~tax] {ok}" + "a" * 128, (2, "GSM-7"), id="ext spills"),
        pytest.param("€" * 81, (2, "GSM-7"), id="81 euros"),
        pytest.param("ж" * 70, (1, "UCS-2"), id="70 ucs2"),
        pytest.param("ж" * 71, (2, "UCS-2"), id="71 ucs2"),
        pytest.param("Thanks! \N{GRINNING FACE}" + "a" * 60, (1, "UCS-2"), id="emoji fits"),
        pytest.param("Thanks! \N{GRINNING FACE}" + "a" * 61, (2, "UCS-2"), id="emoji spills"),
        pytest.param("a" * 1530, (10, "GSM-7"), id="10 segments"),
    ],
)
def test_segments_and_encoding_are_in_the_answer(api, api_server, body, expected):
    answer = send(api, message(body=body), new_key())
    assert answer.status_code == 202, answer.text
    sent = answer.json()
    assert (sent["segments"], sent["encoding"]) == expected
    assert rows(api_server, "SELECT segments FROM messages WHERE id = ?", sent["id"]) == [
        (expected[0],)
    ]


# --- providers ---------------------------------------------------------------------


def test_an_unknown_provider_or_one_that_cannot_send_is_a_422(api):
    body = assert_problem(send(api, message(provider="nope"), new_key()), 422, "PROVIDER_UNKNOWN")
    assert (body["field"], body["detail"]) == (
        "provider",
        "provider: no provider named 'nope' is configured",
    )
    answer = send(api, message(provider="inbound"), new_key())
    body = assert_problem(answer, 422, "PROVIDER_CANNOT_SEND")
    assert body["field"] == "provider"
    assert "'inbound' cannot send" in body["detail"]


def test_the_provider_must_be_named_when_several_or_none_can_send(server_factory: ServerFactory):
    several = server_factory(providers={"acme": SENDING, "bulk": SENDING})
    with several.api(several.staff_token("picker", "sender")) as client:
        body = assert_problem(send(client, message(), new_key()), 422, "PROVIDER_REQUIRED")
        assert body["detail"] == "name the provider: several can send (acme, bulk)"
        assert send(client, message(provider="bulk"), new_key()).status_code == 202

    none = server_factory()  # one provider, which only receives
    with none.api(none.staff_token("nobody", "sender")) as client:
        body = assert_problem(send(client, message(), new_key()), 422, "PROVIDER_CANNOT_SEND")
        assert "no configured provider can send" in body["detail"]


# --- Idempotency-Key ---------------------------------------------------------------


def test_the_same_key_and_request_replays_the_stored_answer(api, api_server):
    key, body = new_key(), message(client_reference=new_reference())
    first = send(api, body, key)
    assert first.status_code == 202

    # The same request, written differently (key order, spacing, a quoted key).
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2).encode()
    again = api.post(
        "/v1/messages",
        content=reordered,
        headers={"Idempotency-Key": f'"{key}"', "content-type": "application/json"},
    )
    assert again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert rows(api_server, "SELECT count(*) FROM messages WHERE to_number = ?", body["to"]) == [
        (1,)
    ]
    assert rows(
        api_server,
        "SELECT count(*) FROM outbox JOIN messages ON messages.id = outbox.message_id"
        " WHERE to_number = ?",
        body["to"],
    ) == [(1,)]


def test_the_same_key_for_another_request_is_a_422(api, api_server):
    key, body = new_key(), message()
    assert send(api, body, key).status_code == 202
    answer = send(api, {**body, "body": "Something else"}, key)
    assert_problem(answer, 422, "IDEMPOTENCY_KEY_REUSED")
    assert rows(api_server, "SELECT count(*) FROM messages WHERE to_number = ?", body["to"]) == [
        (1,)
    ]


def test_keys_are_scoped_per_client_token(api, api_server):
    key = new_key()
    assert send(api, message(), key).status_code == 202
    with api_server.api(api_server.staff_token("other-sender", "sender")) as other:
        answer = send(other, message(body="Another client's message"), key)
    assert answer.status_code == 202
    assert "idempotent-replayed" not in answer.headers


def test_a_refused_request_gives_its_key_up_at_once(api, api_server):
    key = new_key()
    assert send(api, message(to="+1"), key).status_code == 422  # claimed, then refused
    assert send(api, message(), key).status_code == 202  # not 409: the claim is gone
    assert rows(api_server, "SELECT key FROM idempotency_claims WHERE key = ?", key) == []


def test_without_a_key_or_a_client_reference_it_is_a_400(api):
    body = assert_problem(send(api, message()), 400, "IDEMPOTENCY_KEY_MISSING")
    assert body["field"] == "Idempotency-Key"


@pytest.mark.parametrize("key", ["", "k" * 256, '""'], ids=["empty", "256 chars", "empty string"])
def test_a_malformed_key_is_a_400(api, key):
    body = assert_problem(send(api, message(), key), 400, "IDEMPOTENCY_KEY_INVALID")
    assert body["field"] == "Idempotency-Key"


def test_a_255_character_key_works(api):
    key = (uuid.uuid4().hex * 8)[:255]
    assert send(api, message(), key).status_code == 202


def test_an_expired_key_is_free_again_and_pruned_at_start(server_factory: ServerFactory):
    server = server_factory({"idempotency_ttl_seconds": 1}, PROVIDERS)
    key, number = new_key(), new_number()
    with server.api(server.staff_token("ttl", "sender")) as client:
        first = send(client, message(to=number), key)
        assert first.status_code == 202
        time.sleep(1.1)  # past the key's expiry
        second = send(client, message(to=number, body="A new message"), key)
    assert second.status_code == 202, second.text
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]

    server.stop()
    time.sleep(1.1)  # the second key expires too
    server.start()  # the prune job runs once at start
    deadline = time.monotonic() + 10
    while rows(server, "SELECT count(*) FROM idempotency_keys") != [(0,)]:
        assert time.monotonic() < deadline, "expired keys were not pruned at start"
        time.sleep(0.05)
    assert rows(server, "SELECT count(*) FROM messages") == [(2,)]


# --- client_reference --------------------------------------------------------------


def test_a_reused_client_reference_is_a_409_naming_the_message(api, api_server):
    reference = new_reference()
    first = send(api, message(client_reference=reference), new_key())
    assert first.status_code == 202

    answer = send(api, message(client_reference=reference, body="Resent"), new_key())
    body = assert_problem(answer, 409, "CONFLICT")
    assert body["existing_message_id"] == first.json()["id"]
    assert reference in body["detail"]
    assert rows(
        api_server, "SELECT count(*) FROM messages WHERE client_reference = ?", reference
    ) == [(1,)]

    # Another client may use the same reference for its own message.
    with api_server.api(api_server.staff_token("ref-owner-2", "sender")) as other:
        assert send(other, message(client_reference=reference), new_key()).status_code == 202


# --- concurrency -------------------------------------------------------------------


async def post_concurrently(
    server: Server, token: str, requests: list[tuple[dict[str, Any], str]]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests))
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=server.base_url, headers=headers, limits=limits, timeout=30
    ) as client:
        return await asyncio.gather(
            *(
                client.post("/v1/messages", json=body, headers={"Idempotency-Key": key})
                for body, key in requests
            )
        )


def test_32_concurrent_requests_with_one_key_make_one_message(api_server, sender_token):
    key, body = new_key(), message()
    answers = asyncio.run(post_concurrently(api_server, sender_token, [(body, key)] * 32))

    accepted = [a for a in answers if a.status_code == 202]
    in_use = [a for a in answers if a.status_code == 409]
    assert len(accepted) + len(in_use) == 32, [a.status_code for a in answers]
    assert accepted
    assert {a.content for a in accepted} == {accepted[0].content}
    for answer in in_use:
        assert_problem(answer, 409, "IDEMPOTENCY_KEY_IN_USE")
        assert int(answer.headers["retry-after"]) >= 1
    message_id = accepted[0].json()["id"]
    db = api_server
    assert rows(db, "SELECT id FROM messages WHERE to_number = ?", body["to"]) == [(message_id,)]
    assert rows(db, "SELECT message_id FROM outbox WHERE message_id = ?", message_id) == [
        (message_id,)
    ]


def test_32_concurrent_requests_with_one_client_reference_make_one_message(
    api_server, sender_token
):
    body = message(client_reference=new_reference())
    requests = [(body, new_key()) for _ in range(32)]
    answers = asyncio.run(post_concurrently(api_server, sender_token, requests))

    accepted = [a for a in answers if a.status_code == 202]
    assert len(accepted) == 1, [a.status_code for a in answers]
    message_id = accepted[0].json()["id"]
    for answer in answers:
        if answer.status_code != 202:
            assert assert_problem(answer, 409, "CONFLICT")["existing_message_id"] == message_id
    db = api_server
    assert rows(db, "SELECT id FROM messages WHERE to_number = ?", body["to"]) == [(message_id,)]
    assert rows(db, "SELECT count(*) FROM outbox WHERE message_id = ?", message_id) == [(1,)]


# --- two processes on one database ------------------------------------------------


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Two ``receiver serve`` processes on one store, with a rate of 1 send per
    100 s in bursts of 5: within a test, a client may send 5 messages in all."""
    config = write_config(
        tmp_path, {"send_rate_limits": {"sender": {"per_second": 0.01, "burst": 5}}}, PROVIDERS
    )
    first = Server(tmp_path, config).start()
    try:
        second = Server(tmp_path, config).start()
        try:
            yield first, second
        finally:
            second.stop(signal.SIGKILL)
    finally:
        first.stop(signal.SIGKILL)


async def post_to_both(
    servers: tuple[Server, Server], token: str, requests: list[tuple[dict[str, Any], str]]
) -> list[httpx.Response]:
    """Post the requests all at once, the even ones to one server, the odd to the other."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=servers[0].base_url, headers=headers, timeout=60) as one,
        httpx.AsyncClient(base_url=servers[1].base_url, headers=headers, timeout=60) as two,
    ):
        return await asyncio.gather(
            *(
                (one, two)[i % 2].post("/v1/messages", json=body, headers={"Idempotency-Key": key})
                for i, (body, key) in enumerate(requests)
            )
        )


def test_a_clients_burst_across_two_processes_is_limited_as_one(two_servers):
    token = two_servers[0].staff_token("spread", "sender")
    requests = [(message(), new_key()) for _ in range(20)]
    answers = asyncio.run(post_to_both(two_servers, token, requests))

    codes = [answer.status_code for answer in answers]
    assert codes.count(202) == 5, codes  # the burst, once: not 5 per process
    assert codes.count(429) == 15, codes
    for answer in answers:
        assert answer.headers["ratelimit-policy"] == '"send";q=5;w=500'
    db = two_servers[0]
    numbers = [body["to"] for body, _ in requests]
    stored = rows(
        db, f"SELECT count(*) FROM messages WHERE to_number IN ({','.join('?' * 20)})", *numbers
    )
    assert stored == [(5,)]


def test_one_key_sent_to_two_processes_at_once_makes_one_message(two_servers):
    token = two_servers[1].staff_token("twice", "sender")
    bodies = [message() for _ in range(2)]  # within the burst of 5
    requests = [(body, key) for body in bodies for key in [new_key()] * 2]
    answers = asyncio.run(post_to_both(two_servers, token, requests))

    db = two_servers[0]
    for body, pair in zip(bodies, zip(answers[::2], answers[1::2], strict=True), strict=True):
        [(message_id,)] = rows(db, "SELECT id FROM messages WHERE to_number = ?", body["to"])
        # Both 202: the one that committed first, then its replay.
        first, second = sorted(
            pair, key=lambda answer: (answer.status_code, "idempotent-replayed" in answer.headers)
        )
        assert first.status_code == 202 and first.json()["id"] == message_id
        if second.status_code == 202:  # it came after the first had committed: a replay
            assert second.headers["idempotent-replayed"] == "true"
            assert second.content == first.content
        else:
            assert_problem(second, 409, "IDEMPOTENCY_KEY_IN_USE")
    assert rows(db, "SELECT count(*) FROM idempotency_claims") == [(0,)]  # all settled


# --- rate limit --------------------------------------------------------------------


def test_over_the_rate_is_a_429_and_retry_after_is_enough(server_factory: ServerFactory):
    limits = {"sender": {"per_second": 0.5, "burst": 1}}
    server = server_factory({"send_rate_limits": limits}, PROVIDERS)
    with server.api(server.staff_token("eager", "sender")) as client:
        first = send(client, message(), new_key())
        assert first.status_code == 202
        assert first.headers["ratelimit-policy"] == '"send";q=1;w=2'
        assert RATE.fullmatch(first.headers["ratelimit"])[1] == "0"

        refused = send(client, message(), new_key())
        body = assert_problem(refused, 429, "RATE_LIMIT_EXCEEDED")
        assert "0.5 sends per second" in body["detail"]
        assert refused.headers["ratelimit-policy"] == '"send";q=1;w=2'
        remaining, reset = RATE.fullmatch(refused.headers["ratelimit"]).groups()
        assert remaining == "0"
        assert int(reset) >= 1
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 2

        # The rate is per client: another token is not slowed down by this one.
        with server.api(server.staff_token("patient", "sender")) as other:
            assert send(other, message(), new_key()).status_code == 202

        time.sleep(retry_after)
        assert send(client, message(), new_key()).status_code == 202


def test_the_default_policy_is_announced(api_server):
    with api_server.api(api_server.staff_token("defaults", "admin")) as admin:
        answer = send(admin, message(), new_key())
    assert answer.headers["ratelimit-policy"] == '"send";q=20;w=2'  # admin: the default
    assert RATE.fullmatch(answer.headers["ratelimit"]).groups() == ("19", "1")


# --- the OpenAPI document ----------------------------------------------------------


def test_the_operation_is_documented(api_server):
    document = httpx.get(api_server.base_url + "/openapi.json").json()
    operation = document["paths"]["/v1/messages"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/SendRequest"}
    request_schema = document["components"]["schemas"]["SendRequest"]
    assert request_schema["additionalProperties"] is False
    assert set(request_schema["required"]) == {"to"}
    assert request_schema["oneOf"] == [{"required": ["body"]}, {"required": ["template"]}]
    assert {"202", "400", "401", "403", "409", "422", "429"} <= set(operation["responses"])
    accepted = operation["responses"]["202"]
    assert {"Location", "Idempotent-Replayed", "RateLimit", "RateLimit-Policy"} <= set(
        accepted["headers"]
    )
    assert "encoding" in document["components"]["schemas"]["SentMessage"]["properties"]
