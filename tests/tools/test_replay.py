"""`receiver export` and `receiver replay` against real servers, through the real CLI."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from conftest import Server, ServerFactory, free_port, new_whsec, run_cli

from receiver.testing import (
    SignedRequest,
    jasmin_dlr,
    jasmin_request,
    standard_report,
    standard_request,
)

pytestmark = pytest.mark.long_running

CREDENTIAL = "jasmin-dlr:9f3c1e7a"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def providers(secret: str, tolerance: int = 300) -> dict[str, dict[str, Any]]:
    return {
        "default": {"type": "standard", "secrets": [secret], "tolerance_seconds": tolerance},
        "jasmin": {"type": "jasmin", "secrets": [CREDENTIAL]},
    }


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def traffic(secret: str, *, timestamp: int | None = None) -> list[SignedRequest]:
    """A small realistic stream: out of order, a failure corrected, a batch, a redelivery,
    and a Jasmin receipt whose form body is not UTF-8."""
    first = standard_request(
        secret, standard_report("prov-a", "sent", occurred_at=at(1)), timestamp=timestamp
    )
    jasmin_body = urlencode(jasmin_dlr(message_id="jas-1", message_status="DELIVRD")).encode()
    return [
        standard_request(
            secret, standard_report("prov-a", "delivered", occurred_at=at(3)), timestamp=timestamp
        ),
        first,
        first,  # a redelivery: a duplicate, not stored again
        standard_request(
            secret,
            standard_report("prov-b", "failed", occurred_at=at(2), error_code="30003"),
            timestamp=timestamp,
        ),
        standard_request(
            secret,
            [
                standard_report("prov-c", "queued", occurred_at=at(1), to="+639171234567"),
                standard_report("prov-c", "undelivered", occurred_at=at(4), error_code="21"),
                standard_report("prov-d", "buffered", occurred_at=at(2)),
            ],
            timestamp=timestamp,
        ),
        standard_request(
            secret, standard_report("prov-b", "delivered", occurred_at=at(5)), timestamp=timestamp
        ),
        SignedRequest(
            "/webhooks/jasmin",
            jasmin_body + b"&note=caf\xe9",  # Latin-1, as old gateways send it
            jasmin_request(CREDENTIAL, {}).headers,
        ),
    ]


def post_all(server: Server, requests: list[SignedRequest]) -> None:
    for request in requests:
        answer = server.post(request)
        assert answer.status_code == 200, answer.text


def export(server: Server, *options: str) -> list[dict[str, Any]]:
    result = run_cli("export", "--config", str(server.config_path), *options)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def snapshot(server: Server) -> dict[str, dict[str, Any]]:
    """Every message's final state, by provider and provider message id."""
    with server.api(server.staff_token(f"viewer-{time.monotonic_ns()}")) as api:
        items = api.get("/v1/messages", params={"limit": 200}).json()["items"]
    keep = ("status", "final", "error_code", "error_message", "to", "report_count")
    return {f"{m['provider']}/{m['provider_message_id']}": {k: m[k] for k in keep} for m in items}


def summary(stdout: str) -> dict[str, str]:
    lines = stdout.splitlines()
    assert lines[0].startswith("replayed "), stdout
    return dict(line.split(": ", 1) for line in lines[1:])


def write_lines(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_export_writes_each_stored_request_as_received(server_factory: ServerFactory) -> None:
    secret = new_whsec()
    server = server_factory(providers=providers(secret))
    sent = traffic(secret)
    post_all(server, sent)

    records = export(server)

    stored = [sent[0], *sent[1:2], *sent[3:]]  # the redelivery brought nothing new
    assert [r["path"] for r in records] == [r.path for r in stored]
    for record, request in zip(records, stored, strict=True):
        assert record["method"] == "POST"
        assert set(record) == {"method", "path", "headers", "body"} or set(record) == {
            "method",
            "path",
            "headers",
            "body_base64",
        }
        received = {k: v for k, v in request.headers.items() if k != "authorization"}
        assert received.items() <= record["headers"].items()
        assert "authorization" not in record["headers"]
        assert record["headers"]["content-length"] == str(len(request.body))
    for record, request in zip(records[:-1], stored[:-1], strict=True):
        assert record["body"].encode() == request.body
    assert "body" not in records[-1]
    assert base64.b64decode(records[-1]["body_base64"]) == stored[-1].body


def test_export_filters(server_factory: ServerFactory) -> None:
    secret = new_whsec()
    server = server_factory(providers=providers(secret))
    post_all(server, traffic(secret))
    every = export(server)

    assert [r["path"] for r in export(server, "--provider", "jasmin")] == ["/webhooks/jasmin"]
    assert len(export(server, "--provider", "default")) == len(every) - 1
    assert export(server, "--provider", "nobody") == []

    with server.api(server.staff_token("alice")) as api:
        found = api.get("/v1/messages", params={"provider_message_id": "prov-b"}).json()
    prov_b = [r for r in every if '"prov-b"' in r.get("body", "")]
    assert len(prov_b) == 2
    assert export(server, "--message", found["items"][0]["id"]) == prov_b
    assert export(server, "--message", "msg_unknown") == []

    now = datetime.now(UTC)
    assert export(server, "--since", (now - timedelta(minutes=5)).isoformat()) == every
    assert export(server, "--since", (now + timedelta(minutes=5)).isoformat()) == []
    assert export(server, "--until", (now + timedelta(minutes=5)).isoformat()) == every
    assert export(server, "--until", "2020-01-01") == []

    bad = run_cli("export", "--config", str(server.config_path), "--since", "yesterday")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "receiver: --since 'yesterday' is not an ISO 8601 date or time"
    ]


def test_export_piped_to_replay_reproduces_the_final_statuses(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    secret = new_whsec()
    # The source accepted old timestamps (a long window); the target keeps 5 minutes,
    # so the capture must be signed again to be accepted.
    source = server_factory(providers=providers(secret, tolerance=172800))
    post_all(source, traffic(secret, timestamp=int(time.time()) - 3600))
    expected = snapshot(source)
    assert expected["default/prov-a"]["status"] == "delivered"
    assert expected["default/prov-c"]["status"] == "undelivered"
    assert expected["jasmin/jas-1"]["status"] == "delivered"

    target = server_factory(providers=providers(secret))
    capture = tmp_path / "capture.jsonl"
    capture.write_text(run_cli("export", "--config", str(source.config_path)).stdout)

    stale = run_cli("replay", str(capture), "--url", target.base_url)
    assert stale.returncode == 1
    assert summary(stale.stdout)["status 401"] == "6"
    assert "TIMESTAMP_STALE" in stale.stderr

    exporter = subprocess.Popen(
        [sys.executable, "-m", "receiver", "export", "--config", str(source.config_path)],
        stdout=subprocess.PIPE,
    )
    replay = subprocess.run(
        [
            *(sys.executable, "-m", "receiver", "replay", "-", "--url", target.base_url),
            *("--resign", "--config", str(target.config_path), "--concurrency", "1"),
        ],
        stdin=exporter.stdout,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert exporter.stdout is not None
    exporter.stdout.close()
    assert exporter.wait(timeout=30) == 0
    assert replay.returncode == 0, replay.stderr
    counts = summary(replay.stdout)
    assert counts["status 200"] == "6"
    assert counts["connection failures"] == "0"
    # One report per request except the batch of three; Jasmin answers ACK, not counts.
    assert int(counts["applied"]) + int(counts["superseded"]) == 7
    assert counts["duplicates"] == "0"
    assert snapshot(target) == expected


def test_replaying_a_capture_twice_changes_nothing_the_second_time(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    secret = new_whsec()
    source = server_factory(providers=providers(secret))
    post_all(source, traffic(secret))
    capture = tmp_path / "capture.jsonl"
    capture.write_text(run_cli("export", "--config", str(source.config_path)).stdout)
    target = server_factory(providers=providers(secret))

    first = run_cli(
        "replay", str(capture), "--url", target.base_url, "--resign",
        "--config", str(target.config_path),
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    before = snapshot(target)
    assert before == snapshot(source)

    second = run_cli(
        "replay", str(capture), "--url", target.base_url, "--resign",
        "--config", str(target.config_path), "--concurrency", "8", "--rate", "50",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    one, two = summary(first.stdout), summary(second.stdout)
    assert two["status 200"] == one["status 200"] == "6"
    assert two["applied"] == two["superseded"] == "0"
    assert int(two["duplicates"]) == int(one["applied"]) + int(one["superseded"]) == 7
    assert snapshot(target) == before
    assert len(export(target)) == 6  # duplicates store no new raw request


def test_replay_honours_the_rate(server: Server, tmp_path: Path) -> None:
    secret = server.secret()
    requests = [standard_request(secret, standard_report(f"rate-{i}", "sent")) for i in range(6)]
    capture = write_lines(
        tmp_path / "rate.jsonl",
        [
            {"method": "POST", "path": r.path, "headers": r.headers, "body": r.body.decode()}
            for r in requests
        ],
    )
    started = time.monotonic()
    result = run_cli("replay", str(capture), "--url", server.base_url, "--rate", "10")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 0.5  # six starts 0.1 s apart
    assert summary(result.stdout)["applied"] == "6"


def test_replay_reads_har_files(server: Server, tmp_path: Path) -> None:
    secret = server.secret()
    delivered = standard_request(secret, standard_report("har-1", "delivered"))
    failed = standard_request(secret, standard_report("har-2", "rejected", error_code="4"))
    entries = [
        {
            "startedDateTime": "2026-11-23T09:59:58.000Z",
            "request": {
                "method": "POST",
                "url": f"https://dlr.example.com{request.path}",
                "httpVersion": "HTTP/2",
                "headers": [
                    {"name": ":authority", "value": "dlr.example.com"},
                    {"name": "Content-Length", "value": str(len(request.body))},
                    *({"name": k.title(), "value": v} for k, v in request.headers.items()),
                ],
                "queryString": [],
                "postData": {"mimeType": "application/json", "text": request.body.decode()},
            },
            "response": {"status": 200},
        }
        for request in (delivered, failed)
    ]
    har = {"log": {"version": "1.2", "creator": {"name": "test"}, "entries": entries}}
    (tmp_path / "one.har").write_text(json.dumps(har))
    (tmp_path / "two.json").write_text(json.dumps(har, indent=2))  # found by its shape

    first = run_cli("replay", str(tmp_path / "one.har"), "--url", server.base_url)
    assert first.returncode == 0, first.stderr
    assert summary(first.stdout)["applied"] == "2"
    second = run_cli("replay", str(tmp_path / "two.json"), "--url", server.base_url + "/")
    assert second.returncode == 0, second.stderr
    assert summary(second.stdout)["duplicates"] == "2"

    messages = snapshot(server)
    assert messages["default/har-1"]["status"] == "delivered"
    assert messages["default/har-2"]["status"] == "rejected"
    assert messages["default/har-2"]["error_code"] == "4"


def test_replay_exits_1_on_a_non_2xx_answer(server: Server, tmp_path: Path) -> None:
    good = standard_request(server.secret(), standard_report("ok-1", "sent"))
    unknown = standard_request(server.secret(), standard_report("lost-1", "sent"), provider="nope")
    capture = write_lines(
        tmp_path / "mixed.jsonl",
        [
            {"method": "POST", "path": r.path, "headers": r.headers, "body": r.body.decode()}
            for r in (good, unknown)
        ],
    )
    result = run_cli("replay", str(capture), "--url", server.base_url)
    assert result.returncode == 1
    counts = summary(result.stdout)
    assert counts["status 200"] == counts["status 404"] == "1"
    assert counts["applied"] == "1"
    assert result.stderr.splitlines() == [
        f"receiver: {capture}:2: POST /webhooks/nope: 404 PROVIDER_UNKNOWN"
        " no provider named 'nope' is configured"
    ]


def test_replay_reports_connection_failures(tmp_path: Path) -> None:
    capture = write_lines(
        tmp_path / "one.jsonl",
        [{"method": "POST", "path": "/webhooks/default", "headers": {}, "body": "{}"}],
    )
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = run_cli("replay", str(capture), "--url", url)
    assert result.returncode == 1
    assert summary(result.stdout)["connection failures"] == "1"
    assert f"{capture}:1: POST /webhooks/default: connection failed after 3 attempts" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "a capture line must be a JSON object"),
        ('{"method": "POST", "headers": {}, "body": ""}', "path must be a string starting with /"),
        (
            '{"method": "POST", "path": "/webhooks/default", "body": "", "body_base64": ""}',
            "exactly one of body and body_base64 is required",
        ),
        (
            '{"method": "POST", "path": "/webhooks/default", "body_base64": "*"}',
            "body_base64 is not valid base64",
        ),
        (
            '{"method": "POST", "path": "/webhooks/default", "headers": {"a": 1}, "body": ""}',
            "headers.a must be a string",
        ),
    ],
)
def test_replay_refuses_a_bad_line_before_sending_anything(
    server: Server, tmp_path: Path, line: str, problem: str
) -> None:
    request = standard_request(server.secret(), standard_report("never-sent", "sent"))
    good = json.dumps(
        {"method": "POST", "path": request.path, "headers": request.headers,
         "body": request.body.decode()}
    )  # fmt: skip
    capture = tmp_path / "bad.jsonl"
    capture.write_text(f"{good}\n\n{line}\n")
    result = run_cli("replay", str(capture), "--url", server.base_url)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"receiver: {capture}:3: {problem}")
    assert snapshot(server) == {}


def test_replay_usage_errors(server: Server, tmp_path: Path) -> None:
    missing = run_cli("replay", str(tmp_path / "absent.jsonl"), "--url", server.base_url)
    assert missing.returncode == 2
    assert missing.stderr.startswith(f"receiver: {tmp_path / 'absent.jsonl'}: cannot be read")

    capture = write_lines(
        tmp_path / "other.jsonl",
        [{"method": "POST", "path": "/webhooks/elsewhere", "headers": {}, "body": "{}"}],
    )
    cannot = run_cli(
        "replay", str(capture), "--url", server.base_url, "--resign",
        "--config", str(server.config_path),
    )  # fmt: skip
    assert cannot.returncode == 2
    assert cannot.stderr.splitlines() == [
        f"receiver: {capture}:1: no provider named 'elsewhere' in {server.config_path}"
    ]
    bad_url = run_cli("replay", str(capture), "--url", "localhost:8000")
    assert bad_url.returncode == 2
    assert "--url 'localhost:8000' must be an http:// or https:// base URL" in bad_url.stderr
    zero = run_cli("replay", str(capture), "--url", server.base_url, "--concurrency", "0")
    assert zero.returncode == 2
