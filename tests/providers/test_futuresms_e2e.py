"""FutureSMS DLR callbacks end to end through a real ``receiver serve``: tokened reports
are applied, redeliveries are duplicates, reports without the token are refused, and
the answer is the ``{"status": "ok"}`` FutureSMS asks for."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import Server, running_server

from receiver.testing import futuresms_report, futuresms_request

TOKEN = "tok_" + "Hq4w" * 8
PROVIDERS = {
    "fs": {"type": "futuresms", "url_token": TOKEN},
    "fs-ips": {"type": "futuresms", "allowed_ips": ["192.0.2.0/24"]},
}
AT = datetime(2026, 3, 25, 10, 31, 48, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory, "futuresms", providers=PROVIDERS) as started:
        yield started


@pytest.fixture(scope="module")
def api(server: Server) -> Iterator[httpx.Client]:
    with server.api(server.staff_token("fs-admin", "admin")) as client:
        yield client


def dlr(order_id: str, status: str = "DELIVRD", **fields: Any) -> dict[str, Any]:
    return futuresms_report(order_id, status, reported_at=fields.pop("reported_at", AT), **fields)


def post(server: Server, report: dict[str, Any], token: str | None = TOKEN) -> httpx.Response:
    return server.post(futuresms_request(report, provider="fs", token=token))


def message(api: httpx.Client, order_id: str) -> dict[str, Any]:
    answer = api.get("/v1/messages", params={"provider": "fs", "provider_message_id": order_id})
    [found] = answer.json()["items"]
    return dict(found)


def test_a_tokened_report_is_applied_and_its_redelivery_is_a_duplicate(server, api) -> None:
    report = dlr("SDPS2603251031480000001", phone_number="+639171234567")

    first = post(server, report)
    again = post(server, report)

    assert first.status_code == again.status_code == 200
    assert first.json() == {
        "status": "ok",
        "received": 1,
        "applied": 1,
        "duplicates": 0,
        "superseded": 0,
    }
    assert again.json()["duplicates"] == 1 and again.json()["applied"] == 0
    stored = message(api, "SDPS2603251031480000001")
    assert (stored["status"], stored["to"], stored["report_count"]) == (
        "delivered",
        "+639171234567",
        1,
    )
    [event] = api.get(f"/v1/messages/{stored['id']}/events").json()["items"]
    assert (event["provider_status"], event["deliveries"]) == ("DELIVRD", 2)
    assert event["occurred_at"].startswith("2026-03-25T10:31:48")


def test_reports_out_of_order_converge(server, api) -> None:
    order_id = "SDPS2603251031480000002"
    late = post(server, dlr(order_id, "DELIVRD"))
    early = post(
        server, dlr(order_id, "ENROUTE", reported_at=datetime(2026, 3, 25, 10, 31, tzinfo=UTC))
    )
    unmapped = post(
        server, dlr(order_id, "pending", reported_at=datetime(2026, 3, 25, 10, 30, tzinfo=UTC))
    )

    assert (late.json()["applied"], early.json()["superseded"]) == (1, 1)
    assert unmapped.json()["superseded"] == 1
    stored = message(api, order_id)
    assert (stored["status"], stored["report_count"]) == ("delivered", 3)


def test_a_report_without_the_token_is_refused(server, api) -> None:
    report = dlr("SDPS2603251031480000003")
    missing = post(server, report, token=None)
    wrong = post(server, report, token="tok_" + "x" * 30)
    twice = server.post(
        replace(
            futuresms_request(report, provider="fs", token=TOKEN),
            path=f"/webhooks/fs?token={TOKEN}&token={TOKEN}",
        )
    )

    assert (missing.status_code, missing.json()["code"]) == (401, "SIGNATURE_MISSING")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "SIGNATURE_INVALID")
    assert (twice.status_code, twice.json()["code"]) == (401, "SIGNATURE_MALFORMED")
    assert TOKEN not in missing.text + wrong.text + twice.text
    listed = api.get("/v1/messages", params={"provider_message_id": "SDPS2603251031480000003"})
    assert listed.json()["items"] == []


def test_a_provider_guarded_by_allowed_ips_refuses_other_callers(server) -> None:
    request = futuresms_request(dlr("SDPS2603251031480000004"), provider="fs-ips")
    refused = server.post(request)
    assert (refused.status_code, refused.json()["code"]) == (401, "SOURCE_NOT_ALLOWED")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        (b"order_id=1", "application/x-www-form-urlencoded", 415, None),
        (b"{not json", "application/json", 400, "body"),
        (
            json.dumps({"order_id": "SDPS1", "message_status": "DELIVRD"}),
            "application/json",
            400,
            "reported_at",
        ),
    ],
)
def test_a_tokened_but_bad_request_is_refused_naming_the_problem(
    server, body, content_type, status, field
) -> None:
    answer = httpx.post(
        f"{server.base_url}/webhooks/fs?token={TOKEN}",
        content=body,
        headers={"content-type": content_type},
    )
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json().get("field") == field
