"""Operations routes, request ids and error hygiene on a real server (README "HTTP API")."""

from __future__ import annotations

import json
import time
import tomllib

import httpx
import pytest
from conftest import PROBLEM, assert_problem, write_config
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Mount, Route

import receiver.app
import receiver.config
from receiver.core.signatures import standard_webhooks
from receiver.testing import SignedRequest, standard_report, standard_request


def sample_value(text: str, sample: str, labels: dict[str, str] | None = None) -> float | None:
    """The value of one sample in Prometheus text, or None if it is absent."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and s.labels == (labels or {}):
                return float(s.value)
    return None


def signed_raw(secret: str, body: bytes) -> SignedRequest:
    """Any bytes, correctly signed (Standard Webhooks v1) for the ``default`` provider."""
    event_id, now = "evt_raw_" + str(time.time_ns()), int(time.time())
    key = standard_webhooks.decode_secret(secret)
    return SignedRequest(
        "/webhooks/default",
        body,
        {
            "content-type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(now),
            "webhook-signature": standard_webhooks.signature(key, event_id, now, body),
        },
    )


def session_secret(server) -> str:
    return str(tomllib.loads(server.config_path.read_text())["session_secret"])


# -- health and readiness -------------------------------------------------------------------


def test_healthz_answers_ok(server):
    answer = httpx.get(server.base_url + "/healthz")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == {"status": "ok"}


def test_readyz_answers_ok_when_the_store_works(server):
    answer = httpx.get(server.base_url + "/readyz")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


# -- metrics ----------------------------------------------------------------------------------


def test_metrics_count_reports_latency_commits_and_signature_failures(server):
    secret = server.secret()
    for i in range(3):
        assert server.post(standard_request(secret, standard_report(f"m-{i}", "sent"))).is_success
    again = standard_request(secret, standard_report("m-dup", "delivered"))
    assert server.post(again).json()["applied"] == 1
    assert server.post(again).json()["duplicates"] == 1

    answer = httpx.get(server.base_url + "/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert 'receiver_reports_total{outcome="applied",provider="default"} 4.0' in text
    assert 'receiver_reports_total{outcome="duplicates",provider="default"} 1.0' in text
    assert "receiver_ingest_seconds_bucket" in text
    assert sample_value(text, "receiver_ingest_seconds_count", {"provider": "default"}) == 5
    batches = sample_value(text, "receiver_commit_batch_reports_count")
    assert batches is not None and batches > 0
    committed = sample_value(text, "receiver_commit_batch_reports_sum")
    assert committed == 5  # every report of every request passed through a group commit
    assert "receiver_signature_failures_total" not in text.replace(
        "# HELP receiver_signature_failures_total", ""
    ).replace("# TYPE receiver_signature_failures_total", "")

    forged = standard_request(secret, standard_report("m-forged", "delivered"))
    forged.headers["webhook-signature"] = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    assert_problem(server.post(forged), 401)

    text = httpx.get(server.base_url + "/metrics").text
    failures = [
        s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "receiver_signature_failures_total"
    ]
    assert [(s.labels["provider"], s.value) for s in failures] == [("default", 1.0)]
    assert failures[0].labels["reason"] == "signature_invalid"
    # A refused request is not a report.
    assert 'receiver_reports_total{outcome="applied",provider="default"} 4.0' in text


# -- OpenAPI ----------------------------------------------------------------------------------


@pytest.fixture
def app_routes(tmp_path) -> set[tuple[str, str]]:
    """(path, method) of every route of an app built (not started) from a fresh config."""
    app = receiver.app.create_app(receiver.config.load(write_config(tmp_path)))
    routes = set()
    for route in app.routes:
        if isinstance(route, Mount) and route.path == "/console":
            continue  # the staff console's HTML pages are not part of the JSON API
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD":
                routes.add((route.path, method.lower()))
    return routes


def test_openapi_is_valid_3_1_and_covers_every_route(server, app_routes):
    answer = httpx.get(server.base_url + "/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    document = answer.json()
    assert document["openapi"].startswith("3.1")
    validate(document, cls=OpenAPIV31SpecValidator)

    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert app_routes, "the app has no routes?"
    assert app_routes <= documented, f"undocumented routes: {sorted(app_routes - documented)}"
    assert documented <= app_routes, f"documented but absent: {sorted(documented - app_routes)}"


def test_openapi_webhook_body_and_error_media_types(server):
    document = httpx.get(server.base_url + "/openapi.json").json()
    schemas = document["components"]["schemas"]

    webhook = document["paths"]["/webhooks/{provider}"]["post"]
    body_schema = webhook["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/StandardPayload"}
    assert "StandardPayload" in schemas
    assert {"type", "data"} <= set(schemas["StandardPayload"]["properties"])
    for status in ("200", "400", "401", "404", "413", "415", "503"):
        assert status in webhook["responses"], status

    errors = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    errors += 1
                    assert set(response["content"]) == {PROBLEM}, (path, method, status)
                    schema = response["content"][PROBLEM]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Problem"}
    assert errors > 0
    assert {"type", "title", "status", "detail", "code", "request_id"} <= set(
        schemas["Problem"]["required"]
    )
    # Every $ref resolves inside the document.
    refs = {
        ref.split("/")[-1] for ref in _all_refs(document) if ref.startswith("#/components/schemas/")
    }
    assert refs <= set(schemas)


def _all_refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _all_refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _all_refs(value)]
    return []


# -- request ids ------------------------------------------------------------------------------


def test_every_response_carries_a_request_id(server):
    secret = server.secret()
    base = server.base_url
    answers = {
        "200 webhook": server.post(standard_request(secret, standard_report("rid-1", "sent"))),
        "200 healthz": httpx.get(base + "/healthz"),
        "200 metrics": httpx.get(base + "/metrics"),
        "200 openapi": httpx.get(base + "/openapi.json"),
        "401 signature": httpx.post(
            base + "/webhooks/default", content=b"{}", headers={"content-type": "application/json"}
        ),
        "401 staff": httpx.get(base + "/v1/messages"),
        "404 route": httpx.get(base + "/nope"),
        "404 provider": server.post(
            standard_request(secret, standard_report("x", "sent"), provider="ghost")
        ),
        "405 method": httpx.post(base + "/healthz"),
        "405 webhook GET": httpx.get(base + "/webhooks/default"),
    }
    ids = set()
    for name, answer in answers.items():
        request_id = answer.headers.get("x-request-id")
        assert request_id, f"{name}: no X-Request-ID"
        ids.add(request_id)
        if answer.status_code >= 400:
            assert_problem(answer, answer.status_code)
    assert len(ids) == len(answers), "request ids are not unique per request"

    assert answers["405 method"].status_code == 405
    assert answers["405 webhook GET"].status_code == 405
    assert_problem(answers["401 staff"], 401, "UNAUTHORIZED")
    assert_problem(answers["404 provider"], 404, "PROVIDER_UNKNOWN")


def test_a_sane_caller_request_id_is_echoed_and_an_insane_one_replaced(server):
    echoed = httpx.get(server.base_url + "/nope", headers={"X-Request-ID": "trace-42.abc:1"})
    assert echoed.headers["x-request-id"] == "trace-42.abc:1"
    assert assert_problem(echoed, 404)["request_id"] == "trace-42.abc:1"

    hostile = "bad id <script>" + "x" * 200
    replaced = httpx.get(server.base_url + "/healthz", headers={"X-Request-ID": hostile})
    assert replaced.status_code == 200
    assert replaced.headers["x-request-id"]
    assert replaced.headers["x-request-id"] != hostile
    assert "<" not in replaced.headers["x-request-id"]
    assert len(replaced.headers["x-request-id"]) <= 128


def test_unknown_route_is_a_404_problem_with_a_code(server):
    answer = httpx.get(server.base_url + "/nope")
    body = assert_problem(answer, 404)
    assert body["code"] == "NOT_FOUND"
    assert body["title"]
    assert body["type"].startswith(("https://", "about:blank"))


def test_wrong_method_is_a_405_problem(server):
    answer = httpx.delete(server.base_url + "/v1/messages")
    body = assert_problem(answer, 405)
    assert body["code"] == "METHOD_NOT_ALLOWED"
    assert "GET" in answer.headers.get("allow", "")


# -- no stack traces, no secrets --------------------------------------------------------------


def test_error_answers_never_carry_a_stack_trace_or_secret(server):
    webhook_secret = server.secret()
    key_material = webhook_secret.removeprefix("whsec_")
    session = session_secret(server)
    base = server.base_url
    token = server.staff_token("viewer-1")

    wrong_key = standard_request(
        "whsec_" + "A" * 32, standard_report("s-1", "delivered"), event_id="evt_forged"
    )
    stale = standard_request(
        webhook_secret, standard_report("s-2", "delivered"), timestamp=1_000_000_000
    )
    not_json = signed_raw(webhook_secret, b'{"type": "message.status", "data": {')
    invalid = standard_request(webhook_secret, {"message_id": "s-4"})  # no status
    with httpx.Client(base_url=base) as http, server.api(token) as api:
        answers = [
            server.post(wrong_key),
            server.post(stale),
            server.post(not_json),
            server.post(invalid),
            http.post(
                "/webhooks/default",
                content=b"x" * 300_000,
                headers={"content-type": "application/json"},
            ),
            http.post("/webhooks/default", content=b"a=b", headers={"content-type": "text/plain"}),
            http.get("/v1/messages", headers={"Authorization": f"Bearer {webhook_secret}"}),
            api.get("/v1/messages", params={"cursor": "forged.cursor"}),
            api.get("/v1/messages", params={"since": "yesterday"}),
            api.get("/v1/messages/msg_missing"),
            http.get("/nope"),
        ]
    statuses = [a.status_code for a in answers]
    assert statuses == [401, 401, 400, 400, 413, 415, 401, 400, 400, 404, 404]
    for answer in answers:
        body = assert_problem(answer, answer.status_code)
        text = answer.text
        for needle in ("Traceback", 'File "', webhook_secret, key_material, session, token):
            assert needle not in text, (answer.status_code, needle)
        assert json.loads(text) == body
    assert answers[2].json()["code"] == "PAYLOAD_INVALID"
    # The invalid payload names the field.
    assert answers[3].json()["code"] == "PAYLOAD_INVALID"
    assert "status" in answers[3].json()["detail"]
    # The signature failure says which check failed, never the expected signature.
    assert answers[1].json()["code"] == "TIMESTAMP_STALE"
    assert answers[0].json()["code"] == "SIGNATURE_INVALID"
