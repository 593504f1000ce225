"""Delivery health over HTTP (README "Delivery health") against one real ``receiver serve``:
``country`` and ``network`` on messages and as filters, ``GET /v1/stats/delivery``,
``GET /v1/messages.csv`` and the outcome metrics."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from conftest import Server, new_whsec, running_server

from receiver.testing import standard_report, standard_request

NOW = datetime.now(UTC)
HOUR = NOW.replace(minute=0, second=0, microsecond=0)
WINDOW = {
    "since": (HOUR - timedelta(hours=1)).isoformat(),
    "until": (HOUR + timedelta(hours=2)).isoformat(),
}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, backend_settings: dict[str, Any]
) -> Iterator[Server]:
    """One server for the module, on each backend in turn."""
    providers = {
        "acme": {"type": "standard", "secrets": [new_whsec()]},
        "globe": {"type": "standard", "secrets": [new_whsec()]},
    }
    with running_server(tmp_path_factory, "health-api", backend_settings, providers) as started:
        yield started


@pytest.fixture(scope="module")
def viewer(server: Server) -> Iterator[httpx.Client]:
    with server.api(server.staff_token("health-viewer", "viewer")) as client:
        yield client


def post(server: Server, provider: str, reports: list[dict[str, Any]]) -> None:
    request = standard_request(server.secret(provider), reports, provider=provider)
    answer = server.post(request)
    assert answer.status_code == 200, answer.text


def report(pmid: str, status: str, seconds: int, **fields: Any) -> dict[str, Any]:
    return standard_report(pmid, status, occurred_at=NOW + timedelta(seconds=seconds), **fields)


@pytest.fixture(scope="module")
def traffic(server: Server) -> dict[str, str]:
    """Messages through two providers to two countries, their networks named by some
    reports; one message per outcome."""
    tag = uuid.uuid4().hex[:8]
    ph, gb = "+639171234567", "+447700900123"
    post(
        server,
        "acme",
        [
            report(f"{tag}-1", "sent", 0, to=ph),
            report(f"{tag}-1", "delivered", 4, to=ph, network="515-02"),
            report(f"{tag}-2", "sent", 0, to=ph),
            report(f"{tag}-2", "delivered", 50, to=ph, network="515-02"),
            report(f"{tag}-3", "undelivered", 9, to=ph, network="515-03"),
            report(f"{tag}-4", "sent", 0, to=gb),
        ],
    )
    post(server, "globe", [report(f"{tag}-5", "expired", 60, to=gb, network="234-10")])
    return {"tag": tag}


def stats(client: httpx.Client, **params: str) -> list[dict[str, Any]]:
    answer = client.get("/v1/stats/delivery", params={**WINDOW, **params})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["rows"])


def test_messages_carry_country_and_network(viewer, traffic):
    (message,) = viewer.get(
        "/v1/messages", params={"provider_message_id": traffic["tag"] + "-1"}
    ).json()["items"]
    assert (message["country"], message["network"]) == ("PH", "515-02")
    (sent_only,) = viewer.get(
        "/v1/messages", params={"provider_message_id": traffic["tag"] + "-4"}
    ).json()["items"]
    assert (sent_only["country"], sent_only["network"]) == ("GB", None)  # never guessed


def test_search_filters_by_country_and_network(viewer, traffic):
    items = viewer.get("/v1/messages", params={"country": "ph", "network": "515-02"}).json()[
        "items"
    ]
    assert sorted(i["provider_message_id"] for i in items) == [
        f"{traffic['tag']}-1",
        f"{traffic['tag']}-2",
    ]
    answer = viewer.get("/v1/messages", params={"network": "51502"})
    assert answer.status_code == 400
    assert answer.json()["code"] == "FILTER_INVALID"


def test_stats_by_provider_country_network(viewer, traffic):
    rows = stats(viewer, group_by="provider,country,network")
    by_key = {(r["provider"], r["country"], r["network"]): r for r in rows}
    assert by_key[("acme", "PH", "515-02")] == {
        "provider": "acme",
        "country": "PH",
        "network": "515-02",
        "messages": 2,
        "by_status": {"delivered": 2},
        "pending": 0,
        "delivery_rate": 1.0,
        "latency_seconds": {"p50": 4.0, "p90": 50.0, "p99": 50.0},
    }
    assert by_key[("acme", "PH", "515-03")]["delivery_rate"] == 0.0
    assert by_key[("acme", "GB", None)]["pending"] == 1
    assert by_key[("acme", "GB", None)]["delivery_rate"] is None  # none finished
    assert by_key[("globe", "GB", "234-10")]["by_status"] == {"expired": 1}


def test_stats_per_hour_and_day_agree_with_the_total(viewer, traffic):
    (total,) = stats(viewer)
    assert total["messages"] == 5
    assert total["delivery_rate"] == 0.5  # 2 delivered of 4 finished
    hours = stats(viewer, bucket="1h")
    assert sum(r["messages"] for r in hours) == 5
    assert all(r["bucket_start"].endswith(":00:00Z") for r in hours)
    days = stats(viewer, bucket="1d", group_by="provider")
    assert sum(r["messages"] for r in days) == 5


def test_stats_counts_agree_with_the_search(viewer, traffic):
    rows = stats(viewer, group_by="country")
    ph = next(r for r in rows if r["country"] == "PH")
    search = viewer.get("/v1/messages", params={"country": "PH", **WINDOW}).json()["items"]
    assert ph["messages"] == len(search)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2026-12-05T10:30:00Z"}, "since"),
        ({"group_by": "provider,operator"}, "group_by"),
        ({"bucket": "1w"}, "bucket"),
        ({"since": "2026-12-05T10:00:00Z", "until": "2026-12-05T09:00:00Z"}, ""),
        ({"limit": "3"}, "limit"),
    ],
)
def test_bad_stats_parameters_are_problems(viewer, params, field):
    answer = viewer.get("/v1/stats/delivery", params=params)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "FILTER_INVALID"
    assert answer.json().get("field", "") == field


def test_stats_need_a_token(server):
    assert httpx.get(server.base_url + "/v1/stats/delivery").status_code == 401
    assert httpx.get(server.base_url + "/v1/messages.csv").status_code == 401


def test_csv_streams_every_match_with_formulas_escaped(server, viewer):
    tag = uuid.uuid4().hex[:8]
    hostile = '=HYPERLINK("http://evil.example","x")'
    reports = [
        report(f"csv-{tag}-{n:04d}", "delivered", 1, to="+639171234567", client_reference=f"r{n}")
        for n in range(620)  # more than one page of the stream (500)
    ]
    reports[0]["client_reference"] = hostile
    post(server, "acme", reports)
    with viewer.stream(
        "GET",
        "/v1/messages.csv",
        params={"provider": "acme", "status": "delivered", "since": NOW.isoformat()},
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        text = "".join(answer.iter_text())
    rows = list(csv.DictReader(io.StringIO(text)))
    mine = [r for r in rows if r["provider_message_id"].startswith(f"csv-{tag}")]
    assert len(mine) == 620
    assert len({r["id"] for r in mine}) == 620
    first = next(r for r in mine if r["provider_message_id"].endswith("-0000"))
    assert first["client_reference"] == "'" + hostile
    assert first["to"] == "'+63******4567"  # masked for a viewer, and escaped (leading +)
    assert (first["country"], first["status"], first["final"]) == ("PH", "delivered", "true")
    answer = viewer.get("/v1/messages.csv", params={"cursor": "x"})
    assert answer.status_code == 400


def test_metrics_count_final_outcomes_by_country(server, traffic):
    text = httpx.get(server.base_url + "/metrics").text
    assert (
        'receiver_message_outcomes_total{country="PH",provider="acme",status="delivered"}' in text
    )
    assert 'receiver_message_outcomes_total{country="GB",provider="globe",status="expired"}' in text
    assert 'receiver_report_latency_seconds_count{country="PH",provider="acme"}' in text


def test_a_standard_report_names_its_network_in_the_contract_form(server):
    report = standard_report("net-form", "delivered", network="51502")
    answer = server.post(standard_request(server.secret("acme"), report, provider="acme"))
    assert answer.status_code == 400
    assert answer.json()["field"] == "data.network"
