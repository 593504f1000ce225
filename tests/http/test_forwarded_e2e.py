"""X-Forwarded-* end to end, against a real ``receiver serve`` on loopback: from a peer
in ``trusted_proxies`` every route (a webhook, a send, the console login's limits) and
its access line see the caller the proxy names; from any other peer the headers are
ignored (receiver.http.middleware.ForwardedHeaders).

The test client is the proxy: its address, 127.0.0.1, is in ``trusted_proxies`` or not.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from conftest import Server, new_whsec, running_server

from receiver.console.passwords import PER_ADDRESS_BURST
from receiver.testing import (
    SignedRequest,
    plivo_report,
    plivo_request,
    standard_report,
    standard_request,
    twilio_report,
    twilio_request,
)
from receiver.testing.fake_provider import FakeProvider

PUBLIC = "https://dlr.example.com"
FORWARDED_ORIGIN = {"x-forwarded-proto": "https", "x-forwarded-host": "dlr.example.com"}
TWILIO_TOKEN = "f" * 32
PLIVO_TOKEN = "MzY4ZTU5ZmM0ZDQ2ZTk2OGIzYTg1YjkzZWQzNjlh"
# Only the per-address limit may refuse a login attempt here, never the one for all
# addresses together.
LOGIN_LIMITS = {"console_password_attempts_per_second": 100, "console_password_attempts_burst": 100}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def serve(tmp_path_factory: pytest.TempPathFactory, trusted: str, name: str) -> Iterator[Server]:
    with FakeProvider() as sender:
        providers = {
            "default": {"type": "standard", "secrets": [new_whsec()], **sender.config_keys()},
            "tw": {"type": "twilio", "secrets": [TWILIO_TOKEN]},
            "pl": {"type": "plivo", "secrets": [PLIVO_TOKEN]},
        }
        settings = {"trusted_proxies": [trusted], **LOGIN_LIMITS}
        with running_server(tmp_path_factory, name, settings, providers) as server:
            yield server


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose peer, the test client, is a trusted proxy."""
    yield from serve(tmp_path_factory, "127.0.0.1/32", "forwarded-trusted")


@pytest.fixture(scope="module")
def untrusted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that trusts other proxies than its peer, the test client."""
    yield from serve(tmp_path_factory, "10.0.0.0/8", "forwarded-untrusted")


def via_proxy(request: SignedRequest, **headers: str) -> SignedRequest:
    return replace(request, headers={**request.headers, **headers})


def client_in_access_line(server: Server, request_id: str) -> str | None:
    """The ``client`` of the access line of request ``request_id``."""
    deadline = time.monotonic() + 10  # a line is written within its loop iteration
    while True:
        entries = [json.loads(line) for line in server.log_path.read_text().splitlines()]
        found = [e for e in entries if e.get("request_id") == request_id and "status" in e]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    [line] = found
    client: str | None = line["client"]
    return client


def exchanges(server: Server) -> dict[str, int]:
    """A webhook, a send and a health check, each from its own forwarded address and
    with its own request id: the id's answer status."""
    headers = {"x-forwarded-for": "198.51.100.7, 203.0.113.1", "x-request-id": "fwd-health"}
    statuses = {"fwd-health": httpx.get(server.base_url + "/healthz", headers=headers).status_code}
    webhook = standard_request(server.secret(), standard_report("fwd-1", "delivered"))
    forwarded = via_proxy(webhook, **{"x-forwarded-for": "203.0.113.2", "x-request-id": "fwd-hook"})
    statuses["fwd-hook"] = server.post(forwarded).status_code
    with server.api(server.staff_token("fwd-sender", "sender")) as api:
        send = api.post(
            "/v1/messages",
            json={"to": "+639171234567", "body": "hello"},
            headers={
                "idempotency-key": "fwd-send-1",
                "x-forwarded-for": "203.0.113.3",
                "x-request-id": "fwd-send",
            },
        )
        statuses["fwd-send"] = send.status_code
    return statuses


async def wrong_logins(server: Server, addresses: list[str]) -> list[tuple[str, int]]:
    """One wrong password per entry of ``addresses`` (its ``X-Forwarded-For``), all
    posted at once: (address, status) for each."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
        page = await client.get("/console/login")
        match = _CSRF.search(page.text)
        assert match, page.text
        cookie = page.headers["set-cookie"].split(";")[0]

        async def attempt(address: str) -> tuple[str, int]:
            form = {"csrf_token": match[1], "name": "nobody", "password": "wrong"}
            headers = {"x-forwarded-for": address, "cookie": cookie}
            answer = await client.post("/console/login", data=form, headers=headers)
            assert answer.status_code == 429 or "did not match" in answer.text, answer.text
            return address, answer.status_code

        return await asyncio.gather(*(attempt(a) for a in addresses))


FLOOD = ["198.51.100.1"] * (PER_ADDRESS_BURST + 5) + ["198.51.100.2"] * 5
"""Over the per-address burst from one forwarded address, and a few from another."""


def refused(answers: list[tuple[str, int]]) -> Counter[str]:
    return Counter(address for address, status in answers if status == 429)


def test_behind_a_trusted_proxy_every_route_and_access_line_sees_the_caller(
    behind_proxy: Server,
) -> None:
    assert exchanges(behind_proxy) == {"fwd-health": 200, "fwd-hook": 200, "fwd-send": 202}
    # the last hop that is not a trusted proxy
    assert client_in_access_line(behind_proxy, "fwd-health") == "203.0.113.1"
    assert client_in_access_line(behind_proxy, "fwd-hook") == "203.0.113.2"
    assert client_in_access_line(behind_proxy, "fwd-send") == "203.0.113.3"


def test_behind_a_trusted_proxy_the_login_limit_counts_each_caller(behind_proxy: Server) -> None:
    """The flooding address is refused beyond its burst, the other one is not (a token
    may come back while the flood is answered, one every 3 s: hence >= 4, not 5)."""
    answers = asyncio.run(wrong_logins(behind_proxy, FLOOD))
    assert refused(answers)["198.51.100.1"] >= 4
    assert refused(answers)["198.51.100.2"] == 0


def test_from_an_untrusted_peer_the_forwarded_headers_are_ignored(untrusted: Server) -> None:
    assert exchanges(untrusted) == {"fwd-health": 200, "fwd-hook": 200, "fwd-send": 202}
    for request_id in ("fwd-health", "fwd-hook", "fwd-send"):
        assert client_in_access_line(untrusted, request_id) == "127.0.0.1"
    # Every attempt counts against the one real peer: both addresses are refused.
    answers = asyncio.run(wrong_logins(untrusted, FLOOD))
    assert sum(refused(answers).values()) >= 9


def url_signed() -> dict[str, SignedRequest]:
    """A Twilio and a Plivo report, each signed for the public URL ``PUBLIC``."""
    twilio = twilio_report("SM" + "a" * 32, "delivered")
    plivo = plivo_report("0a1b2c3d-0000-4000-8000-000000000001", "delivered")
    return {
        "tw": twilio_request(TWILIO_TOKEN, twilio, public_base_url=PUBLIC, provider="tw"),
        "pl": plivo_request(PLIVO_TOKEN, plivo, public_base_url=PUBLIC, provider="pl"),
    }


def statuses(server: Server, requests: dict[str, SignedRequest], **headers: Any) -> list[int]:
    return [server.post(via_proxy(r, **headers)).status_code for r in requests.values()]


def test_url_signatures_verify_against_the_forwarded_origin_from_a_trusted_proxy(
    behind_proxy: Server,
) -> None:
    requests = url_signed()
    assert statuses(behind_proxy, requests) == [401, 401]  # signed for another URL than ours
    assert statuses(behind_proxy, requests, **FORWARDED_ORIGIN) == [200, 200]


def test_url_signatures_ignore_a_forwarded_origin_from_an_untrusted_peer(untrusted: Server) -> None:
    assert statuses(untrusted, url_signed(), **FORWARDED_ORIGIN) == [401, 401]
