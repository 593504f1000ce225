"""Who called and which URL they called: X-Forwarded-* counts only from trusted proxies
(receiver.http.middleware.ForwardedHeaders, receiver.http.webhooks.public_url)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from pydantic import HttpUrl
from starlette.requests import Request
from starlette.types import Message, Scope

from receiver.errors import SignatureError
from receiver.http.middleware import ForwardedHeaders
from receiver.http.webhooks import check_source, public_url, request_target

FORWARDED = {
    "x-forwarded-for": "198.51.100.9, 203.0.113.7, 10.0.0.2",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "dlr.example.com",
}
TARGET = "/webhooks/default?a=1&b=%2B2"


def scope(peer: str, headers: dict[str, str] | list[tuple[str, str]]) -> Scope:
    pairs = headers.items() if isinstance(headers, dict) else headers
    return {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": (peer, 50000),
        "path": "/webhooks/default",
        "raw_path": b"/webhooks/default",
        "query_string": b"a=1&b=%2B2",
        "headers": [(k.lower().encode(), v.encode()) for k, v in pairs],
    }


async def as_seen(trusted: list[str], peer: str, headers: Any) -> Request:
    """The request as the app behind ForwardedHeaders sees it."""
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        return None

    networks = [ipaddress.ip_network(n) for n in trusted]
    await ForwardedHeaders(app, networks)(scope(peer, headers), receive, send)
    return Request(seen[0])


def caller(request: Request) -> str | None:
    return request.client.host if request.client else None


async def test_without_trusted_proxies_forwarded_headers_are_ignored():
    req = await as_seen([], "10.0.0.1", FORWARDED)
    assert caller(req) == "10.0.0.1"
    # public_base_url + the raw path and query exactly as received (still percent-encoded)
    base = HttpUrl("https://public.example.org/base")
    assert request_target(req) == TARGET
    assert public_url(req, TARGET, base) == "https://public.example.org/base" + TARGET


async def test_a_trusted_proxy_supplies_the_caller_and_the_public_url():
    req = await as_seen(["10.0.0.0/8"], "10.0.0.1", FORWARDED)
    # the last hop that is not a trusted proxy is the caller; earlier hops are client-supplied
    assert caller(req) == "203.0.113.7"
    assert public_url(req, TARGET, None) == "https://dlr.example.com" + TARGET
    # the forwarded origin wins over public_base_url (docs/operations.md)
    assert public_url(req, TARGET, HttpUrl("https://other.example.org")).startswith(
        "https://dlr.example.com/"
    )
    # the scheme stays the proxy's: console cookies are not Secure by a forwarded header
    assert req.url.scheme == "http"


async def test_an_untrusted_peer_cannot_claim_a_forwarded_address():
    req = await as_seen(["10.0.0.0/8"], "192.0.2.50", FORWARDED)
    assert caller(req) == "192.0.2.50"
    assert public_url(req, TARGET, None) == "http://127.0.0.1:8000" + TARGET


async def test_a_garbled_forwarded_chain_yields_no_address():
    req = await as_seen(["10.0.0.0/8"], "10.0.0.1", {"x-forwarded-for": "not-an-ip"})
    assert caller(req) is None
    behind = await as_seen(["10.0.0.0/8"], "10.0.0.1", {"x-forwarded-for": "1.2.3.4:5, 10.0.0.2"})
    assert caller(behind) is None


async def test_a_chain_of_trusted_proxies_only_names_the_peer():
    req = await as_seen(["10.0.0.0/8"], "10.0.0.1", {"x-forwarded-for": "10.9.9.9, 10.0.0.2"})
    assert caller(req) == "10.0.0.1"
    blank = await as_seen(["10.0.0.0/8"], "10.0.0.1", {"x-forwarded-for": " "})
    assert caller(blank) == "10.0.0.1"


async def test_several_forwarded_for_lines_are_one_list():
    """A client's own X-Forwarded-For line first, the proxy's line after it: the caller
    is read from the end of the whole list, not from the client's line."""
    lines = [("x-forwarded-for", "198.51.100.1"), ("x-forwarded-for", "203.0.113.7")]
    req = await as_seen(["10.0.0.0/8"], "10.0.0.1", lines)
    assert caller(req) == "203.0.113.7"


async def test_a_forwarded_proto_counts_only_with_a_forwarded_host():
    proto_only = await as_seen(["10.0.0.0/8"], "10.0.0.1", {"x-forwarded-proto": "https"})
    assert public_url(proto_only, TARGET, None) == "http://127.0.0.1:8000" + TARGET
    host_only = await as_seen(["10.0.0.0/8"], "10.0.0.1", {"x-forwarded-host": "a.example, b"})
    assert public_url(host_only, TARGET, None) == "http://a.example" + TARGET


async def test_ipv6_peers_and_hops():
    headers = {"x-forwarded-for": "2001:db8::7, fd00::2", "x-forwarded-host": "[2001:db8::1]"}
    req = await as_seen(["fd00::/8"], "fd00::1", headers)
    assert caller(req) == "2001:db8::7"
    assert public_url(req, TARGET, None) == "http://[2001:db8::1]" + TARGET


def test_check_source_against_allowed_ips():
    allowed = [ipaddress.ip_network("203.0.113.0/24")]
    check_source("203.0.113.7", allowed)
    check_source("198.51.100.1", [])  # no allow-list: anyone
    for address in ("198.51.100.1", None, "garbage"):
        with pytest.raises(SignatureError) as info:
            check_source(address, allowed)
        assert info.value.code == "SOURCE_NOT_ALLOWED"
